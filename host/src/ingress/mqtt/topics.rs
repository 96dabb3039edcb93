//! The topic layout: `<prefix>/<device>/punch`, `.../cmd`, `.../cmd/result`, `.../status`.

/// What a device published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Events (`punch`).
    Punch,
    /// Command results (`cmd/result`).
    Result,
    /// Online/offline (`status`).
    Status,
}

/// The subscriptions of the gateway, shared when a group is set.
pub fn subscriptions(prefix: &str, shared_group: Option<&str>) -> Vec<String> {
    ["punch", "cmd/result", "status"]
        .iter()
        .map(|tail| match shared_group {
            Some(group) => format!("$share/{group}/{prefix}/+/{tail}"),
            None => format!("{prefix}/+/{tail}"),
        })
        .collect()
}

/// The topic the gateway publishes a device's commands on.
pub fn command_topic(prefix: &str, device: &str) -> String {
    format!("{prefix}/{device}/cmd")
}

/// The device and channel of a topic the gateway received, if it is one of ours.
pub fn parse(prefix: &str, topic: &str) -> Option<(String, Channel)> {
    let rest = topic.strip_prefix(prefix)?.strip_prefix('/')?;
    let (device, tail) = rest.split_once('/')?;
    if device.is_empty() {
        return None;
    }
    let channel = match tail {
        "punch" => Channel::Punch,
        "cmd/result" => Channel::Result,
        "status" => Channel::Status,
        _ => return None,
    };
    Some((device.to_string(), channel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip() {
        assert_eq!(parse("biogate", "biogate/SN1/punch"), Some(("SN1".into(), Channel::Punch)));
        assert_eq!(parse("biogate", "biogate/SN1/cmd/result"), Some(("SN1".into(), Channel::Result)));
        assert_eq!(parse("biogate", "biogate/SN1/status"), Some(("SN1".into(), Channel::Status)));
        assert_eq!(parse("biogate", "biogate/SN1/cmd"), None, "the gateway's own commands");
        assert_eq!(parse("biogate", "other/SN1/punch"), None);
        assert_eq!(parse("biogate", "biogate//punch"), None);
        assert_eq!(subscriptions("b", Some("g"))[0], "$share/g/b/+/punch");
        assert_eq!(command_topic("b", "SN1"), "b/SN1/cmd");
    }
}
