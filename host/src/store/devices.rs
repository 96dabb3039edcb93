//! The device registry: which devices may connect, their AuthTokens, keys and time
//! zones. Persisted in the `devices` tree and cached in memory (read on every request).
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use super::error::StoreError;
use super::reserve::{DiskReserve, REQUEST_BYTES};
use crate::crypto::{BodyCipher, EncryptionMode, SECURITY_KEY_LEN};
use crate::field::FieldError;
use crate::time::parse_utc_offset;

/// Whether a device may send data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceState {
    /// Registered and approved.
    Approved,
    /// Appeared by auto-registration; refused until an operator approves it.
    Pending,
}

/// One registered device.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    /// The device id (Cams `stgid`, ZKTeco serial number).
    pub id: String,
    /// A human name ("Main Gate").
    pub label: String,
    /// The 32-character AuthToken the device and REST clients present.
    pub auth_token: String,
    /// The 32-character security key; `None` for plain devices.
    pub security_key: Option<String>,
    /// How bodies are encrypted when a key is set.
    pub encryption: EncryptionMode,
    /// The device's UTC offset in minutes.
    pub utc_offset_minutes: i32,
    /// Disabled devices are refused.
    pub enabled: bool,
    pub state: DeviceState,
    /// Routes that take this device's events; `None`: every route whose `devices` names it.
    pub routes: Option<Vec<String>>,
    pub created_at_ms: u64,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("id", &self.id)
            .field("label", &self.label)
            .field("auth_token", &"<redacted>")
            .field("security_key", &self.security_key.as_ref().map(|_| "<redacted>"))
            .field("encryption", &self.encryption)
            .field("utc_offset_minutes", &self.utc_offset_minutes)
            .field("enabled", &self.enabled)
            .field("state", &self.state)
            .field("routes", &self.routes)
            .finish()
    }
}

impl Device {
    /// Whether a request from this device may be accepted.
    pub fn is_active(&self) -> bool {
        self.enabled && self.state == DeviceState::Approved
    }

    /// The cipher of its bodies, if it is in encrypted mode (a key is set and the mode is
    /// not plain). Keys are checked when a device is registered.
    pub fn cipher(&self) -> Option<crate::crypto::BodyCipher> {
        let key = self.security_key.as_deref()?;
        if self.encryption == EncryptionMode::Plain {
            return None;
        }
        crate::crypto::BodyCipher::new(self.encryption, Some(key)).ok()
    }
}

/// A new random 32-character AuthToken (lowercase letters and digits).
pub fn generate_token() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..32).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

/// Whether `id` is a usable device id: 1 to 64 of `A-Z a-z 0-9 . _ -`.
pub fn valid_device_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Fields to create or change a device; absent fields keep their value (or default).
#[derive(Clone, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceChanges {
    /// 1 to 64 of A-Z a-z 0-9 . _ - (required to create).
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub id: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
    /// 16 to 128 printable ASCII characters, no spaces (Cams uses 32); generated when absent.
    #[serde(default)]
    #[schema(pattern = "^[!-~]{16,128}$")]
    pub auth_token: Option<String>,
    /// 32 printable ASCII characters, the AES-256 key; empty removes it.
    #[serde(default)]
    #[schema(pattern = "^([ -~]{32})?$")]
    pub security_key: Option<String>,
    #[serde(default)]
    pub encryption: Option<EncryptionMode>,
    #[serde(default)]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub routes: Option<Vec<String>>,
}

impl std::fmt::Debug for DeviceChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceChanges")
            .field("id", &self.id)
            .field("label", &self.label)
            .field("auth_token", &self.auth_token.as_ref().map(|_| "<redacted>"))
            .field("security_key", &self.security_key.as_ref().map(|_| "<redacted>"))
            .field("encryption", &self.encryption)
            .field("time_zone", &self.time_zone)
            .field("enabled", &self.enabled)
            .field("routes", &self.routes)
            .finish()
    }
}

impl DeviceChanges {
    /// Applies the changes to `base` (a new device when `None`), validating every field;
    /// an error names the field. `routes` are the route names that exist.
    pub fn apply(self, id: &str, base: Option<&Device>, routes: &[String]) -> Result<Device, FieldError> {
        let input = self;
        if !valid_device_id(id) {
            return Err(FieldError::new("id", "a device id is 1 to 64 of A-Z a-z 0-9 . _ -"));
        }
        let mut device = base.cloned().unwrap_or_else(|| Device {
            id: id.to_string(),
            label: String::new(),
            auth_token: generate_token(),
            security_key: None,
            encryption: EncryptionMode::Plain,
            utc_offset_minutes: 0,
            enabled: true,
            state: DeviceState::Approved,
            routes: None,
            created_at_ms: crate::time::now_ms(),
        });
        if let Some(label) = input.label {
            device.label = label;
        }
        if let Some(token) = input.auth_token {
            if !(16..=128).contains(&token.len()) || !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(FieldError::new(
                    "auth_token",
                    "an AuthToken has 16 to 128 printable ASCII characters, no spaces (Cams uses 32)",
                ));
            }
            device.auth_token = token;
        }
        if let Some(key) = input.security_key {
            if !key.is_empty() && (key.len() != SECURITY_KEY_LEN || !key.bytes().all(|b| (b' '..=b'~').contains(&b))) {
                return Err(FieldError::new(
                    "security_key",
                    format!("a security key is {SECURITY_KEY_LEN} printable ASCII characters (or empty to remove it)"),
                ));
            }
            device.security_key = (!key.is_empty()).then_some(key);
            if device.security_key.is_some() && device.encryption == EncryptionMode::Plain {
                device.encryption = EncryptionMode::CamsEcb;
            }
        }
        if let Some(mode) = input.encryption {
            device.encryption = mode;
        }
        if device.encryption != EncryptionMode::Plain {
            BodyCipher::new(device.encryption, device.security_key.as_deref())
                .map_err(|e| FieldError::new("security_key", e.to_string()))?;
        }
        if let Some(tz) = input.time_zone {
            device.utc_offset_minutes = parse_utc_offset(&tz).ok_or_else(|| {
                FieldError::new("time_zone", format!("{tz:?} is not a UTC offset (+05:30, -03:00, Z)"))
            })?;
        }
        if let Some(enabled) = input.enabled {
            device.enabled = enabled;
        }
        if let Some(list) = input.routes {
            if let Some(bad) = list.iter().find(|r| !routes.contains(r)) {
                return Err(FieldError::new("routes", format!("no route named {bad:?}")));
            }
            device.routes = Some(list);
        }
        Ok(device)
    }
}

/// The registry. Every write to it is made on behalf of an operator (config, `/v1`) or a
/// device (auto-registration): refused below the disk reserve.
#[derive(Clone)]
pub struct Registry {
    tree: sled::Tree,
    cache: Arc<RwLock<BTreeMap<String, Arc<Device>>>>,
    reserve: DiskReserve,
}

impl Registry {
    pub(super) fn open(db: &sled::Db, reserve: DiskReserve) -> Result<Self, StoreError> {
        let tree = db.open_tree("devices")?;
        let mut cache = BTreeMap::new();
        for entry in tree.iter() {
            let (_, value) = entry?;
            let device: Device = serde_json::from_slice(&value).map_err(|e| StoreError::Decode(e.to_string()))?;
            cache.insert(device.id.clone(), Arc::new(device));
        }
        Ok(Registry { tree, cache: Arc::new(RwLock::new(cache)), reserve })
    }

    /// One device.
    pub fn get(&self, id: &str) -> Option<Arc<Device>> {
        self.cache.read().unwrap_or_else(|p| p.into_inner()).get(id).cloned()
    }

    /// Every device, in id order.
    pub fn list(&self) -> Vec<Arc<Device>> {
        self.cache.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    /// Creates or replaces a device (durably). Refused below the disk reserve.
    pub fn put(&self, device: Device) -> Result<Arc<Device>, StoreError> {
        self.reserve.admit(REQUEST_BYTES)?;
        let bytes = serde_json::to_vec(&device).map_err(|e| StoreError::Decode(e.to_string()))?;
        self.tree.insert(device.id.as_bytes(), bytes)?;
        self.tree.flush()?;
        let device = Arc::new(device);
        self.cache.write().unwrap_or_else(|p| p.into_inner()).insert(device.id.clone(), device.clone());
        Ok(device)
    }

    /// Removes a device. Its journal stays until retention prunes it. Refused below the
    /// disk reserve.
    pub fn remove(&self, id: &str) -> Result<bool, StoreError> {
        self.reserve.admit(REQUEST_BYTES)?;
        let existed = self.tree.remove(id.as_bytes())?.is_some();
        self.tree.flush()?;
        self.cache.write().unwrap_or_else(|p| p.into_inner()).remove(id);
        Ok(existed)
    }
}
