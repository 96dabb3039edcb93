//! `{{name}}`: a biogate dialect plugin: it speaks a device protocol on the HTTP path it
//! is mounted at (`http_mount = "/{{name}}"`). This example protocol: a device POSTs
//! `?sn=<serial>` with one punch per line, `<user id>,<unix seconds>`, and gets `OK`.
use biogate_sdk::prelude::*;

/// The dialect.
pub struct Plugin;

impl Dialect for Plugin {
    /// Which device sent the request, from the request alone; the gateway then refuses
    /// unknown or disabled devices before `handle_http`.
    fn identify_http(request: HttpRequest) -> Result<String, DialectError> {
        match request.query_param("sn") {
            Some(sn) if !sn.is_empty() => Ok(sn.to_owned()),
            _ => Err(DialectError::BadRequest("missing ?sn=".into())),
        }
    }

    /// The reply and the events of one request; the gateway stores the events durably
    /// before it sends the reply.
    fn handle_http(device: DeviceContext, request: HttpRequest) -> Result<DialectReply, DialectError> {
        let body = String::from_utf8(request.body).map_err(|_| DialectError::BadRequest("body is not UTF-8".into()))?;
        let mut events = Vec::new();
        for line in body.lines().filter(|l| !l.trim().is_empty()) {
            let (user, seconds) = line
                .split_once(',')
                .ok_or_else(|| DialectError::BadRequest(format!("not `user,seconds`: {line:?}")))?;
            let seconds: i64 =
                seconds.trim().parse().map_err(|_| DialectError::BadRequest(format!("bad time: {line:?}")))?;
            let time = DeviceTime::new(seconds, device.utc_offset_minutes);
            events.push(EventBody::Punch(Punch::new(user.trim(), time)));
        }
        Ok(DialectReply { status: 200, headers: vec![], body: b"OK".to_vec(), events })
    }
}

export_dialect!(Plugin);

#[cfg(test)]
mod tests {
    use biogate_sdk::prelude::*;

    use super::Plugin;

    fn request(query: &[(&str, &str)], body: &str) -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            path: "/{{name}}".into(),
            query: query.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            headers: vec![],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn each_line_is_a_punch_and_a_bad_line_refuses_the_request() {
        assert_eq!(Plugin::identify_http(request(&[("sn", "SN1")], "")).ok().as_deref(), Some("SN1"));
        let device = DeviceContext { device_id: "SN1".into(), label: "door".into(), utc_offset_minutes: 60 };
        let reply = Plugin::handle_http(device.clone(), request(&[("sn", "SN1")], "7,1750000000\n8,1750000060\n"))
            .expect("a reply");
        assert_eq!((reply.status, reply.events.len()), (200, 2));
        assert!(matches!(&reply.events[1], EventBody::Punch(p) if p.user_id == "8"));
        assert!(Plugin::handle_http(device, request(&[("sn", "SN1")], "7;1750000000")).is_err());
    }
}
