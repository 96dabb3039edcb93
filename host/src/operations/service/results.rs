//! What devices report back: results close their operations (done on 0, failed with the
//! device's code otherwise; a step's result advances its move/copy), and a confirmed
//! command, like a reported enrolment, teaches the user directory what is on the device.
//! A device's own result reaches the routes as the event it sent, annotated with the
//! final `Status` before it is journaled.
use super::announce::Announcement;
use super::closing::ClosedBy;
use super::queue::{OperationService, lock};
use crate::plugin::bindings::types::{CommandBody, CommandResult, EventBody};
use crate::store::{OperationState, StoreError};

impl OperationService {
    /// Adds the operation's final `Status` (`done` or `failed`) to device results before
    /// they are journaled, so the callback sees it.
    pub fn annotate(bodies: &mut [EventBody]) {
        for body in bodies {
            if let EventBody::CommandResult(r) = body
                && !r.details.iter().any(|(k, _)| k == "Status")
            {
                let status = if r.return_code == 0 { "done" } else { "failed" };
                r.details.insert(0, ("Status".into(), status.into()));
            }
        }
    }

    /// Learns from events a device reported (already journaled): results close their
    /// operations; enrolments update the user directory.
    pub async fn observe(&self, device: &str, bodies: &[EventBody]) -> Result<(), StoreError> {
        let mut announcements = Vec::new();
        let mut changed = false;
        {
            let _t = lock(&self.transitions);
            for body in bodies {
                match body {
                    EventBody::CommandResult(result) => {
                        changed |= self.close_from_device(device, result, &mut announcements)?;
                    }
                    EventBody::UserUpdate(update) => {
                        self.users.apply(device, &update.user)?;
                        changed = true;
                    }
                    _ => {}
                }
            }
        }
        if changed {
            self.journal.durable().await?;
            self.wake_settled();
        }
        self.announce(announcements).await;
        Ok(())
    }

    fn close_from_device(
        &self,
        device: &str,
        result: &CommandResult,
        announcements: &mut Vec<Announcement>,
    ) -> Result<bool, StoreError> {
        let Some(mut record) = self.log.get(&result.operation_id)? else {
            tracing::warn!(device, operation = %result.operation_id, "a result for an unknown operation");
            return Ok(false);
        };
        if record.device_id != device {
            tracing::warn!(device, operation = %record.id, "a result from another device than the operation's; ignored");
            return Ok(false);
        }
        if !record.state.is_open() {
            return Ok(false);
        }
        let state = if result.return_code == 0 { OperationState::Done } else { OperationState::Failed };
        if state == OperationState::Done
            && let Some(command) = &record.command
        {
            self.learn(device, &command.body)?;
        }
        record.details = result.details.iter().filter(|(k, _)| k != "Status").cloned().collect();
        self.close(&mut record, (state, result.return_code, ClosedBy::Device), None, announcements)?;
        Ok(true)
    }

    /// What a confirmed command tells about the users on the device.
    fn learn(&self, device: &str, body: &CommandBody) -> Result<(), StoreError> {
        match body {
            CommandBody::UpsertUser(user) => {
                self.users.apply(device, user)?;
            }
            CommandBody::DeleteUser(id) => self.users.remove(device, id)?,
            CommandBody::DeleteAllUsers | CommandBody::ClearAllData => self.users.clear(device)?,
            CommandBody::SetUserEnabled((id, enabled)) => {
                if let Some(mut change) = self.users.get(device, id)? {
                    change.templates.clear();
                    change.photo = None;
                    change.enabled = Some(*enabled);
                    self.users.apply(device, &change)?;
                }
            }
            CommandBody::DeleteTemplate(args) => {
                self.users.remove_template(device, &args.user_id, args.kind, args.index)?
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::fixture::{Fixture, add_user, result, user};
    use super::*;
    use crate::operations::catalogue::OperationRequest;
    use crate::plugin::bindings::types::{DeviceTime, UserUpdate};

    /// A device's result closes its operation: done on 0, failed with the device's own
    /// code otherwise, with what the device returned; only a confirmed command teaches
    /// the directory.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_result_closes_its_operation_done_or_failed_with_its_code() {
        let f = Fixture::new();
        f.submit("D1", "ok", add_user("7", "Ann")).await;
        f.submit("D1", "ko", add_user("8", "Bob")).await;
        assert_eq!(f.take("D1"), ["ok", "ko"]);
        let mut done = result("ok", 0);
        if let EventBody::CommandResult(r) = &mut done {
            r.details = vec![("Status".into(), "done".into()), ("Users".into(), "1".into())];
        }
        f.service.observe("D1", &[done, result("ko", -10)]).await.unwrap();
        let ok = f.record("ok");
        assert_eq!((ok.state, ok.return_code), (OperationState::Done, Some(0)));
        assert_eq!(ok.details, [("Status".to_string(), "done".to_string()), ("Users".into(), "1".into())]);
        assert!(ok.finished_at_ms.is_some());
        let ko = f.record("ko");
        assert_eq!((ko.state, ko.return_code), (OperationState::Failed, Some(-10)));
        assert_eq!(ko.details, [("Status".to_string(), "failed".to_string())]);
        assert_eq!(f.service.users().get("D1", "7").unwrap().and_then(|u| u.first_name).as_deref(), Some("Ann"));
        assert_eq!(f.service.users().get("D1", "8").unwrap(), None);
        // The device's own results are its events: the gateway announces nothing more.
        assert!(f.announced("D1").is_empty());
    }

    /// A result for an operation the gateway does not know is harmless.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_result_for_an_unknown_operation_is_harmless() {
        let f = Fixture::new();
        f.submit("D1", "a", add_user("7", "Ann")).await;
        f.take("D1");
        f.service.observe("D1", &[result("nope", 0)]).await.unwrap();
        assert!(!f.fresh_log().contains("nope").unwrap());
        assert_eq!(f.state("a"), (OperationState::Sent, None));
        assert!(f.announced("D1").is_empty());
    }

    /// A result from another device than the operation's is ignored.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_result_from_another_device_is_ignored() {
        let f = Fixture::new();
        f.submit("D1", "a", add_user("7", "Ann")).await;
        f.take("D1");
        f.answer("D2", "a", 0).await;
        assert_eq!(f.state("a"), (OperationState::Sent, None));
        assert_eq!(f.service.users().get("D2", "7").unwrap(), None);
    }

    /// The first result decides: a later one does not reopen or change the operation.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_second_result_changes_nothing() {
        let f = Fixture::new();
        f.submit("D1", "a", add_user("7", "Ann")).await;
        f.take("D1");
        f.answer("D1", "a", 0).await;
        let closed = f.record("a");
        f.answer("D1", "a", -5).await;
        assert_eq!(f.record("a"), closed);
    }

    /// Confirmed commands teach the directory: a block disables the known user, a
    /// delete removes it; a reported enrolment adds the user.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn confirmed_commands_and_enrolments_teach_the_directory() {
        let f = Fixture::new();
        f.service.users().apply("D1", &user("7", "Ann")).unwrap();
        f.service.users().apply("D1", &user("8", "Bob")).unwrap();
        f.submit("D1", "block", OperationRequest::BlockUser { user_id: "7".into() }).await;
        f.submit("D1", "delete", super::super::fixture::delete_user("8")).await;
        f.take("D1");
        f.answer("D1", "block", 0).await;
        f.answer("D1", "delete", 0).await;
        let ann = f.service.users().get("D1", "7").unwrap().expect("kept");
        assert_eq!((ann.enabled, ann.first_name.as_deref()), (Some(false), Some("Ann")));
        assert_eq!(f.service.users().get("D1", "8").unwrap(), None);
        let enrolled = UserUpdate {
            user: user("9", "Cid"),
            operation_time: DeviceTime { unix_seconds: 0, utc_offset_minutes: 0 },
        };
        f.service.observe("D1", &[EventBody::UserUpdate(enrolled)]).await.unwrap();
        assert!(f.service.users().get("D1", "9").unwrap().is_some());
    }

    /// A client waiting for an operation hears of its result.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiting_client_gets_the_closed_record() {
        let f = Fixture::new();
        f.submit("D1", "a", add_user("7", "Ann")).await;
        f.take("D1");
        let service = f.service.clone();
        let waiting = tokio::spawn(async move { service.wait("a", Duration::from_secs(30)).await.unwrap() });
        f.answer("D1", "a", 0).await;
        let record = tokio::time::timeout(Duration::from_secs(10), waiting).await.expect("in time").unwrap();
        assert_eq!(record.map(|r| (r.state, r.return_code)), Some((OperationState::Done, Some(0))));
        // And one that times out gets the record as it stands.
        f.submit("D1", "b", add_user("8", "Bob")).await;
        let open = f.service.wait("b", Duration::from_millis(1)).await.unwrap();
        assert_eq!(open.map(|r| r.state), Some(OperationState::Queued));
        assert_eq!(f.service.wait("nope", Duration::from_millis(1)).await.unwrap(), None);
    }

    /// Results are annotated with their final status before they are journaled, unless
    /// the device already said.
    #[test]
    fn annotate_adds_the_final_status() {
        let mut bodies = vec![result("a", 0), result("b", -1), result("c", -1)];
        if let EventBody::CommandResult(r) = &mut bodies[2] {
            r.details.push(("Status".into(), "mine".into()));
        }
        OperationService::annotate(&mut bodies);
        let statuses: Vec<_> = bodies
            .iter()
            .map(|b| match b {
                EventBody::CommandResult(r) => r.details[0].1.clone(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(statuses, ["done", "failed", "mine"]);
    }
}
