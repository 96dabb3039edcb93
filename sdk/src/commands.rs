//! Commands waiting for a device (dialect plugins only).

use crate::prelude::Command;

/// Takes up to `max` of `device_id`'s queued commands, oldest first. The gateway marks
/// them as sent; the device's answers come back as `command-result` events carrying the
/// command's `operation_id`.
pub fn take_pending(device_id: &str, max: u32) -> Vec<Command> {
    crate::backend::take_pending(device_id, max)
}

#[cfg(test)]
mod tests {
    use crate::prelude::{Command, CommandBody};
    use crate::testing;

    #[test]
    fn pending_commands_come_out_in_order() {
        for (n, body) in
            [CommandBody::Reboot, CommandBody::UnlockDoor, CommandBody::ClearPhotos].into_iter().enumerate()
        {
            testing::push_command("D1", Command { operation_id: format!("op{n}"), body });
        }
        let first = super::take_pending("D1", 2);
        assert_eq!(first.iter().map(|c| c.operation_id.as_str()).collect::<Vec<_>>(), ["op0", "op1"]);
        assert_eq!(super::take_pending("D1", 10).len(), 1);
        assert!(super::take_pending("D2", 10).is_empty());
    }
}
