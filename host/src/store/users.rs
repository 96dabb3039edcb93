//! The user directory: what the gateway knows of the users on each device, learnt from
//! operations the devices confirmed and from enrolments the devices reported. It lets a
//! partial change (block, role, validity window) be sent as a whole user record, lets a
//! user move or be copied to another device with its templates and photo, and answers
//! "load user info" without asking the device.
//!
//! Layout in the `users` tree: `<device>\0<user id>` -> the user (JSON).
use super::error::StoreError;
use crate::plugin::bindings::types::User;

/// The users tree.
#[derive(Clone)]
pub struct UserDirectory {
    tree: sled::Tree,
}

fn key(device: &str, user: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(device.len() + user.len() + 1);
    k.extend_from_slice(device.as_bytes());
    k.push(0);
    k.extend_from_slice(user.as_bytes());
    k
}

fn decode(bytes: &[u8]) -> Result<User, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Decode(e.to_string()))
}

/// `base` with every field that `change` sets replaced. Templates of the change replace
/// those of the same kind and index; the others are kept.
pub fn merge_user(base: Option<&User>, change: &User) -> User {
    let Some(base) = base else {
        return change.clone();
    };
    let mut templates: Vec<_> = base
        .templates
        .iter()
        .filter(|t| !change.templates.iter().any(|c| c.kind == t.kind && c.index == t.index))
        .cloned()
        .collect();
    templates.extend(change.templates.iter().cloned());
    User {
        user_id: change.user_id.clone(),
        first_name: change.first_name.clone().or_else(|| base.first_name.clone()),
        last_name: change.last_name.clone().or_else(|| base.last_name.clone()),
        role: change.role.or(base.role),
        enabled: change.enabled.or(base.enabled),
        valid_from: change.valid_from.or(base.valid_from),
        valid_until: change.valid_until.or(base.valid_until),
        templates,
        photo: change.photo.clone().or_else(|| base.photo.clone()),
    }
}

impl UserDirectory {
    pub(super) fn open(db: &sled::Db) -> Result<Self, StoreError> {
        Ok(UserDirectory { tree: db.open_tree("users")? })
    }

    /// One user of a device.
    pub fn get(&self, device: &str, user: &str) -> Result<Option<User>, StoreError> {
        self.tree.get(key(device, user))?.map(|v| decode(&v)).transpose()
    }

    /// Records a change to a user, merged into what was known.
    pub fn apply(&self, device: &str, change: &User) -> Result<User, StoreError> {
        let merged = merge_user(self.get(device, &change.user_id)?.as_ref(), change);
        let bytes = serde_json::to_vec(&merged).map_err(|e| StoreError::Decode(e.to_string()))?;
        self.tree.insert(key(device, &change.user_id), bytes)?;
        Ok(merged)
    }

    /// Forgets one user.
    pub fn remove(&self, device: &str, user: &str) -> Result<(), StoreError> {
        self.tree.remove(key(device, user))?;
        Ok(())
    }

    /// Forgets one credential of a user (`index` none: every one of that kind).
    pub fn remove_template(
        &self,
        device: &str,
        user: &str,
        kind: crate::plugin::bindings::types::TemplateKind,
        index: Option<u32>,
    ) -> Result<(), StoreError> {
        if let Some(mut known) = self.get(device, user)? {
            known.templates.retain(|t| !(t.kind == kind && (index.is_none() || t.index == index)));
            let bytes = serde_json::to_vec(&known).map_err(|e| StoreError::Decode(e.to_string()))?;
            self.tree.insert(key(device, user), bytes)?;
        }
        Ok(())
    }

    /// Forgets every user of a device.
    pub fn clear(&self, device: &str) -> Result<(), StoreError> {
        let mut prefix = device.as_bytes().to_vec();
        prefix.push(0);
        let mut batch = sled::Batch::default();
        for k in self.tree.scan_prefix(prefix).keys() {
            batch.remove(k?);
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    /// Users of a device in id order, after `after` (exclusive), at most `limit`.
    pub fn list(&self, device: &str, after: Option<&str>, limit: usize) -> Result<Vec<User>, StoreError> {
        let mut prefix = device.as_bytes().to_vec();
        prefix.push(0);
        let start = match after {
            Some(a) => {
                let mut k = key(device, a);
                k.push(0);
                k
            }
            None => prefix.clone(),
        };
        let mut end = device.as_bytes().to_vec();
        end.push(1);
        self.tree.range(start..end).values().take(limit).map(|v| decode(&v?)).collect()
    }
}
