//! Command results, `POST /iclock/devicecmd?SN=..`: one `ID=<id>&Return=<code>&CMD=<kind>`
//! line per result, several per body; `INFO` results are followed by `Key=Value` lines.
//! Each result maps back, through the kv id mapping, to the gateway's operation id and
//! becomes a `command-result` event. An operation sent as several commands (a user with
//! templates) gives one event once every part has answered: the first non-zero return
//! code, or 0. The reply is `OK`.

use biogate_sdk::prelude::*;

use crate::codes;
use crate::request;
use crate::state::{self, Progress};

/// One result as the device wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeviceResult {
    /// The command id (`ID`).
    pub(crate) id: String,
    /// The return code (`Return`).
    pub(crate) code: i32,
    /// Every other pair of the line (`CMD`...) and the `Key=Value` lines after it.
    pub(crate) details: Vec<(String, String)>,
}

/// The results of a body, and the bad lines (line number, reason).
pub(crate) fn parse(text: &str) -> (Vec<DeviceResult>, Vec<(usize, String)>) {
    let mut results: Vec<DeviceResult> = Vec::new();
    let mut bad = Vec::new();
    // What the `Key=Value` lines that follow belong to: nothing yet (`None`), the last
    // result (`Some(true)`), or a bad result they are skipped with (`Some(false)`).
    let mut after: Option<bool> = None;
    for (number, line) in request::lines(text) {
        let line = line.trim();
        if line.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("ID=")) {
            match parse_result(line) {
                Ok(result) => results.push(result),
                Err(reason) => bad.push((number, reason)),
            }
            after = Some(bad.last().is_none_or(|(n, _)| *n != number));
            continue;
        }
        match (after, results.last_mut(), line.split_once('=')) {
            (Some(true), Some(last), Some((k, v))) => {
                last.details.push((k.trim().to_owned(), v.trim().to_owned()));
            }
            (Some(false), _, Some(_)) => {}
            _ => bad.push((number, "not an ID=..&Return=.. result".into())),
        }
    }
    (results, bad)
}

/// `ID=..&Return=..&CMD=..`.
fn parse_result(line: &str) -> Result<DeviceResult, String> {
    let (mut id, mut code, mut details) = (None, None, Vec::new());
    for pair in line.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("ID") {
            id = Some(v.to_owned());
        } else if k.eq_ignore_ascii_case("Return") {
            code = Some(v.parse::<i32>().map_err(|_| format!("Return `{v}` is not a number"))?);
        } else if !k.is_empty() {
            details.push((k.to_owned(), v.to_owned()));
        }
    }
    let id = id.filter(|id| !id.is_empty()).ok_or("empty ID")?;
    let code = code.ok_or("no Return")?;
    Ok(DeviceResult { id, code, details })
}

/// Handles a results body: one `command-result` event per finished operation.
pub(crate) fn handle(device: &DeviceContext, request: &HttpRequest) -> DialectReply {
    let dev = device.device_id.as_str();
    let (results, bad) = parse(&request::text(&request.body));
    for (line, reason) in &bad {
        warn!(device = dev, line = line; "devicecmd: bad line ignored: {reason}");
    }
    let events = results.into_iter().filter_map(|result| map_back(dev, result)).map(EventBody::CommandResult).collect();
    DialectReply::text(200, "OK").with_events(events)
}

/// The `command-result` of a device result, once its operation is complete.
fn map_back(dev: &str, result: DeviceResult) -> Option<CommandResult> {
    let sent = match result.id.parse::<u64>().map(|id| (id, state::lookup(dev, id))) {
        Ok((id, Ok(Some(sent)))) => (id, sent),
        Ok((_, Ok(None))) | Err(_) => {
            warn!(device = dev, id = result.id, code = result.code; "devicecmd: result of an unknown command id ignored");
            return None;
        }
        Ok((_, Err(err))) => {
            error!(device = dev, id = result.id, error = err; "devicecmd: could not look up a command id; result lost");
            return None;
        }
    };
    let (id, sent) = sent;
    if sent.parts <= 1 {
        return Some(CommandResult {
            operation_id: sent.operation_id,
            return_code: result.code,
            details: result.details,
        });
    }
    let op = sent.operation_id.as_str();
    let mut progress = match state::progress(dev, op) {
        Ok(Some(p)) => p,
        Ok(None) => {
            debug!(device = dev, operation = op, id = id; "devicecmd: repeated result of a finished operation");
            return None;
        }
        Err(err) => {
            error!(device = dev, operation = op, error = err; "devicecmd: could not read an operation's progress");
            Progress::default()
        }
    };
    if progress.answered.contains(&id) {
        debug!(device = dev, operation = op, id = id; "devicecmd: repeated result");
        return None;
    }
    progress.answered.push(id);
    if result.code != codes::OK && progress.code == codes::OK {
        progress.code = result.code;
        progress.details = result.details;
        progress.details.push(("failed_id".into(), id.to_string()));
    }
    if progress.answered.len() < sent.parts as usize {
        if let Err(err) = state::set_progress(dev, op, &progress) {
            error!(device = dev, operation = op, error = err; "devicecmd: could not record an operation's progress");
        }
        return None;
    }
    if let Err(err) = state::forget_progress(dev, op) {
        warn!(device = dev, operation = op, error = err; "devicecmd: could not forget a finished operation");
    }
    let mut details = progress.details;
    details.push(("parts".into(), sent.parts.to_string()));
    Some(CommandResult { operation_id: sent.operation_id, return_code: progress.code, details })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_results_and_info_details() {
        let body = "ID=1&Return=0&CMD=DATA\r\nID=2&Return=-10&CMD=DATA\nID=3&Return=0&CMD=INFO\n~DeviceName=K40\nMAC=00:17:61:01:02:03\nUserCount=12\n";
        let (results, bad) = parse(body);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(results.len(), 3);
        assert_eq!(results[0], DeviceResult { id: "1".into(), code: 0, details: vec![("CMD".into(), "DATA".into())] });
        assert_eq!(results[1].code, -10);
        assert_eq!(
            results[2].details,
            vec![
                ("CMD".to_owned(), "INFO".to_owned()),
                ("~DeviceName".to_owned(), "K40".to_owned()),
                ("MAC".to_owned(), "00:17:61:01:02:03".to_owned()),
                ("UserCount".to_owned(), "12".to_owned()),
            ]
        );
    }

    #[test]
    fn bad_results_are_reported_not_fatal() {
        let (results, bad) = parse("junk\nID=&Return=0\nID=5&Return=x\nMAC=1\nid=6&return=-1002&cmd=SHELL");
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].id, "6");
        assert_eq!(results[0].code, -1002);
        assert_eq!(bad.iter().map(|(n, _)| *n).collect::<Vec<_>>(), vec![1, 2, 3]);
    }
}
