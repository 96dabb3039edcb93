//! Reading a device's request the lenient way firmware needs: paths in any case, with or
//! without `.aspx` (eSSL) and with or without the `/iclock` prefix; query parameter
//! names in any case; bodies that are not quite UTF-8.

use std::borrow::Cow;

use biogate_sdk::prelude::*;

/// The ADMS endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `/iclock/cdata` (and `/iclock/fdata`, where some firmware posts photos):
    /// handshake on GET, uploads on POST.
    Cdata,
    /// `/iclock/getrequest`: the command poll.
    GetRequest,
    /// `/iclock/devicecmd`: command results.
    DeviceCmd,
    /// `/iclock/ping`: heartbeat during long uploads.
    Ping,
}

/// The endpoint of a request path: `/iclock/cdata`, `/iclock/CData.aspx`, `/cdata/`...
pub(crate) fn endpoint(path: &str) -> Option<Endpoint> {
    let path = path.trim().trim_end_matches('/').to_ascii_lowercase();
    let path = path.strip_suffix(".aspx").unwrap_or(&path);
    let path = path.strip_prefix("/iclock").unwrap_or(path);
    match path {
        "/cdata" | "/fdata" => Some(Endpoint::Cdata),
        "/getrequest" => Some(Endpoint::GetRequest),
        "/devicecmd" => Some(Endpoint::DeviceCmd),
        "/ping" => Some(Endpoint::Ping),
        _ => None,
    }
}

/// The first query parameter named `name`, compared without regard to case
/// (`SN`, `sn`, `Sn`); its value trimmed.
pub(crate) fn param<'a>(request: &'a HttpRequest, name: &str) -> Option<&'a str> {
    request.query.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim())
}

/// The serial number the request names (`SN`), if it is not blank.
pub(crate) fn serial(request: &HttpRequest) -> Option<&str> {
    param(request, "SN").filter(|sn| !sn.is_empty())
}

/// The body as text. Invalid UTF-8 (GB2312 firmware) is replaced, not refused: the
/// fields that matter (PINs, times, codes) are ASCII.
pub(crate) fn text(body: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(body)
}

/// The non-blank lines of a body, with their 1-based numbers, CR removed.
pub(crate) fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| (i + 1, line))
}

/// A device value for a log line: at most 80 characters.
pub(crate) fn excerpt(text: &str) -> String {
    let mut out: String = text.chars().take(80).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(query: &[(&str, &str)]) -> HttpRequest {
        HttpRequest {
            method: "GET".into(),
            path: "/iclock/cdata".into(),
            query: query.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            headers: vec![],
            body: vec![],
        }
    }

    #[test]
    fn paths_in_every_spelling() {
        for path in
            ["/iclock/cdata", "/iclock/cdata.aspx", "/ICLOCK/CData.ASPX", "/iclock/cdata/", "/cdata", "/iclock/fdata"]
        {
            assert_eq!(endpoint(path), Some(Endpoint::Cdata), "{path}");
        }
        assert_eq!(endpoint("/iclock/getrequest.aspx"), Some(Endpoint::GetRequest));
        assert_eq!(endpoint("/iclock/GetRequest"), Some(Endpoint::GetRequest));
        assert_eq!(endpoint("/iclock/devicecmd.aspx"), Some(Endpoint::DeviceCmd));
        assert_eq!(endpoint("/iclock/ping"), Some(Endpoint::Ping));
        assert_eq!(endpoint("/iclock/registry"), None);
        assert_eq!(endpoint("/iclock/cdata.php"), None);
        assert_eq!(endpoint(""), None);
    }

    #[test]
    fn params_ignore_case() {
        let request = get(&[("sn", " 0316144680030 "), ("Table", "ATTLOG"), ("x", "")]);
        assert_eq!(serial(&request), Some("0316144680030"));
        assert_eq!(param(&request, "TABLE"), Some("ATTLOG"));
        assert_eq!(param(&request, "stamp"), None);
        assert_eq!(serial(&get(&[("SN", "  ")])), None);
    }

    #[test]
    fn lines_skip_blanks_and_cr() {
        let found: Vec<_> = lines("a\r\n\r\n b\n\nc").collect();
        assert_eq!(found, vec![(1, "a"), (3, " b"), (5, "c")]);
        assert_eq!(excerpt(&"x".repeat(100)).chars().count(), 81);
    }
}
