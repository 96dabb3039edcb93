//! Submission: a request is validated and planned (partial user changes merged with the
//! directory), then stored durably in one batch: one record with its command, or the
//! parent of a move/copy with one step per target device, or an operation the gateway
//! answers itself at once (`resend_punch_log`, `load_user_info`). An OperationID used
//! again with the same request returns the first submission; one submission at a time
//! holds an id, from its lookup until its record is on disk.
use std::sync::Arc;
use std::time::Duration;

use super::announce::{Announcement, result_of};
use super::queue::{OperationService, lock};
use crate::field::FieldError;
use crate::operations::catalogue::{OperationRequest, Plan};
use crate::plugin::bindings::types::{Command, CommandBody, User};
use crate::store::{Device, OperationRecord, OperationState, StoreError};

/// Why a submission was refused.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// A field of the request is wrong.
    #[error(transparent)]
    Field(FieldError),
    /// The OperationID is taken by a different request.
    #[error("operation id {0:?} is already used by another request")]
    DuplicateId(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a submission produced.
#[derive(Debug)]
pub struct Submitted {
    pub record: OperationRecord,
    /// Users read from the directory (`load_user_info`).
    pub users: Option<Vec<User>>,
    /// True when the id was already used by the same request (an idempotent retry).
    pub replayed: bool,
}

/// Generates an OperationID: 12 lowercase letters and digits, like Cams'.
pub fn generate_operation_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..12).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

/// Checks a client-supplied OperationID: 1 to 64 letters, digits, `-` or `_`.
pub fn valid_operation_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What separates a move/copy's id from the number of its step (`<parent>.<n>`): a
/// character no client-supplied ([`valid_operation_id`]) or generated OperationID has, so
/// a step can never take the id of an operation a client submitted, nor the reverse.
const STEP_SEPARATOR: char = '.';

/// An OperationID held by one submission (see [`OperationService::hold`]).
struct Held<'a> {
    service: &'a OperationService,
    id: String,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if let Some(released) = lock(&self.service.submitting).remove(&self.id) {
            released.notify_waiters();
        }
    }
}

impl OperationService {
    /// Validates, plans and durably stores an operation for `device`.
    pub async fn submit(
        &self,
        device: &Device,
        id: Option<String>,
        request: OperationRequest,
        ttl: Option<Duration>,
    ) -> Result<Submitted, SubmitError> {
        let request_json = serde_json::to_value(&request).map_err(|e| StoreError::Decode(e.to_string()))?;
        // The id is held from its lookup until its record is on disk: a submission of the
        // same id meanwhile waits, then finds the record (a replay, or 43).
        let (id, _held) = match id {
            Some(id) => {
                if !valid_operation_id(&id) {
                    return Err(SubmitError::Field(FieldError::new(
                        "OperationID",
                        "1 to 64 letters, digits, '-' or '_'",
                    )));
                }
                let held = self.hold(&id).await;
                if let Some(existing) = self.log.get(&id)? {
                    if existing.device_id == device.id && existing.request == request_json {
                        // A retried read answers again, from the directory as it is now:
                        // the users are not kept with the record (templates and photos
                        // would outlive a deleted device's directory there).
                        let users = match &request {
                            OperationRequest::LoadUserInfo { user_id } if existing.state == OperationState::Done => {
                                Some(self.read_users(&device.id, user_id.as_deref())?)
                            }
                            _ => None,
                        };
                        return Ok(Submitted { record: existing, users, replayed: true });
                    }
                    return Err(SubmitError::DuplicateId(id));
                }
                (id, held)
            }
            None => loop {
                let id = generate_operation_id();
                let held = self.hold(&id).await;
                if !self.log.contains(&id)? {
                    break (id, held);
                }
            },
        };
        let now_ms = crate::time::now_ms();
        let plan = request.plan(device, &self.users, (now_ms / 1000) as i64).map_err(SubmitError::Field)?;
        let ttl = ttl.unwrap_or(Duration::from_secs(self.settings.ttl_seconds));
        let mut record = OperationRecord {
            id: id.clone(),
            device_id: device.id.clone(),
            kind: request.kind().to_string(),
            request: request_json,
            command: None,
            state: OperationState::Queued,
            order: self.log.next_order()?,
            created_at_ms: now_ms,
            expires_at_ms: now_ms.saturating_add(ttl.as_millis() as u64),
            sent_at_ms: None,
            finished_at_ms: None,
            return_code: None,
            details: Vec::new(),
            message: None,
            parent: None,
            children: Vec::new(),
            deliveries: 0,
            redeliver_at_ms: None,
        };
        let mut users = None;
        let mut records = Vec::new();
        let mut notify = Vec::new();
        match plan {
            Plan::Command(body) => {
                record.command = Some(Command { operation_id: id.clone(), body });
                notify.push(device.id.clone());
            }
            Plan::Spread { user, targets, .. } => {
                for (i, target) in targets.iter().enumerate() {
                    if self.registry.get(target).is_none() {
                        let field = if record.kind == "move_user" {
                            "to_device".to_string()
                        } else {
                            format!("to_devices[{i}]")
                        };
                        return Err(SubmitError::Field(FieldError::new(
                            field,
                            format!("no device {target:?} is registered"),
                        )));
                    }
                    let child = self.child(&record, target, CommandBody::UpsertUser(user.clone()))?;
                    record.children.push(child.id.clone());
                    notify.push(target.clone());
                    records.push(child);
                }
            }
            Plan::ResendPunches { from, to } => {
                let queued = self.resend_punches(device, from, to)?;
                record.state = OperationState::Done;
                record.return_code = Some(0);
                record.finished_at_ms = Some(now_ms);
                record.details = vec![("Status".into(), "done".into()), ("Punches".into(), queued.to_string())];
            }
            Plan::ReadUsers { user_id } => {
                let found = self.read_users(&device.id, user_id.as_deref())?;
                record.state = OperationState::Done;
                record.return_code = Some(0);
                record.finished_at_ms = Some(now_ms);
                record.details = vec![("Status".into(), "done".into()), ("Users".into(), found.len().to_string())];
                users = Some(found);
            }
        }
        records.insert(0, record.clone());
        self.log.insert(&records)?;
        self.journal.durable().await?;
        for target in notify {
            self.bump_queue(&target);
        }
        if record.kind == "resend_punch_log" {
            self.dispatcher.ensure(device);
            self.announce(vec![Announcement { device: device.id.clone(), result: result_of(&record) }]).await;
        }
        Ok(Submitted { record, users, replayed: false })
    }

    /// What the directory knows of `user_id` on `device` (every user when `None`).
    fn read_users(&self, device: &str, user_id: Option<&str>) -> Result<Vec<User>, StoreError> {
        match user_id {
            Some(uid) => Ok(self.users.get(device, uid)?.into_iter().collect()),
            None => self.users.list(device, None, usize::MAX),
        }
    }

    /// Holds `id` for one submission until the returned guard is dropped, waiting while
    /// another submission holds it. Submissions of different ids do not wait for each
    /// other, and a submission given up while it waits leaves nothing behind.
    async fn hold(&self, id: &str) -> Held<'_> {
        loop {
            let released;
            let notified;
            {
                let mut submitting = lock(&self.submitting);
                match submitting.get(id) {
                    Some(holder) => released = holder.clone(),
                    None => {
                        submitting.insert(id.to_string(), Arc::default());
                        return Held { service: self, id: id.to_string() };
                    }
                }
                // Registered before the map is unlocked: the holder's release cannot be missed.
                notified = released.notified();
            }
            notified.await;
        }
    }

    pub(super) fn child(
        &self,
        parent: &OperationRecord,
        device: &str,
        body: CommandBody,
    ) -> Result<OperationRecord, StoreError> {
        let id = format!("{}{STEP_SEPARATOR}{}", parent.id, parent.children.len() + 1);
        Ok(OperationRecord {
            id: id.clone(),
            device_id: device.to_string(),
            kind: match &body {
                CommandBody::DeleteUser(_) => "delete_user",
                _ => "add_user",
            }
            .to_string(),
            request: serde_json::json!({ "step_of": parent.id }),
            command: Some(Command { operation_id: id, body }),
            state: OperationState::Queued,
            order: self.log.next_order()?,
            created_at_ms: crate::time::now_ms(),
            expires_at_ms: parent.expires_at_ms,
            sent_at_ms: None,
            finished_at_ms: None,
            return_code: None,
            details: Vec::new(),
            message: None,
            parent: Some(parent.id.clone()),
            children: Vec::new(),
            deliveries: 0,
            redeliver_at_ms: None,
        })
    }

    /// Queues a replay of every punch of `device` logged in `from..=to` on each of its
    /// routes; returns how many punches.
    fn resend_punches(&self, device: &Device, from: i64, to: i64) -> Result<usize, StoreError> {
        let routes: Vec<_> =
            self.dispatcher.routes().iter().filter(|r| r.applies_to(device)).map(|r| r.name.clone()).collect();
        let mut after = None;
        let mut count = 0;
        loop {
            let page = self.journal.punches(&device.id, from, to, after, u64::MAX, 1000)?;
            let Some(last) = page.last() else { break };
            after = crate::operations::load_log::cursor_of(last);
            for event in &page {
                for route in &routes {
                    self.delivery.request_resend(route, &device.id, event.sequence)?;
                }
            }
            count += page.len();
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{Fixture, add_user, user};
    use super::*;

    /// A submitted command is queued for its device and on disk before `submit` returns.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_command_is_queued_and_stored() {
        let f = Fixture::new();
        let submitted = f.submit("D1", "op-a", add_user("7", "Ann")).await;
        assert!(!submitted.replayed);
        assert_eq!(submitted.record.state, OperationState::Queued);
        let stored = f.record("op-a");
        assert_eq!(stored, submitted.record);
        assert_eq!((stored.device_id.as_str(), stored.kind.as_str()), ("D1", "add_user"));
        assert_eq!(stored.return_code, None);
        let Some(Command { operation_id, body: CommandBody::UpsertUser(sent) }) = stored.command else {
            panic!("an add_user sends the user: {:?}", stored.command)
        };
        assert_eq!((operation_id.as_str(), sent.first_name.as_deref()), ("op-a", Some("Ann")));
        let queued: Vec<_> = f.fresh_log().queued("D1", 10).unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(queued, ["op-a"]);
        assert!(f.fresh_log().queued("D2", 10).unwrap().is_empty());
    }

    /// Without an OperationID the gateway makes one of 12 lowercase letters and digits.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_operation_id_is_generated_when_none_is_given() {
        let f = Fixture::new();
        let submitted = f.service.submit(&f.device("D1"), None, add_user("7", "Ann"), None).await.unwrap();
        let id = &submitted.record.id;
        assert_eq!(id.len(), 12, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()), "{id}");
        assert_eq!(f.record(id).state, OperationState::Queued);
    }

    /// The same OperationID with the same request again is a safe retry: the first
    /// submission comes back, nothing new is queued.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_same_operation_id_and_request_again_returns_the_first() {
        let f = Fixture::new();
        let first = f.submit("D1", "op-a", add_user("7", "Ann")).await;
        let again = f.submit("D1", "op-a", add_user("7", "Ann")).await;
        assert!(again.replayed);
        assert_eq!(again.record, first.record);
        assert_eq!(f.fresh_log().list("D1", 0, 10).unwrap().len(), 1);
        assert_eq!(f.take("D1"), ["op-a"]);
        // Still the same once it was handed out: the retry does not queue it again.
        let later = f.submit("D1", "op-a", add_user("7", "Ann")).await;
        assert!(later.replayed);
        assert_eq!(later.record.state, OperationState::Sent);
        assert!(f.take("D1").is_empty());
    }

    /// The same OperationID with another request, or for another device, is refused and
    /// the first operation is left as it was.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_operation_id_used_by_another_request_is_refused() {
        let f = Fixture::new();
        let first = f.submit("D1", "op-a", add_user("7", "Ann")).await;
        let other = f.service.submit(&f.device("D1"), Some("op-a".into()), add_user("7", "Bob"), None).await;
        assert!(matches!(other, Err(SubmitError::DuplicateId(ref id)) if id == "op-a"), "{other:?}");
        let elsewhere = f.service.submit(&f.device("D2"), Some("op-a".into()), add_user("7", "Ann"), None).await;
        assert!(matches!(elsewhere, Err(SubmitError::DuplicateId(_))), "{elsewhere:?}");
        assert_eq!(f.record("op-a"), first.record);
        assert!(f.fresh_log().list("D2", 0, 10).unwrap().is_empty());
    }

    /// A malformed OperationID is a field error, and nothing is stored.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_malformed_operation_id_is_a_field_error() {
        let f = Fixture::new();
        for id in ["", "has space", &"x".repeat(65)] {
            let refused = f.service.submit(&f.device("D1"), Some(id.to_string()), add_user("7", "Ann"), None).await;
            assert!(matches!(refused, Err(SubmitError::Field(ref e)) if e.field == "OperationID"), "{refused:?}");
        }
        assert!(f.fresh_log().list("D1", 0, 10).unwrap().is_empty());
        assert!(valid_operation_id(&"x".repeat(64)) && valid_operation_id("a-b_C9"));
    }

    /// A copy is a parent without a command and one queued step per target, each adding
    /// the user as the source's directory knows it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_copy_is_a_parent_with_one_step_per_target() {
        let f = Fixture::new();
        f.service.users().apply("D1", &user("7", "Ann")).unwrap();
        let copy = OperationRequest::CopyUser { user_id: "7".into(), to_devices: vec!["D2".into(), "D3".into()] };
        let parent = f.submit("D1", "cp", copy).await.record;
        assert_eq!((parent.state, parent.command.is_none()), (OperationState::Queued, true));
        assert_eq!(parent.children, ["cp.1", "cp.2"]);
        for (step, device) in [("cp.1", "D2"), ("cp.2", "D3")] {
            let record = f.record(step);
            assert_eq!((record.device_id.as_str(), record.kind.as_str()), (device, "add_user"));
            assert_eq!((record.state, record.parent.as_deref()), (OperationState::Queued, Some("cp")));
            assert_eq!(record.expires_at_ms, parent.expires_at_ms);
            let Some(CommandBody::UpsertUser(sent)) = record.command.map(|c| c.body) else { panic!("{step}") };
            assert_eq!(sent.first_name.as_deref(), Some("Ann"));
        }
        // The parent is not a command: the source device gets nothing.
        assert!(f.take("D1").is_empty());
    }

    /// A copy to a device that is not registered is refused, naming the target, and
    /// nothing of it is stored.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_copy_to_an_unregistered_device_is_refused() {
        let f = Fixture::new();
        f.service.users().apply("D1", &user("7", "Ann")).unwrap();
        let copy = OperationRequest::CopyUser { user_id: "7".into(), to_devices: vec!["D2".into(), "D9".into()] };
        let refused = f.service.submit(&f.device("D1"), Some("cp".into()), copy, None).await;
        assert!(matches!(refused, Err(SubmitError::Field(ref e)) if e.field == "to_devices[1]"), "{refused:?}");
        assert!(!f.fresh_log().contains("cp").unwrap() && !f.fresh_log().contains("cp.1").unwrap());
        assert!(f.take("D2").is_empty());
    }

    /// `load_user_info` is answered from the directory at once: done, nothing queued.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn load_user_info_is_answered_at_once_from_the_directory() {
        let f = Fixture::new();
        f.service.users().apply("D1", &user("7", "Ann")).unwrap();
        f.service.users().apply("D1", &user("8", "Bob")).unwrap();
        let submitted = f.submit("D1", "load", OperationRequest::LoadUserInfo { user_id: None }).await;
        let names: Vec<_> = submitted.users.unwrap().into_iter().map(|u| u.first_name.unwrap()).collect();
        assert_eq!(names, ["Ann", "Bob"]);
        assert_eq!(f.state("load"), (OperationState::Done, Some(0)));
        assert!(f.take("D1").is_empty());
    }

    /// A resend is done at once (the replay is queued on the routes) and announced.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_resend_is_done_at_once_and_announced() {
        let f = Fixture::new();
        let span = crate::operations::catalogue::TimeSpan {
            start_time: "2026-06-01 00:00:00".into(),
            end_time: "2026-06-02 00:00:00".into(),
        };
        f.submit("D1", "rs", OperationRequest::ResendPunchLog { span }).await;
        assert_eq!(f.state("rs"), (OperationState::Done, Some(0)));
        let announced = f.announced("D1");
        assert_eq!(announced.len(), 1);
        assert_eq!((announced[0].operation_id.as_str(), announced[0].return_code), ("rs", 0));
        assert!(announced[0].details.contains(&("Punches".into(), "0".into())), "{:?}", announced[0].details);
    }

    /// A retried `load_user_info` (same OperationID, same request) returns the first
    /// record and the users again, as the directory knows them at the retry: a Cams
    /// client that retries because it lost the first answer gets its `UserInfo`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_retried_load_user_info_returns_the_users_again() {
        let f = Fixture::new();
        f.service.users().apply("D1", &user("7", "Ann")).unwrap();
        let first = f.submit("D1", "load", OperationRequest::LoadUserInfo { user_id: None }).await;
        assert_eq!(first.users.map(|u| u.len()), Some(1));
        let again = f.submit("D1", "load", OperationRequest::LoadUserInfo { user_id: None }).await;
        assert!(again.replayed);
        assert_eq!(again.record, first.record);
        assert_eq!(again.users.map(|u| u.len()), Some(1), "the retry answers without the users");
        // One user asked for: that one, as the directory knows it now.
        let one = OperationRequest::LoadUserInfo { user_id: Some("7".into()) };
        f.submit("D1", "one", one.clone()).await;
        f.service.users().apply("D1", &user("7", "Anna")).unwrap();
        let again = f.submit("D1", "one", one).await;
        let names: Vec<_> = again.users.unwrap().into_iter().map(|u| u.first_name.unwrap()).collect();
        assert_eq!(names, ["Anna"]);
    }

    /// Two submissions of one OperationID racing on two threads: one is accepted, the
    /// other waits for it and is refused (43), since the id is held from its lookup until
    /// its record is on disk. Unheld, both were once accepted and the second record
    /// overwrote the first, leaving its queue entry behind. Timing-dependent, hence many
    /// rounds on two threads released together.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_submissions_of_one_id_accept_one() {
        let f = Fixture::new();
        let device = f.device("D1");
        let runtime = tokio::runtime::Handle::current();
        let mut raced = Vec::new();
        for round in 0..200 {
            let id = format!("race{round}");
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
            let threads: Vec<_> = ["Ann", "Bob"]
                .into_iter()
                .map(|name| {
                    let (service, device, id, barrier) =
                        (f.service.clone(), device.clone(), id.clone(), barrier.clone());
                    let runtime = runtime.clone();
                    std::thread::spawn(move || {
                        barrier.wait();
                        runtime.block_on(service.submit(&device, Some(id), add_user("7", name), None))
                    })
                })
                .collect();
            let accepted = threads
                .into_iter()
                .map(|t| t.join().expect("no panic"))
                .filter(|r| r.as_ref().is_ok_and(|s| !s.replayed))
                .count();
            if accepted != 1 {
                raced.push(id);
            }
        }
        assert!(super::super::queue::lock(&f.service.submitting).is_empty(), "every id was released");
        let queued = f.fresh_log().queued("D1", usize::MAX).unwrap().len();
        assert!(
            raced.is_empty(),
            "both submissions accepted as new for {} of 200 ids (first: {:?}); D1's queue holds {queued} entries for 200 operations",
            raced.len(),
            raced.first(),
        );
    }

    /// Steps are named `<parent id>.<n>`, and `.` is in no client's OperationID: a copy
    /// `x` next to a client's own `x-1` leaves that operation alone (it once overwrote it,
    /// and its stale queue entry then handed the step out twice per take, and again on
    /// every later take, even once it was done), and no client can take a step's id.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_step_never_takes_the_id_of_an_existing_operation() {
        let f = Fixture::new();
        f.service.users().apply("D1", &user("7", "Ann")).unwrap();
        f.submit("D2", "x-1", OperationRequest::Reboot).await;
        let copy = OperationRequest::CopyUser { user_id: "7".into(), to_devices: vec!["D2".into()] };
        let parent = f.submit("D1", "x", copy).await.record;
        assert_eq!(parent.children, ["x.1"]);
        let mut wrong = Vec::new();
        let kind = f.record("x-1").kind;
        if kind != "reboot" {
            wrong.push(format!("the client's operation x-1 is now the step of x ({kind})"));
        }
        let first = f.take("D2");
        if first != ["x-1", "x.1"] {
            wrong.push(format!("the first take handed out {first:?}"));
        }
        f.answer("D2", "x-1", 0).await;
        f.answer("D2", "x.1", 0).await;
        let closed = (f.state("x-1"), f.state("x.1"));
        let second = f.take("D2");
        if !second.is_empty() {
            wrong.push(format!("a take after x-1 and x.1 were answered {closed:?} handed out {second:?} again"));
        }
        let after = (f.state("x-1"), f.state("x.1"));
        if after != closed {
            wrong.push(format!("that take changed x-1 and x.1 from {closed:?} to {after:?}"));
        }
        if f.state("x") != (OperationState::Done, Some(0)) {
            wrong.push(format!("the copy ended {:?}", f.state("x")));
        }
        // Nor can a client name an operation like a step.
        let named = f.service.submit(&f.device("D2"), Some("y.1".into()), OperationRequest::Reboot, None).await;
        if !matches!(named, Err(SubmitError::Field(ref e)) if e.field == "OperationID") {
            wrong.push(format!("a client submitted y.1: {named:?}"));
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }
}
