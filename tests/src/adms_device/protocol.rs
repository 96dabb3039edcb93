//! The wire formats of the ADMS push protocol as pure functions: the handshake's option
//! reply, the `C:<id>:<command>` lines of a poll reply, command fields, the record lines a
//! device uploads (ATTLOG, OPERLOG, BIODATA), the `OK: <n>` answers, and the result lines
//! of `devicecmd`. Nothing here does I/O.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::terminal::{BioKind, Punch, Template, User};

/// `key=value` fields of a command or a record, separated by tabs. A value keeps every `=`
/// after the first (base64 padding). Keys are looked up case-insensitively, because the
/// specification itself spells them several ways (`PIN`/`Pin`, `TMP`/`Tmp`, `Size`/`SIZE`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// Parses `PIN=1\tName=Ann`. Only tabs separate fields: `PIN=1 Name=Ann` is one field
    /// `PIN` whose value is `1 Name=Ann`, as on a real terminal.
    pub fn parse(text: &str) -> Fields {
        let fields = text
            .split('\t')
            .map(|part| part.trim_end_matches('\r'))
            .filter(|part| !part.trim().is_empty())
            .map(|part| match part.split_once('=') {
                Some((key, value)) => (key.trim().to_string(), value.to_string()),
                None => (part.trim().to_string(), String::new()),
            })
            .collect();
        Fields(fields)
    }

    /// The value of `key` (case-insensitive), if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str())
    }

    /// The value of the first of `keys` present.
    pub fn get_any(&self, keys: &[&str]) -> Option<&str> {
        keys.iter().find_map(|key| self.get(key))
    }
}

/// The server's answer to the handshake (`GET /iclock/cdata?SN=..&options=all..`): the
/// `GET OPTION FROM: <sn>` line, then `key=value` options, plus the `Date` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeOptions {
    /// The serial number of the first line.
    pub serial: String,
    /// Every `key=value` line, in order, values verbatim.
    pub options: Vec<(String, String)>,
    /// The `Date` header as sent, if any.
    pub date: Option<String>,
}

impl HandshakeOptions {
    /// Parses a reply body. The first non-empty line must be `GET OPTION FROM: <sn>` (the
    /// space is optional) with the device's own serial number; a body that is not is refused,
    /// as a terminal refuses it.
    pub fn parse(body: &str, expected_serial: &str) -> Result<HandshakeOptions, String> {
        let mut lines = body.split('\n').map(|line| line.trim_end_matches('\r')).filter(|line| !line.trim().is_empty());
        let first = lines.next().ok_or_else(|| "empty handshake reply".to_string())?;
        let serial = first
            .trim()
            .strip_prefix("GET OPTION FROM:")
            .ok_or_else(|| format!("the first line is not `GET OPTION FROM: <sn>`: {first:?}"))?
            .trim()
            .to_string();
        if serial != expected_serial {
            return Err(format!("options for serial {serial:?}, this device is {expected_serial:?}"));
        }
        let mut options = Vec::new();
        for line in lines {
            match line.split_once('=') {
                Some((key, value)) => options.push((key.trim().to_string(), value.trim().to_string())),
                None => return Err(format!("an option line without `=`: {line:?}")),
            }
        }
        Ok(HandshakeOptions { serial, options, date: None })
    }

    /// An option's value (key compared exactly, as terminals do).
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn number<T: std::str::FromStr>(&self, key: &str) -> Option<T> {
        self.option(key).and_then(|v| v.trim().parse().ok())
    }

    /// `Delay`: seconds between command polls when healthy.
    pub fn delay(&self) -> Option<u64> {
        self.number("Delay")
    }

    /// `ErrorDelay`: seconds between retries after a network error.
    pub fn error_delay(&self) -> Option<u64> {
        self.number("ErrorDelay")
    }

    /// `TimeZone` as given (hours, or minutes beyond ±60).
    pub fn time_zone(&self) -> Option<i32> {
        self.number("TimeZone")
    }

    /// `TimeZone` in minutes east of UTC: values beyond ±60 are minutes (India: 330), others
    /// hours.
    pub fn time_zone_minutes(&self) -> Option<i32> {
        self.time_zone().map(|tz| if tz.abs() > 60 { tz } else { tz * 60 })
    }

    /// `Realtime=1`: upload each record as it happens. Absent means realtime.
    pub fn realtime(&self) -> bool {
        self.option("Realtime").map(|v| v.trim() != "0").unwrap_or(true)
    }

    /// `TransFlag` as sent.
    pub fn trans_flag(&self) -> Option<&str> {
        self.option("TransFlag")
    }

    /// The names of the data the server wants uploaded automatically, from either form of
    /// `TransFlag`: `TransData AttLog\tOpLog..` or the bit string `1111000000..` (bit 1
    /// AttLog, 2 OpLog, 3 AttPhoto, 4 EnrollFP, 5 EnrollUser, 6 FPImag, 7 ChgUser, 8 ChgFP,
    /// 9 FACE, 10 UserPic, 11 WORKCODE, 12 BioPhoto). `None` without `TransFlag`.
    pub fn trans_flags(&self) -> Option<Vec<String>> {
        const BITS: [&str; 12] = [
            "AttLog",
            "OpLog",
            "AttPhoto",
            "EnrollFP",
            "EnrollUser",
            "FPImag",
            "ChgUser",
            "ChgFP",
            "FACE",
            "UserPic",
            "WORKCODE",
            "BioPhoto",
        ];
        let value = self.trans_flag()?.trim();
        if !value.is_empty() && value.chars().all(|c| c == '0' || c == '1') {
            return Some(
                value.chars().zip(BITS).filter(|(bit, _)| *bit == '1').map(|(_, name)| name.to_string()).collect(),
            );
        }
        let list = value.strip_prefix("TransData").unwrap_or(value);
        Some(list.split(|c: char| c.is_whitespace()).filter(|s| !s.is_empty()).map(str::to_string).collect())
    }

    /// Whether `flag` (e.g. `AttLog`, `EnrollUser`) is uploaded automatically: true without
    /// `TransFlag`, else whether the list names it (case-insensitive).
    pub fn transmits(&self, flag: &str) -> bool {
        match self.trans_flags() {
            None => true,
            Some(flags) => flags.iter().any(|f| f.eq_ignore_ascii_case(flag)),
        }
    }

    /// The resume mark the server holds for `table` (`ATTLOG`, `OPERLOG`, `ATTPHOTO`,
    /// `BIODATA`..): `<table>Stamp`, or the old names `Stamp`, `OpStamp`, `PhotoStamp`.
    pub fn stamp(&self, table: &str) -> Option<&str> {
        let legacy = match table {
            "ATTLOG" => Some("Stamp"),
            "OPERLOG" => Some("OpStamp"),
            "ATTPHOTO" => Some("PhotoStamp"),
            _ => None,
        };
        self.option(&format!("{table}Stamp")).or_else(|| legacy.and_then(|key| self.option(key)))
    }

    /// `PushProtVer`, or `2.2.14` when absent (the specification's default).
    pub fn push_prot_ver(&self) -> &str {
        self.option("PushProtVer").unwrap_or("2.2.14")
    }

    /// The version both sides use: the lower of the device's and the server's.
    pub fn negotiated_version(&self, device_version: &str) -> String {
        let server = self.push_prot_ver();
        if version_key(device_version) <= version_key(server) { device_version.to_string() } else { server.to_string() }
    }

    /// The `Date` header as a point in time.
    pub fn server_time(&self) -> Option<SystemTime> {
        self.date.as_deref().and_then(|d| httpdate::parse_http_date(d).ok())
    }
}

fn version_key(version: &str) -> Vec<u64> {
    version.split('.').map(|part| part.trim().parse().unwrap_or(0)).collect()
}

/// A stamp value as a resume mark: `None`, empty, `0` and anything not a number mean
/// "nothing received, send everything again".
pub fn stamp_mark(stamp: Option<&str>) -> u64 {
    stamp.and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

/// One line of a poll reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollLine {
    /// `C:<id>:<command>`.
    Command {
        /// The command id: letters and digits, at most 16.
        id: String,
        /// The text after the second colon.
        text: String,
    },
    /// A line a terminal drops silently: no `C:` prefix, or an id that is empty, longer
    /// than 16 characters or not alphanumeric.
    Ignored(String),
}

/// Parses the body of `GET /iclock/getrequest`: `OK` (nothing queued) or one command per
/// line.
pub fn parse_poll_reply(body: &str) -> Vec<PollLine> {
    if body.trim() == "OK" {
        return Vec::new();
    }
    body.split('\n')
        .map(|line| line.trim_end_matches('\r'))
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let parsed = line.strip_prefix("C:").and_then(|rest| rest.split_once(':'));
            match parsed {
                Some((id, text))
                    if !id.is_empty() && id.len() <= 16 && id.chars().all(|c| c.is_ascii_alphanumeric()) =>
                {
                    PollLine::Command { id: id.to_string(), text: text.to_string() }
                }
                _ => PollLine::Ignored(line.to_string()),
            }
        })
        .collect()
}

/// A command as the terminal understands it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `DATA <action> <table> <fields>`; `action` is `UPDATE`, `DELETE`, `QUERY` or anything
    /// else (refused).
    Data { action: String, table: String, fields: Fields },
    /// `CLEAR LOG`, `CLEAR PHOTO`, `CLEAR DATA`, `CLEAR BIODATA`, .. (what follows `CLEAR `).
    Clear(String),
    /// `CHECK`: read the options again and re-upload from the returned stamps.
    Check,
    /// `LOG`: upload new records now.
    Log,
    /// `INFO`: answer with the device's information.
    Info,
    /// `REBOOT`.
    Reboot,
    /// `SET OPTION <key>=<value>` (`None` when there is no `=`).
    SetOption(Option<(String, String)>),
    /// `RELOAD OPTIONS`.
    ReloadOptions,
    /// `AC_UNLOCK`.
    AcUnlock,
    /// `CONTROL DEVICE <AABBCCDDEE>` (the parameter as sent).
    ControlDevice(String),
    /// `ENROLL_FP PIN=..\tFID=..\tRETRY=..\tOVERWRITE=..`.
    EnrollFp(Fields),
    /// Anything else: the device answers -1002.
    Unsupported(String),
}

impl Command {
    /// Parses the text of a `C:<id>:<text>` line.
    pub fn parse(text: &str) -> Command {
        let text = text.trim_end_matches('\r');
        let (head, rest) = text.split_once(' ').unwrap_or((text, ""));
        match head {
            "DATA" => {
                let (action, rest) = rest.split_once(' ').unwrap_or((rest, ""));
                let (table, fields) = rest.split_once(' ').unwrap_or((rest, ""));
                Command::Data { action: action.to_string(), table: table.to_string(), fields: Fields::parse(fields) }
            }
            "CLEAR" => Command::Clear(rest.trim().to_string()),
            "CHECK" if rest.is_empty() => Command::Check,
            "LOG" if rest.is_empty() => Command::Log,
            "INFO" if rest.is_empty() => Command::Info,
            "REBOOT" if rest.is_empty() => Command::Reboot,
            "AC_UNLOCK" if rest.is_empty() => Command::AcUnlock,
            "SET" if rest.starts_with("OPTION") => {
                let option = rest["OPTION".len()..].trim();
                Command::SetOption(
                    option
                        .split_once('=')
                        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                        .filter(|(k, _)| !k.is_empty()),
                )
            }
            "RELOAD" if rest.trim() == "OPTIONS" => Command::ReloadOptions,
            "CONTROL" if rest.starts_with("DEVICE") => {
                Command::ControlDevice(rest["DEVICE".len()..].trim().to_string())
            }
            "ENROLL_FP" => Command::EnrollFp(Fields::parse(rest)),
            _ => Command::Unsupported(text.to_string()),
        }
    }

    /// What the result line names in `CMD=`, as the specification lists it: `DATA` for every
    /// data command, `CLEAR_LOG`, `CLEAR PHOTO` (with a space, as specified), `CLEAR_DATA`,
    /// `SET OPTION`, `INFO`, ... For an unknown command, its first word.
    pub fn result_name(&self) -> String {
        match self {
            Command::Data { .. } => "DATA".into(),
            Command::Clear(what) if what == "PHOTO" => "CLEAR PHOTO".into(),
            Command::Clear(what) => format!("CLEAR_{}", what.replace(' ', "_")),
            Command::Check => "CHECK".into(),
            Command::Log => "LOG".into(),
            Command::Info => "INFO".into(),
            Command::Reboot => "REBOOT".into(),
            Command::SetOption(_) => "SET OPTION".into(),
            Command::ReloadOptions => "RELOAD OPTIONS".into(),
            Command::AcUnlock => "AC_UNLOCK".into(),
            Command::ControlDevice(_) => "CONTROL DEVICE".into(),
            Command::EnrollFp(_) => "ENROLL_FP".into(),
            Command::Unsupported(text) => text.split_whitespace().next().unwrap_or("").to_string(),
        }
    }
}

/// One result line of `POST /iclock/devicecmd`: `ID=<id>&Return=<code>&CMD=<cmd>`.
pub fn result_line(id: &str, code: i32, cmd: &str) -> String {
    format!("ID={id}&Return={code}&CMD={cmd}")
}

/// An upload's answer, as a terminal reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadReply {
    /// `OK: <n>` (or `OK:<n>`): n records accepted.
    Count(u64),
    /// `OK` alone.
    BareOk,
    /// Anything else (an error description, an empty body).
    NotOk,
}

/// Reads an upload's answer body.
pub fn parse_upload_reply(body: &str) -> UploadReply {
    let body = body.trim();
    let Some(rest) = body.strip_prefix("OK") else {
        return UploadReply::NotOk;
    };
    let rest = rest.trim();
    if rest.is_empty() {
        return UploadReply::BareOk;
    }
    match rest.strip_prefix(':').map(str::trim).and_then(|n| n.parse().ok()) {
        Some(n) => UploadReply::Count(n),
        None if rest == ":" => UploadReply::BareOk,
        None => UploadReply::NotOk,
    }
}

/// An ATTLOG line: `PIN\tTime\tStatus\tVerify\tWorkcode\tReserved1\tReserved2\tMaskFlag\tTemperature`
/// (9 fields), or under the 8-field quirk the same without Temperature and with Status 255.
pub fn attlog_line(punch: &Punch, eight_fields: bool) -> String {
    let mask = if punch.mask { 1 } else { 0 };
    if eight_fields {
        format!("{}\t{}\t255\t{}\t{}\t0\t0\t{mask}", punch.pin, punch.time, punch.verify, punch.workcode)
    } else {
        let temperature = punch.temperature.as_deref().unwrap_or("0");
        format!(
            "{}\t{}\t{}\t{}\t{}\t0\t0\t{mask}\t{temperature}",
            punch.pin, punch.time, punch.status, punch.verify, punch.workcode
        )
    }
}

/// An OPERLOG `USER` line.
pub fn user_line(user: &User) -> String {
    let mut line = format!(
        "USER PIN={}\tName={}\tPri={}\tPasswd={}\tCard={}\tGrp={}\tTZ={}\tVerify={}\tViceCard={}",
        user.pin,
        user.name,
        user.privilege,
        user.password,
        user.card,
        user.group,
        user.time_zones,
        user.verify,
        user.vice_card
    );
    if let Some(start) = &user.start_datetime {
        line.push_str(&format!("\tStartDatetime={start}"));
    }
    if let Some(end) = &user.end_datetime {
        line.push_str(&format!("\tEndDatetime={end}"));
    }
    line
}

/// An OPERLOG `FP` line (fingerprint `fid`).
pub fn fp_line(pin: &str, fid: u32, template: &Template) -> String {
    format!("FP PIN={pin}\tFID={fid}\tSize={}\tValid={}\tTMP={}", template.tmp.len(), template.valid, template.tmp)
}

/// An OPERLOG `FACE` line (upper-case keys, as terminals upload them).
pub fn face_line(pin: &str, fid: u32, template: &Template) -> String {
    format!("FACE PIN={pin}\tFID={fid}\tSIZE={}\tVALID={}\tTMP={}", template.tmp.len(), template.valid, template.tmp)
}

/// An OPERLOG `USERPIC` line.
pub fn userpic_line(pin: &str, content: &str) -> String {
    format!("USERPIC PIN={pin}\tFileName={pin}.jpg\tSize={}\tContent={content}", content.len())
}

/// A `BIODATA` line (table `BIODATA`).
pub fn biodata_line(pin: &str, kind: BioKind, no: u32, index: u32, template: &Template) -> String {
    format!(
        "BIODATA Pin={pin}\tNo={no}\tIndex={index}\tValid={}\tDuress={}\tType={}\tMajorVer={}\tMinorVer={}\tFormat={}\tTmp={}",
        template.valid,
        template.duress,
        kind.code(),
        template.major_ver,
        template.minor_ver,
        template.format,
        template.tmp
    )
}

/// Standard base64 with padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Whether `text` is well-formed standard base64 (length a multiple of 4, at most two `=` at
/// the end).
pub fn is_base64(text: &str) -> bool {
    let body = text.trim_end_matches('=');
    !text.is_empty()
        && text.len().is_multiple_of(4)
        && text.len() - body.len() <= 2
        && body.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
}

/// Percent-encodes a query value the way terminals do (`%20` for a space); commas stay.
pub fn encode_query_value(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~,".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Formats `time` shifted by `offset_minutes` as device wall time `YYYY-MM-DD HH:MM:SS`.
pub fn wall_time(time: SystemTime, offset_minutes: i32) -> String {
    let secs =
        time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs() as i64 + i64::from(offset_minutes) * 60;
    let (days, secs_of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        secs_of_day / 3600,
        secs_of_day % 3600 / 60,
        secs_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &str = "GET OPTION FROM: 0316144680030\nATTLOGStamp=None\nOPERLOGStamp=9999\nATTPHOTOStamp=None\nErrorDelay=30\nDelay=10\nTransTimes=00:00;14:05\nTransInterval=1\nTransFlag=TransData AttLog\tOpLog\tAttPhoto\tEnrollUser\tChgUser\tEnrollFP\tChgFP\tUserPic\nTimeZone=8\nRealtime=1\nEncrypt=None\nServerVer=2.4.1 2024-01-01\nPushProtVer=2.4.1\n";

    #[test]
    fn the_option_reply_of_the_specification_parses() {
        let options = HandshakeOptions::parse(OPTIONS, "0316144680030").expect("parses");
        assert_eq!(options.serial, "0316144680030");
        assert_eq!(options.delay(), Some(10));
        assert_eq!(options.error_delay(), Some(30));
        assert_eq!(options.time_zone(), Some(8));
        assert_eq!(options.time_zone_minutes(), Some(480));
        assert!(options.realtime());
        assert_eq!(options.stamp("ATTLOG"), Some("None"));
        assert_eq!(options.stamp("OPERLOG"), Some("9999"));
        assert_eq!(options.stamp("BIODATA"), None);
        assert_eq!(options.push_prot_ver(), "2.4.1");
        assert_eq!(options.option("TransTimes"), Some("00:00;14:05"));
        assert_eq!(options.option("ServerVer"), Some("2.4.1 2024-01-01"));
        let flags = options.trans_flags().expect("TransFlag");
        assert_eq!(flags, ["AttLog", "OpLog", "AttPhoto", "EnrollUser", "ChgUser", "EnrollFP", "ChgFP", "UserPic"]);
        assert!(options.transmits("attlog"));
        assert!(!options.transmits("FACE"));
        assert_eq!(options.options.len(), 13);
    }

    #[test]
    fn crlf_no_space_and_legacy_stamps_parse() {
        let body = "GET OPTION FROM:SN1\r\nStamp=12\r\nOpStamp=0\r\nTimeZone=330\r\nRealtime=0\r\n";
        let options = HandshakeOptions::parse(body, "SN1").expect("parses");
        assert_eq!(options.stamp("ATTLOG"), Some("12"));
        assert_eq!(options.stamp("OPERLOG"), Some("0"));
        assert_eq!(options.time_zone_minutes(), Some(330));
        assert_eq!(
            HandshakeOptions::parse("GET OPTION FROM: SN1\nTimeZone=-5", "SN1").unwrap().time_zone_minutes(),
            Some(-300)
        );
        assert!(!options.realtime());
        assert_eq!(options.delay(), None);
        assert_eq!(options.push_prot_ver(), "2.2.14");
        assert_eq!(options.trans_flags(), None);
        assert!(options.transmits("AttLog"));
    }

    #[test]
    fn a_wrong_first_line_or_serial_is_refused() {
        assert!(HandshakeOptions::parse("OK", "SN1").is_err());
        assert!(HandshakeOptions::parse("", "SN1").is_err());
        assert!(HandshakeOptions::parse("GET OPTION FROM: SN2\nDelay=1", "SN1").is_err());
        assert!(HandshakeOptions::parse("Delay=1\nGET OPTION FROM: SN1", "SN1").is_err());
        assert!(HandshakeOptions::parse("GET OPTION FROM: SN1\nDelay", "SN1").is_err());
    }

    #[test]
    fn the_bit_form_of_trans_flag_names_the_data() {
        let options = HandshakeOptions::parse("GET OPTION FROM: S\nTransFlag=1100100000", "S").unwrap();
        assert_eq!(options.trans_flags().unwrap(), ["AttLog", "OpLog", "EnrollUser"]);
        assert!(!options.transmits("EnrollFP"));
    }

    #[test]
    fn the_lower_version_wins() {
        let options = HandshakeOptions::parse("GET OPTION FROM: S\nPushProtVer=2.3.0", "S").unwrap();
        assert_eq!(options.negotiated_version("2.4.1"), "2.3.0");
        assert_eq!(options.negotiated_version("2.2.14"), "2.2.14");
        let absent = HandshakeOptions::parse("GET OPTION FROM: S", "S").unwrap();
        assert_eq!(absent.negotiated_version("2.4.1"), "2.2.14");
    }

    #[test]
    fn stamps_none_zero_and_garbage_mean_from_the_start() {
        assert_eq!(stamp_mark(None), 0);
        assert_eq!(stamp_mark(Some("None")), 0);
        assert_eq!(stamp_mark(Some("0")), 0);
        assert_eq!(stamp_mark(Some("x1")), 0);
        assert_eq!(stamp_mark(Some(" 42 ")), 42);
    }

    #[test]
    fn the_date_header_is_read_and_shifted_by_the_time_zone() {
        let mut options = HandshakeOptions::parse("GET OPTION FROM: S\nTimeZone=330", "S").unwrap();
        options.date = Some("Sun, 21 Jun 2026 03:32:14 GMT".into());
        let at = options.server_time().expect("a date");
        assert_eq!(wall_time(at, 0), "2026-06-21 03:32:14");
        assert_eq!(wall_time(at, options.time_zone_minutes().unwrap()), "2026-06-21 09:02:14");
        assert_eq!(wall_time(at, -240), "2026-06-20 23:32:14");
        assert_eq!(wall_time(UNIX_EPOCH + Duration::from_secs(951_782_400), 0), "2000-02-29 00:00:00");
    }

    #[test]
    fn poll_replies_split_into_commands_and_dropped_lines() {
        assert!(parse_poll_reply("OK").is_empty());
        assert!(parse_poll_reply("OK\r\n").is_empty());
        let lines = parse_poll_reply(
            "C:1:DATA UPDATE USERINFO PIN=1\tName=Ann\r\nC:abc16charsXYZ12:INFO\nDATA UPDATE USERINFO PIN=2\nC:has-dash:INFO\nC:12345678901234567:INFO\nC::INFO\n\nC:7:SET OPTION Delay=5\n",
        );
        assert_eq!(
            lines,
            vec![
                PollLine::Command { id: "1".into(), text: "DATA UPDATE USERINFO PIN=1\tName=Ann".into() },
                PollLine::Command { id: "abc16charsXYZ12".into(), text: "INFO".into() },
                PollLine::Ignored("DATA UPDATE USERINFO PIN=2".into()),
                PollLine::Ignored("C:has-dash:INFO".into()),
                PollLine::Ignored("C:12345678901234567:INFO".into()),
                PollLine::Ignored("C::INFO".into()),
                PollLine::Command { id: "7".into(), text: "SET OPTION Delay=5".into() },
            ]
        );
    }

    #[test]
    fn commands_parse_with_their_result_names() {
        let cases: Vec<(&str, &str)> = vec![
            ("DATA UPDATE USERINFO PIN=1\tName=A B", "DATA"),
            ("DATA DELETE FINGERTMP PIN=1", "DATA"),
            ("CLEAR LOG", "CLEAR_LOG"),
            ("CLEAR PHOTO", "CLEAR PHOTO"),
            ("CLEAR DATA", "CLEAR_DATA"),
            ("CHECK", "CHECK"),
            ("INFO", "INFO"),
            ("REBOOT", "REBOOT"),
            ("SET OPTION Delay=5", "SET OPTION"),
            ("RELOAD OPTIONS", "RELOAD OPTIONS"),
            ("AC_UNLOCK", "AC_UNLOCK"),
            ("CONTROL DEVICE 0101010500", "CONTROL DEVICE"),
            ("ENROLL_FP PIN=1\tFID=0\tRETRY=3\tOVERWRITE=1", "ENROLL_FP"),
            ("USER ADD PIN=1", "USER"),
            ("VERIFY SUM ATTLOG StartTime=a\tEndTime=b", "VERIFY"),
        ];
        for (text, name) in cases {
            assert_eq!(Command::parse(text).result_name(), name, "{text}");
        }
        assert_eq!(
            Command::parse("DATA UPDATE USERINFO PIN=1\tName=A B\tCard=[15CD5B07]"),
            Command::Data {
                action: "UPDATE".into(),
                table: "USERINFO".into(),
                fields: Fields(vec![
                    ("PIN".into(), "1".into()),
                    ("Name".into(), "A B".into()),
                    ("Card".into(), "[15CD5B07]".into())
                ]),
            }
        );
        assert_eq!(Command::parse("SET OPTION Delay=5"), Command::SetOption(Some(("Delay".into(), "5".into()))));
        assert_eq!(Command::parse("SET OPTION Delay"), Command::SetOption(None));
        assert_eq!(Command::parse("CONTROL DEVICE 0101010500"), Command::ControlDevice("0101010500".into()));
        assert_eq!(Command::parse("INFO now"), Command::Unsupported("INFO now".into()));
        assert_eq!(Command::parse("info"), Command::Unsupported("info".into()));
    }

    #[test]
    fn fields_split_on_tabs_only_and_keep_base64_padding() {
        let fields = Fields::parse("PIN=1\tTMP=QUJD==\tName=Ann Lee\tEmpty=\tbare");
        assert_eq!(fields.get("pin"), Some("1"));
        assert_eq!(fields.get("Tmp"), Some("QUJD=="));
        assert_eq!(fields.get("NAME"), Some("Ann Lee"));
        assert_eq!(fields.get("Empty"), Some(""));
        assert_eq!(fields.get("bare"), Some(""));
        assert_eq!(fields.get("Card"), None);
        assert_eq!(Fields::parse("PIN=1 Name=Ann").get("PIN"), Some("1 Name=Ann"));
    }

    #[test]
    fn upload_replies_are_read_like_a_terminal() {
        assert_eq!(parse_upload_reply("OK: 3"), UploadReply::Count(3));
        assert_eq!(parse_upload_reply("OK:9"), UploadReply::Count(9));
        assert_eq!(parse_upload_reply("OK: 0\n"), UploadReply::Count(0));
        assert_eq!(parse_upload_reply("OK"), UploadReply::BareOk);
        assert_eq!(parse_upload_reply("OK:"), UploadReply::BareOk);
        assert_eq!(parse_upload_reply("OK: many"), UploadReply::NotOk);
        assert_eq!(parse_upload_reply("error: bad line"), UploadReply::NotOk);
        assert_eq!(parse_upload_reply(""), UploadReply::NotOk);
    }

    #[test]
    fn attlog_lines_have_nine_fields_or_eight_with_status_255() {
        let punch = Punch::new("1452", "2015-07-30 15:16:28", 1, 15);
        let line = attlog_line(&punch, false);
        assert_eq!(line, "1452\t2015-07-30 15:16:28\t1\t15\t0\t0\t0\t0\t0");
        assert_eq!(line.split('\t').count(), 9);
        let line = attlog_line(&punch, true);
        assert_eq!(line, "1452\t2015-07-30 15:16:28\t255\t15\t0\t0\t0\t0");
        assert_eq!(line.split('\t').count(), 8);
        let masked = Punch { mask: true, temperature: Some("36.6".into()), workcode: "7".into(), ..punch };
        assert_eq!(attlog_line(&masked, false), "1452\t2015-07-30 15:16:28\t1\t15\t7\t0\t0\t1\t36.6");
    }

    #[test]
    fn operlog_lines_follow_the_specification() {
        let mut user = User::new("7", "Ann Lee");
        user.privilege = 14;
        user.card = "[15CD5B07]".into();
        user.password = "123".into();
        assert_eq!(
            user_line(&user),
            "USER PIN=7\tName=Ann Lee\tPri=14\tPasswd=123\tCard=[15CD5B07]\tGrp=1\tTZ=0000000000000000\tVerify=-1\tViceCard="
        );
        user.end_datetime = Some("2026-12-31 23:59:59".into());
        assert!(user_line(&user).ends_with("\tViceCard=\tEndDatetime=2026-12-31 23:59:59"));
        let template = Template::new("QUJDRA==");
        assert_eq!(fp_line("7", 3, &template), "FP PIN=7\tFID=3\tSize=8\tValid=1\tTMP=QUJDRA==");
        assert_eq!(face_line("7", 0, &template), "FACE PIN=7\tFID=0\tSIZE=8\tVALID=1\tTMP=QUJDRA==");
        assert_eq!(userpic_line("7", "/9j/"), "USERPIC PIN=7\tFileName=7.jpg\tSize=4\tContent=/9j/");
        assert_eq!(
            biodata_line("7", BioKind::Palm, 0, 1, &template),
            "BIODATA Pin=7\tNo=0\tIndex=1\tValid=1\tDuress=0\tType=8\tMajorVer=0\tMinorVer=0\tFormat=0\tTmp=QUJDRA=="
        );
        assert_eq!(result_line("a1", -1002, "DATA"), "ID=a1&Return=-1002&CMD=DATA");
    }

    #[test]
    fn base64_round_trips_the_rfc_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(plain.as_bytes()), encoded);
            assert_eq!(is_base64(encoded), !encoded.is_empty(), "{encoded}");
        }
        assert!(!is_base64("Zm9"));
        assert!(!is_base64("Zm9v!A=="));
        assert!(!is_base64("Z==="));
    }

    #[test]
    fn query_values_are_percent_encoded_like_a_terminal() {
        assert_eq!(encode_query_value("Ver 2.0.12-20150625,0,0"), "Ver%202.0.12-20150625%2C0%2C0".replace("%2C", ","));
        assert_eq!(encode_query_value("a&b=c"), "a%26b%3Dc");
    }
}
