//! The terminal's memory (users with their templates and photo, the attendance log, set
//! options, door unlocks) and the execution of server commands against it, with the return
//! codes of the specification. Pure: no I/O; uploads a command causes are returned as
//! records for the device to queue.
use std::collections::BTreeMap;

use super::protocol::{self, Command, Fields};

/// Return codes (specification appendix 1).
pub mod code {
    /// Success.
    pub const OK: i32 = 0;
    /// Bad or missing parameter.
    pub const BAD_PARAMETER: i32 = -1;
    /// The photo does not have the given `Size`.
    pub const PHOTO_SIZE_MISMATCH: i32 = -2;
    /// The template does not have the given `Size`.
    pub const TEMPLATE_SIZE_MISMATCH: i32 = -9;
    /// No user with this PIN.
    pub const NO_SUCH_USER: i32 = -10;
    /// Illegal template format (not base64).
    pub const ILLEGAL_TEMPLATE: i32 = -11;
    /// Capacity reached.
    pub const CAPACITY: i32 = -1001;
    /// Not supported by this device.
    pub const NOT_SUPPORTED: i32 = -1002;
    /// ENROLL_FP: the finger already has a template and OVERWRITE is not 1.
    pub const ENROLL_EXISTS: i32 = 2;
    /// ENROLL_FP: enrolment failed (bad quality).
    pub const ENROLL_FAILED: i32 = 4;
    /// ENROLL_FP: cancelled at the terminal.
    pub const ENROLL_CANCELLED: i32 = 6;
}

/// A biometric type (the `Type` of BIODATA, specification appendix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BioKind {
    /// 1.
    Fingerprint,
    /// 2 (near-infrared face).
    Face,
    /// 7.
    FingerVein,
    /// 8.
    Palm,
    /// 9.
    VisibleFace,
    /// Any other code (0 generic, 3 voice, 4 iris, 5 retina, 6 palm print, ...).
    Other(u8),
}

impl BioKind {
    /// The type code.
    pub fn code(self) -> u8 {
        match self {
            BioKind::Fingerprint => 1,
            BioKind::Face => 2,
            BioKind::FingerVein => 7,
            BioKind::Palm => 8,
            BioKind::VisibleFace => 9,
            BioKind::Other(code) => code,
        }
    }

    /// The kind of a type code.
    pub fn from_code(code: u8) -> BioKind {
        match code {
            1 => BioKind::Fingerprint,
            2 => BioKind::Face,
            7 => BioKind::FingerVein,
            8 => BioKind::Palm,
            9 => BioKind::VisibleFace,
            other => BioKind::Other(other),
        }
    }
}

/// Where a template sits in a user's record: its kind, `No` (finger 0-9 for fingerprints and
/// veins, 0 for faces) and `Index` (the n-th template of that finger or face).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TemplateKey {
    /// The biometric type.
    pub kind: BioKind,
    /// `No` (FINGERTMP's `FID`).
    pub no: u32,
    /// `Index` (FACE's `FID`).
    pub index: u32,
}

/// A stored template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The template, base64 as received.
    pub tmp: String,
    /// `Valid`: 0 invalid, 1 normal, 3 duress (FINGERTMP).
    pub valid: u8,
    /// `Duress` (BIODATA).
    pub duress: u8,
    /// `MajorVer` (BIODATA).
    pub major_ver: String,
    /// `MinorVer` (BIODATA).
    pub minor_ver: String,
    /// `Format` (BIODATA).
    pub format: String,
}

impl Template {
    /// A valid template with this base64 content.
    pub fn new(tmp: &str) -> Template {
        Template {
            tmp: tmp.to_string(),
            valid: 1,
            duress: 0,
            major_ver: "0".into(),
            minor_ver: "0".into(),
            format: "0".into(),
        }
    }

    /// A deterministic fake fingerprint template (base64) for `pin` and finger `fid`, as
    /// `ENROLL_FP` produces.
    pub fn fake(pin: &str, fid: u32) -> Template {
        let seed = format!("biogate-sim-fp pin={pin} fid={fid};");
        let bytes: Vec<u8> =
            seed.bytes().cycle().take(96).enumerate().map(|(i, b)| b ^ (i as u8).wrapping_mul(31)).collect();
        Template::new(&protocol::base64_encode(&bytes))
    }
}

/// A user as the terminal stores it. Strings keep what the server sent, verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// `PIN`.
    pub pin: String,
    /// `Name`.
    pub name: String,
    /// `Pri`, the ZKTeco privilege byte as received: 0 user, 2 registrar, 6 admin, 14 super
    /// admin; bit 0 set means the user is disabled (blocked), see [`User::enabled`].
    pub privilege: u32,
    /// `Passwd`.
    pub password: String,
    /// `Card` (`123456789` or `[15CD5B07]`).
    pub card: String,
    /// `Grp` (default 1).
    pub group: String,
    /// `TZ` (default 16 zeros: the group's time zones).
    pub time_zones: String,
    /// `Verify` (default -1: the group's mode).
    pub verify: String,
    /// `ViceCard`.
    pub vice_card: String,
    /// `StartDatetime` of the validity window (newer firmware).
    pub start_datetime: Option<String>,
    /// `EndDatetime` of the validity window (newer firmware).
    pub end_datetime: Option<String>,
    /// Templates by kind, number and index.
    pub templates: BTreeMap<TemplateKey, Template>,
    /// The user photo, base64.
    pub photo: Option<String>,
    /// Fields of `DATA UPDATE USERINFO` this terminal does not know, verbatim.
    pub other_fields: Vec<(String, String)>,
}

impl User {
    /// A normal user with defaults for every other field.
    pub fn new(pin: &str, name: &str) -> User {
        User {
            pin: pin.to_string(),
            name: name.to_string(),
            privilege: 0,
            password: String::new(),
            card: String::new(),
            group: "1".into(),
            time_zones: "0000000000000000".into(),
            verify: "-1".into(),
            vice_card: String::new(),
            start_datetime: None,
            end_datetime: None,
            templates: BTreeMap::new(),
            photo: None,
            other_fields: Vec::new(),
        }
    }

    /// Whether the user may punch: bit 0 of the privilege byte clear. ZKTeco firmware keeps
    /// the "disabled" flag in bit 0 of `Pri` (the levels 0, 2, 6, 14 are even), so a server
    /// blocks a user with `DATA UPDATE USERINFO PIN=..\tPri=<level | 1>`.
    pub fn enabled(&self) -> bool {
        self.privilege & 1 == 0
    }

    /// With a fingerprint template on finger `fid`.
    pub fn with_fingerprint(mut self, fid: u32, template: Template) -> User {
        self.templates.insert(TemplateKey { kind: BioKind::Fingerprint, no: fid, index: 0 }, template);
        self
    }

    /// The fingerprint template of finger `fid`.
    pub fn fingerprint(&self, fid: u32) -> Option<&Template> {
        self.templates.get(&TemplateKey { kind: BioKind::Fingerprint, no: fid, index: 0 })
    }

    /// The templates of one kind.
    pub fn templates_of(&self, kind: BioKind) -> Vec<(TemplateKey, &Template)> {
        self.templates.iter().filter(|(key, _)| key.kind == kind).map(|(key, t)| (*key, t)).collect()
    }
}

/// An attendance record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Punch {
    /// The user's PIN.
    pub pin: String,
    /// Device-local wall time, `YYYY-MM-DD HH:MM:SS`.
    pub time: String,
    /// 0 check-in, 1 check-out, 2 break-out, 3 break-in, 4 overtime-in, 5 overtime-out, 255
    /// undefined.
    pub status: u16,
    /// 0 any, 1 fingerprint, 3 password, 4 card, 15 face, ...
    pub verify: u16,
    /// The work code (`0` when none).
    pub workcode: String,
    /// Mask worn (MaskFlag 1).
    pub mask: bool,
    /// Temperature as the terminal prints it (`36.6`); sent as `0` when `None`.
    pub temperature: Option<String>,
}

impl Punch {
    /// A punch without work code, mask or temperature.
    pub fn new(pin: &str, time: &str, status: u16, verify: u16) -> Punch {
        Punch {
            pin: pin.to_string(),
            time: time.to_string(),
            status,
            verify,
            workcode: "0".into(),
            mask: false,
            temperature: None,
        }
    }
}

/// A door opening ordered by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unlock {
    /// The command that ordered it (`AC_UNLOCK` or `CONTROL DEVICE ..`).
    pub command: String,
    /// The door (1 for `AC_UNLOCK`).
    pub door: u32,
    /// How long, in seconds, when the command says it.
    pub seconds: Option<u32>,
}

/// An upload table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    /// `table=ATTLOG`.
    Attlog,
    /// `table=OPERLOG`.
    Operlog,
    /// `table=BIODATA`.
    Biodata,
}

impl Table {
    /// The name in `table=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Table::Attlog => "ATTLOG",
            Table::Operlog => "OPERLOG",
            Table::Biodata => "BIODATA",
        }
    }
}

/// A record to upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its table.
    pub table: Table,
    /// The line, without the final LF.
    pub line: String,
    /// For an attendance record, its sequence number in the log (the device's stamp).
    pub log_seq: Option<u64>,
    /// Whether it is a re-upload asked by `DATA QUERY ATTLOG` (a copy of an uploaded record).
    pub requested: bool,
    /// The `TransFlag` name that allows it to go up on its own (`AttLog`, `EnrollUser`, ...);
    /// `None` for uploads a command asked for, which always go.
    pub trans_flag: Option<&'static str>,
}

/// A stored attendance record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Its sequence number (1, 2, ...), the device's stamp for it.
    pub seq: u64,
    /// The record.
    pub punch: Punch,
}

/// What the device does besides answering, after a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Upload these records (before confirming).
    Upload(Vec<Record>),
    /// Upload what is queued now (`LOG`).
    Flush,
    /// Read the options again (`CHECK`, `RELOAD OPTIONS`).
    Rehandshake,
    /// Restart: confirm, drop the rest of the batch, handshake again.
    Reboot,
}

/// The outcome of one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    /// The `CMD=` of the result line.
    pub cmd: String,
    /// The `Return=` code.
    pub code: i32,
    /// Extra `Key=Value` lines after the result line (`INFO`).
    pub details: Vec<String>,
    /// What else to do.
    pub effects: Vec<Effect>,
}

/// The terminal's memory.
#[derive(Debug, Clone)]
pub struct Terminal {
    /// Serial number (for `INFO`).
    pub serial: String,
    /// Firmware version (for `INFO`).
    pub firmware: String,
    /// Push protocol version (for `INFO`).
    pub push_version: String,
    /// Users by PIN.
    pub users: BTreeMap<String, User>,
    /// The attendance log, oldest first.
    pub log: Vec<LogEntry>,
    /// The next log sequence number.
    pub next_seq: u64,
    /// Options set by `SET OPTION`.
    pub options: BTreeMap<String, String>,
    /// Door openings, in order.
    pub unlocks: Vec<Unlock>,
    /// The code the next `ENROLL_FP`s answer instead of enrolling (`Some(6)`: the person
    /// cancels); `None` to enroll.
    pub enroll_result: Option<i32>,
    /// How many users fit (beyond: -1001).
    pub max_users: usize,
    /// The 8-field ATTLOG quirk: records get Status 255.
    pub eight_field_attlog: bool,
}

impl Terminal {
    /// An empty terminal.
    pub fn new(serial: &str, firmware: &str, push_version: &str) -> Terminal {
        Terminal {
            serial: serial.to_string(),
            firmware: firmware.to_string(),
            push_version: push_version.to_string(),
            users: BTreeMap::new(),
            log: Vec::new(),
            next_seq: 1,
            options: BTreeMap::new(),
            unlocks: Vec::new(),
            enroll_result: None,
            max_users: 3000,
            eight_field_attlog: false,
        }
    }

    /// Records a punch in the log (Status 255 under the 8-field quirk) and returns its upload.
    pub fn record_punch(&mut self, mut punch: Punch) -> Record {
        if self.eight_field_attlog {
            punch.status = 255;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let line = protocol::attlog_line(&punch, self.eight_field_attlog);
        self.log.push(LogEntry { seq, punch });
        Record { table: Table::Attlog, line, log_seq: Some(seq), requested: false, trans_flag: Some("AttLog") }
    }

    /// Enrolls (or replaces) a user at the terminal and returns the uploads: USER, then FP,
    /// FACE, USERPIC on OPERLOG, and BIODATA for other kinds.
    pub fn enroll_user(&mut self, user: User) -> Vec<Record> {
        let records = user_records(&user, !self.users.contains_key(&user.pin));
        self.users.insert(user.pin.clone(), user);
        records
    }

    /// Executes the text of one `C:<id>:<text>` command.
    pub fn execute(&mut self, text: &str) -> Execution {
        let command = Command::parse(text);
        let cmd = command.result_name();
        let (code, details, effects) = match &command {
            Command::Data { action, table, fields } => match action.as_str() {
                "UPDATE" => (self.update(table, fields), vec![], vec![]),
                "DELETE" => (self.delete(table, fields), vec![], vec![]),
                "QUERY" => {
                    let (code, records) = self.query(table, fields);
                    (code, vec![], if records.is_empty() { vec![] } else { vec![Effect::Upload(records)] })
                }
                _ => (code::NOT_SUPPORTED, vec![], vec![]),
            },
            Command::Clear(what) => (self.clear(what), vec![], vec![]),
            Command::Check | Command::ReloadOptions => (code::OK, vec![], vec![Effect::Rehandshake]),
            Command::Log => (code::OK, vec![], vec![Effect::Flush]),
            Command::Info => (code::OK, self.info(), vec![]),
            Command::Reboot => (code::OK, vec![], vec![Effect::Reboot]),
            Command::SetOption(Some((key, value))) => {
                self.options.insert(key.clone(), value.clone());
                (code::OK, vec![], vec![])
            }
            Command::SetOption(None) => (code::BAD_PARAMETER, vec![], vec![]),
            Command::AcUnlock => {
                self.unlocks.push(Unlock { command: text.to_string(), door: 1, seconds: None });
                (code::OK, vec![], vec![])
            }
            Command::ControlDevice(parameter) => (self.control_device(text, parameter), vec![], vec![]),
            Command::EnrollFp(fields) => {
                let (code, records) = self.enroll_fp(fields);
                (code, vec![], if records.is_empty() { vec![] } else { vec![Effect::Upload(records)] })
            }
            Command::Unsupported(_) => (code::NOT_SUPPORTED, vec![], vec![]),
        };
        Execution { cmd, code, details, effects }
    }

    fn update(&mut self, table: &str, fields: &Fields) -> i32 {
        match table {
            "USERINFO" => self.update_user(fields),
            "FINGERTMP" => self.update_template(fields, BioKind::Fingerprint),
            "FACE" => self.update_template(fields, BioKind::Face),
            "BIODATA" => self.update_biodata(fields),
            "USERPIC" => self.update_photo(fields),
            _ => code::NOT_SUPPORTED,
        }
    }

    fn update_user(&mut self, fields: &Fields) -> i32 {
        let Some(pin) = fields.get("PIN").filter(|pin| !pin.trim().is_empty()) else {
            return code::BAD_PARAMETER;
        };
        let privilege = match fields.get("Pri").map(|p| p.trim()).filter(|p| !p.is_empty()) {
            None => None,
            Some(p) => match p.parse::<u32>() {
                Ok(p) => Some(p),
                Err(_) => return code::BAD_PARAMETER,
            },
        };
        if !self.users.contains_key(pin) && self.users.len() >= self.max_users {
            return code::CAPACITY;
        }
        let user = self.users.entry(pin.to_string()).or_insert_with(|| User::new(pin, ""));
        for (key, value) in &fields.0 {
            let value = value.clone();
            match key.to_ascii_lowercase().as_str() {
                "pin" | "pri" => {}
                "name" => user.name = value,
                "passwd" | "password" => user.password = value,
                "card" => user.card = value,
                "grp" => user.group = value,
                "tz" => user.time_zones = value,
                "verify" => user.verify = value,
                "vicecard" => user.vice_card = value,
                "startdatetime" => user.start_datetime = Some(value),
                "enddatetime" => user.end_datetime = Some(value),
                _ => match user.other_fields.iter_mut().find(|(k, _)| k == key) {
                    Some(slot) => slot.1 = value,
                    None => user.other_fields.push((key.clone(), value)),
                },
            }
        }
        if let Some(privilege) = privilege {
            user.privilege = privilege;
        }
        code::OK
    }

    /// FINGERTMP (`FID` 0-9 is the finger) and FACE (`FID` is the template index).
    fn update_template(&mut self, fields: &Fields, kind: BioKind) -> i32 {
        let Some(pin) = fields.get("PIN").filter(|p| !p.is_empty()) else {
            return code::BAD_PARAMETER;
        };
        let Some(fid) = fields.get("FID").and_then(|f| f.trim().parse::<u32>().ok()) else {
            return code::BAD_PARAMETER;
        };
        if kind == BioKind::Fingerprint && fid > 9 {
            return code::BAD_PARAMETER;
        }
        let tmp = fields.get("TMP").unwrap_or("");
        if tmp.is_empty() {
            return code::BAD_PARAMETER;
        }
        let valid = match fields.get("Valid").map(str::trim) {
            None | Some("") => 1,
            Some(v) => match v.parse() {
                Ok(v) => v,
                Err(_) => return code::BAD_PARAMETER,
            },
        };
        let Some(user) = self.users.get_mut(pin) else {
            return code::NO_SUCH_USER;
        };
        if let Some(size) = fields.get("Size")
            && size.trim().parse::<usize>().ok() != Some(tmp.len())
        {
            return code::TEMPLATE_SIZE_MISMATCH;
        }
        if !protocol::is_base64(tmp) {
            return code::ILLEGAL_TEMPLATE;
        }
        let key = match kind {
            BioKind::Fingerprint => TemplateKey { kind, no: fid, index: 0 },
            _ => TemplateKey { kind, no: 0, index: fid },
        };
        user.templates.insert(key, Template { valid, ..Template::new(tmp) });
        code::OK
    }

    fn update_biodata(&mut self, fields: &Fields) -> i32 {
        let Some(pin) = fields.get("Pin").filter(|p| !p.is_empty()) else {
            return code::BAD_PARAMETER;
        };
        let number = |key: &str| -> Result<u32, ()> {
            match fields.get(key).map(str::trim) {
                None | Some("") => Ok(0),
                Some(v) => v.parse().map_err(|_| ()),
            }
        };
        let (Ok(no), Ok(index), Ok(valid), Ok(duress)) =
            (number("No"), number("Index"), number("Valid"), number("Duress"))
        else {
            return code::BAD_PARAMETER;
        };
        let Some(kind) = fields.get("Type").and_then(|t| t.trim().parse::<u8>().ok()).map(BioKind::from_code) else {
            return code::BAD_PARAMETER;
        };
        let tmp = fields.get("Tmp").unwrap_or("");
        if tmp.is_empty() {
            return code::BAD_PARAMETER;
        }
        let Some(user) = self.users.get_mut(pin) else {
            return code::NO_SUCH_USER;
        };
        if !protocol::is_base64(tmp) {
            return code::ILLEGAL_TEMPLATE;
        }
        let text = |key: &str| fields.get(key).unwrap_or("0").to_string();
        let template = Template {
            tmp: tmp.to_string(),
            valid: if fields.get("Valid").is_some() { valid.min(255) as u8 } else { 1 },
            duress: duress.min(255) as u8,
            major_ver: text("MajorVer"),
            minor_ver: text("MinorVer"),
            format: text("Format"),
        };
        user.templates.insert(TemplateKey { kind, no, index }, template);
        code::OK
    }

    fn update_photo(&mut self, fields: &Fields) -> i32 {
        let Some(pin) = fields.get("PIN").filter(|p| !p.is_empty()) else {
            return code::BAD_PARAMETER;
        };
        if fields.get("Format").map(str::trim).is_some_and(|f| f != "0") {
            // URL mode: this terminal only takes the photo inline.
            return code::NOT_SUPPORTED;
        }
        let content = fields.get("Content").unwrap_or("");
        if content.is_empty() {
            return code::BAD_PARAMETER;
        }
        let Some(user) = self.users.get_mut(pin) else {
            return code::NO_SUCH_USER;
        };
        if let Some(size) = fields.get("Size")
            && size.trim().parse::<usize>().ok() != Some(content.len())
        {
            return code::PHOTO_SIZE_MISMATCH;
        }
        if !protocol::is_base64(content) {
            return code::BAD_PARAMETER;
        }
        user.photo = Some(content.to_string());
        code::OK
    }

    fn delete(&mut self, table: &str, fields: &Fields) -> i32 {
        if !matches!(table, "USERINFO" | "FINGERTMP" | "FACE" | "BIODATA" | "USERPIC") {
            return code::NOT_SUPPORTED;
        }
        let Some(pin) = fields.get("PIN").filter(|p| !p.is_empty()) else {
            return code::BAD_PARAMETER;
        };
        if table == "USERINFO" {
            return if self.users.remove(pin).is_some() { code::OK } else { code::NO_SUCH_USER };
        }
        let Some(user) = self.users.get_mut(pin) else {
            return code::NO_SUCH_USER;
        };
        match table {
            "FINGERTMP" => {
                let fid = match fields.get("FID").map(str::trim) {
                    None | Some("") => None,
                    Some(f) => match f.parse::<u32>() {
                        Ok(f) => Some(f),
                        Err(_) => return code::BAD_PARAMETER,
                    },
                };
                user.templates
                    .retain(|key, _| !(key.kind == BioKind::Fingerprint && fid.is_none_or(|fid| key.no == fid)));
                code::OK
            }
            "FACE" => {
                user.templates.retain(|key, _| key.kind != BioKind::Face);
                code::OK
            }
            "BIODATA" => {
                let kind = fields.get("Type").map(|t| t.trim().parse::<u8>().map(BioKind::from_code));
                let no = fields.get("No").map(|n| n.trim().parse::<u32>());
                let (kind, no) = match (kind, no) {
                    (Some(Err(_)), _) | (_, Some(Err(_))) => return code::BAD_PARAMETER,
                    (kind, no) => (kind.and_then(Result::ok), no.and_then(Result::ok)),
                };
                user.templates.retain(|key, _| !(kind.is_none_or(|k| key.kind == k) && no.is_none_or(|n| key.no == n)));
                code::OK
            }
            "USERPIC" => {
                user.photo = None;
                code::OK
            }
            _ => code::NOT_SUPPORTED,
        }
    }

    fn query(&mut self, table: &str, fields: &Fields) -> (i32, Vec<Record>) {
        match table {
            "ATTLOG" => {
                let (Some(start), Some(end)) = (fields.get("StartTime"), fields.get("EndTime")) else {
                    return (code::BAD_PARAMETER, vec![]);
                };
                let (start, end) = (start.trim(), end.trim());
                if !is_wall_time(start) || !is_wall_time(end) {
                    return (code::BAD_PARAMETER, vec![]);
                }
                let records = self
                    .log
                    .iter()
                    .filter(|entry| start <= entry.punch.time.as_str() && entry.punch.time.as_str() <= end)
                    .map(|entry| Record {
                        table: Table::Attlog,
                        line: protocol::attlog_line(&entry.punch, self.eight_field_attlog),
                        log_seq: Some(entry.seq),
                        requested: true,
                        trans_flag: None,
                    })
                    .collect();
                (code::OK, records)
            }
            // Without a PIN: every user. Not in the specification, but servers in the field
            // rely on it to learn the names a terminal holds, and terminals answer it.
            "USERINFO" if fields.get("PIN").is_none() => {
                let records = self
                    .users
                    .values()
                    .map(|user| Record {
                        table: Table::Operlog,
                        line: protocol::user_line(user),
                        log_seq: None,
                        requested: true,
                        trans_flag: None,
                    })
                    .collect();
                (code::OK, records)
            }
            "USERINFO" | "FINGERTMP" => {
                let Some(pin) = fields.get("PIN").filter(|p| !p.is_empty()) else {
                    return (code::BAD_PARAMETER, vec![]);
                };
                let Some(user) = self.users.get(pin) else {
                    return (code::NO_SUCH_USER, vec![]);
                };
                if table == "USERINFO" {
                    let line = protocol::user_line(user);
                    return (
                        code::OK,
                        vec![Record { table: Table::Operlog, line, log_seq: None, requested: true, trans_flag: None }],
                    );
                }
                let fid = fields.get("FID").and_then(|f| f.trim().parse::<u32>().ok());
                let records = user
                    .templates_of(BioKind::Fingerprint)
                    .into_iter()
                    .filter(|(key, _)| fid.is_none_or(|fid| key.no == fid))
                    .map(|(key, t)| Record {
                        table: Table::Operlog,
                        line: protocol::fp_line(pin, key.no, t),
                        log_seq: None,
                        requested: true,
                        trans_flag: None,
                    })
                    .collect();
                (code::OK, records)
            }
            _ => (code::NOT_SUPPORTED, vec![]),
        }
    }

    fn clear(&mut self, what: &str) -> i32 {
        match what {
            "LOG" => {
                self.log.clear();
                code::OK
            }
            // This terminal takes no attendance photos: nothing to clear.
            "PHOTO" => code::OK,
            "DATA" => {
                self.users.clear();
                self.log.clear();
                code::OK
            }
            "BIODATA" => {
                for user in self.users.values_mut() {
                    user.templates.clear();
                }
                code::OK
            }
            _ => code::NOT_SUPPORTED,
        }
    }

    /// `CONTROL DEVICE AABBCCDDEE` (access-control form): AA 01 opens door BB for DD
    /// seconds (CC: 01 the door's lock). Other operations are not supported here.
    fn control_device(&mut self, text: &str, parameter: &str) -> i32 {
        let digits = parameter.trim();
        if digits.len() < 8 || !digits.chars().all(|c| c.is_ascii_digit()) {
            return code::BAD_PARAMETER;
        }
        if &digits[0..2] != "01" {
            return code::NOT_SUPPORTED;
        }
        let door = digits[2..4].parse().unwrap_or(1);
        let seconds = digits[6..8].parse().ok();
        self.unlocks.push(Unlock { command: text.to_string(), door, seconds });
        code::OK
    }

    fn enroll_fp(&mut self, fields: &Fields) -> (i32, Vec<Record>) {
        let Some(pin) = fields.get("PIN").filter(|p| !p.is_empty()) else {
            return (code::BAD_PARAMETER, vec![]);
        };
        let Some(fid) = fields.get("FID").and_then(|f| f.trim().parse::<u32>().ok()).filter(|fid| *fid <= 9) else {
            return (code::BAD_PARAMETER, vec![]);
        };
        let overwrite = fields.get("OVERWRITE").map(str::trim) == Some("1");
        let forced = self.enroll_result;
        let Some(user) = self.users.get_mut(pin) else {
            return (code::NO_SUCH_USER, vec![]);
        };
        if user.fingerprint(fid).is_some() && !overwrite {
            return (code::ENROLL_EXISTS, vec![]);
        }
        if let Some(code) = forced {
            return (code, vec![]);
        }
        let template = Template::fake(pin, fid);
        let line = protocol::fp_line(pin, fid, &template);
        user.templates.insert(TemplateKey { kind: BioKind::Fingerprint, no: fid, index: 0 }, template);
        (code::OK, vec![Record { table: Table::Operlog, line, log_seq: None, requested: true, trans_flag: None }])
    }

    /// The `Key=Value` lines of the `INFO` result.
    pub fn info(&self) -> Vec<String> {
        let count = |kind| self.users.values().map(|u| u.templates_of(kind).len()).sum::<usize>();
        vec![
            "~DeviceName=biogate ADMS simulator".into(),
            format!("~SerialNumber={}", self.serial),
            format!("FWVersion={}", self.firmware),
            format!("PushVersion={}", self.push_version),
            "IPAddress=127.0.0.1".into(),
            "MAC=00:17:61:00:00:01".into(),
            format!("UserCount={}", self.users.len()),
            format!("~MaxUserCount={}", self.max_users / 100),
            format!("FPCount={}", count(BioKind::Fingerprint)),
            "FPVersion=10".into(),
            format!("FaceCount={}", count(BioKind::Face)),
            "FaceVersion=7".into(),
            format!("TransactionCount={}", self.log.len()),
            format!("PhotoCount={}", self.users.values().filter(|u| u.photo.is_some()).count()),
        ]
    }
}

/// The upload records of a user: USER, then FP/FACE/USERPIC on OPERLOG, other kinds on
/// BIODATA, each with the `TransFlag` name that lets it go up (`EnrollUser`/`ChgUser`, ...).
fn user_records(user: &User, new: bool) -> Vec<Record> {
    let record = |table, line, trans_flag| Record { table, line, log_seq: None, requested: false, trans_flag };
    let (user_flag, fp_flag) = if new { ("EnrollUser", "EnrollFP") } else { ("ChgUser", "ChgFP") };
    let mut records = vec![record(Table::Operlog, protocol::user_line(user), Some(user_flag))];
    for (key, template) in &user.templates {
        records.push(match key.kind {
            BioKind::Fingerprint => {
                record(Table::Operlog, protocol::fp_line(&user.pin, key.no, template), Some(fp_flag))
            }
            BioKind::Face => record(Table::Operlog, protocol::face_line(&user.pin, key.index, template), Some("FACE")),
            kind => record(Table::Biodata, protocol::biodata_line(&user.pin, kind, key.no, key.index, template), None),
        });
    }
    if let Some(photo) = &user.photo {
        records.push(record(Table::Operlog, protocol::userpic_line(&user.pin, photo), Some("UserPic")));
    }
    records
}

/// `YYYY-MM-DD HH:MM:SS`.
fn is_wall_time(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 19
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            10 => *b == b' ',
            13 | 16 => *b == b':',
            _ => b.is_ascii_digit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terminal() -> Terminal {
        Terminal::new("SN1", "Ver 8.0.4.7", "2.4.1")
    }

    fn run(terminal: &mut Terminal, text: &str) -> i32 {
        terminal.execute(text).code
    }

    #[test]
    fn update_userinfo_creates_then_changes_only_the_fields_sent() {
        let mut t = terminal();
        let done = t.execute("DATA UPDATE USERINFO PIN=1\tName=Ann Lee\tPri=14\tPasswd=123\tCard=[15CD5B07]\tGrp=2\tTZ=0001000100000000\tVerify=1\tViceCard=9");
        assert_eq!((done.cmd.as_str(), done.code), ("DATA", 0));
        let user = &t.users["1"];
        assert_eq!(
            (user.name.as_str(), user.privilege, user.password.as_str(), user.card.as_str()),
            ("Ann Lee", 14, "123", "[15CD5B07]")
        );
        assert_eq!(
            (user.group.as_str(), user.time_zones.as_str(), user.verify.as_str(), user.vice_card.as_str()),
            ("2", "0001000100000000", "1", "9")
        );
        assert!(user.enabled());
        assert_eq!(
            run(&mut t, "DATA UPDATE USERINFO PIN=1\tName=Ann B\tPri=15\tStartDatetime=2026-01-01 00:00:00\tFoo=bar"),
            0
        );
        let user = &t.users["1"];
        assert_eq!((user.name.as_str(), user.privilege, user.card.as_str()), ("Ann B", 15, "[15CD5B07]"));
        // Bit 0 of Pri: a disabled super admin.
        assert!(!user.enabled());
        assert_eq!(user.start_datetime.as_deref(), Some("2026-01-01 00:00:00"));
        assert_eq!(user.other_fields, vec![("Foo".to_string(), "bar".to_string())]);
        assert_eq!(run(&mut t, "DATA UPDATE USERINFO PIN=1\tPri=14\tPassword=9"), 0);
        assert!(t.users["1"].enabled());
        assert_eq!(t.users["1"].password, "9");
        // `Disable=` is not an attendance-terminal field: kept verbatim, no effect.
        assert_eq!(run(&mut t, "DATA UPDATE USERINFO PIN=1\tDisable=1"), 0);
        assert!(t.users["1"].enabled());
        assert!(t.users["1"].other_fields.contains(&("Disable".to_string(), "1".to_string())));
    }

    #[test]
    fn update_userinfo_refuses_bad_parameters_and_capacity() {
        let mut t = terminal();
        assert_eq!(run(&mut t, "DATA UPDATE USERINFO Name=x"), code::BAD_PARAMETER);
        assert_eq!(run(&mut t, "DATA UPDATE USERINFO PIN=\tName=x"), code::BAD_PARAMETER);
        assert_eq!(run(&mut t, "DATA UPDATE USERINFO PIN=1\tPri=admin"), code::BAD_PARAMETER);
        assert_eq!(run(&mut t, "DATA UPDATE USERINFO PIN=1\tPri=-1"), code::BAD_PARAMETER);
        assert!(t.users.is_empty());
        t.max_users = 1;
        assert_eq!(run(&mut t, "DATA UPDATE USERINFO PIN=1"), 0);
        assert_eq!(run(&mut t, "DATA UPDATE USERINFO PIN=2"), code::CAPACITY);
        assert_eq!(run(&mut t, "DATA UPDATE USERINFO PIN=1\tName=still fits"), 0);
    }

    #[test]
    fn fingerprint_templates_need_the_user_a_matching_size_and_base64() {
        let mut t = terminal();
        assert_eq!(
            run(&mut t, "DATA UPDATE FINGERTMP PIN=1\tFID=0\tSize=8\tValid=1\tTMP=QUJDRA=="),
            code::NO_SUCH_USER
        );
        run(&mut t, "DATA UPDATE USERINFO PIN=1");
        assert_eq!(
            run(&mut t, "DATA UPDATE FINGERTMP PIN=1\tFID=0\tSize=9\tValid=1\tTMP=QUJDRA=="),
            code::TEMPLATE_SIZE_MISMATCH
        );
        assert_eq!(
            run(&mut t, "DATA UPDATE FINGERTMP PIN=1\tFID=0\tSize=8\tValid=1\tTMP=QUJD!A=="),
            code::ILLEGAL_TEMPLATE
        );
        assert_eq!(
            run(&mut t, "DATA UPDATE FINGERTMP PIN=1\tFID=10\tSize=8\tValid=1\tTMP=QUJDRA=="),
            code::BAD_PARAMETER
        );
        assert_eq!(run(&mut t, "DATA UPDATE FINGERTMP PIN=1\tSize=8\tTMP=QUJDRA=="), code::BAD_PARAMETER);
        assert_eq!(run(&mut t, "DATA UPDATE FINGERTMP PIN=1\tFID=0\tSize=0\tTMP="), code::BAD_PARAMETER);
        assert!(t.users["1"].templates.is_empty());
        assert_eq!(run(&mut t, "DATA UPDATE FINGERTMP PIN=1\tFID=6\tSize=8\tValid=3\tTMP=QUJDRA=="), 0);
        assert_eq!(run(&mut t, "DATA UPDATE FINGERTMP PIN=1\tFID=7\tTMP=RUZHSA=="), 0);
        let user = &t.users["1"];
        assert_eq!(user.fingerprint(6).map(|t| (t.tmp.as_str(), t.valid)), Some(("QUJDRA==", 3)));
        assert_eq!(user.fingerprint(7).map(|t| t.valid), Some(1));
        assert_eq!(user.templates_of(BioKind::Fingerprint).len(), 2);
    }

    #[test]
    fn face_and_biodata_templates_are_stored_by_kind_and_index() {
        let mut t = terminal();
        run(&mut t, "DATA UPDATE USERINFO PIN=1");
        assert_eq!(run(&mut t, "DATA UPDATE FACE PIN=1\tFID=2\tSize=4\tValid=1\tTMP=QUJD"), 0);
        assert_eq!(
            run(
                &mut t,
                "DATA UPDATE BIODATA Pin=1\tNo=1\tIndex=0\tValid=1\tDuress=1\tType=8\tMajorVer=5\tMinorVer=8\tFormat=0\tTmp=QUJD"
            ),
            0
        );
        assert_eq!(run(&mut t, "DATA UPDATE BIODATA Pin=1\tNo=0\tIndex=0\tTmp=QUJD"), code::BAD_PARAMETER);
        assert_eq!(run(&mut t, "DATA UPDATE BIODATA Pin=2\tType=8\tTmp=QUJD"), code::NO_SUCH_USER);
        let user = &t.users["1"];
        assert!(user.templates.contains_key(&TemplateKey { kind: BioKind::Face, no: 0, index: 2 }));
        let palm = &user.templates[&TemplateKey { kind: BioKind::Palm, no: 1, index: 0 }];
        assert_eq!((palm.duress, palm.major_ver.as_str(), palm.minor_ver.as_str()), (1, "5", "8"));
        assert_eq!(run(&mut t, "DATA DELETE BIODATA Pin=1\tType=8"), 0);
        assert_eq!(t.users["1"].templates.len(), 1);
        assert_eq!(run(&mut t, "DATA DELETE FACE PIN=1"), 0);
        assert!(t.users["1"].templates.is_empty());
    }

    #[test]
    fn user_photos_check_their_size() {
        let mut t = terminal();
        assert_eq!(run(&mut t, "DATA UPDATE USERPIC PIN=1\tSize=4\tContent=/9j/"), code::NO_SUCH_USER);
        run(&mut t, "DATA UPDATE USERINFO PIN=1");
        assert_eq!(run(&mut t, "DATA UPDATE USERPIC PIN=1\tSize=5\tContent=/9j/"), code::PHOTO_SIZE_MISMATCH);
        assert_eq!(run(&mut t, "DATA UPDATE USERPIC PIN=1\tFormat=1\tUrl=/p.jpg"), code::NOT_SUPPORTED);
        assert_eq!(run(&mut t, "DATA UPDATE USERPIC PIN=1\tSize=4\tContent=/9j/"), 0);
        assert_eq!(t.users["1"].photo.as_deref(), Some("/9j/"));
        assert_eq!(run(&mut t, "DATA DELETE USERPIC PIN=1"), 0);
        assert_eq!(t.users["1"].photo, None);
    }

    #[test]
    fn deletes_answer_minus_10_for_an_unknown_pin() {
        let mut t = terminal();
        assert_eq!(run(&mut t, "DATA DELETE USERINFO PIN=9"), code::NO_SUCH_USER);
        assert_eq!(run(&mut t, "DATA DELETE FINGERTMP PIN=9"), code::NO_SUCH_USER);
        assert_eq!(run(&mut t, "DATA DELETE USERINFO"), code::BAD_PARAMETER);
        run(&mut t, "DATA UPDATE USERINFO PIN=1");
        run(&mut t, "DATA UPDATE FINGERTMP PIN=1\tFID=1\tSize=4\tTMP=QUJD");
        run(&mut t, "DATA UPDATE FINGERTMP PIN=1\tFID=2\tSize=4\tTMP=QUJD");
        run(&mut t, "DATA UPDATE FINGERTMP PIN=1\tFID=3\tSize=4\tTMP=QUJD");
        assert_eq!(run(&mut t, "DATA DELETE FINGERTMP PIN=1\tFID=2"), 0);
        assert_eq!(t.users["1"].templates.len(), 2);
        assert_eq!(run(&mut t, "DATA DELETE FINGERTMP PIN=1"), 0);
        assert!(t.users["1"].templates.is_empty());
        run(&mut t, "DATA UPDATE FINGERTMP PIN=1\tFID=3\tSize=4\tTMP=QUJD");
        assert_eq!(run(&mut t, "DATA DELETE USERINFO PIN=1"), 0);
        assert!(t.users.is_empty());
        // The templates went with the user.
        run(&mut t, "DATA UPDATE USERINFO PIN=1");
        assert!(t.users["1"].templates.is_empty());
    }

    #[test]
    fn queries_upload_the_user_or_the_log_range() {
        let mut t = terminal();
        assert_eq!(t.execute("DATA QUERY USERINFO PIN=1").code, code::NO_SUCH_USER);
        assert!(t.execute("DATA QUERY USERINFO PIN=1").effects.is_empty());
        assert_eq!(t.execute("DATA QUERY USERINFO PIN=").code, code::BAD_PARAMETER);
        let nobody = t.execute("DATA QUERY USERINFO");
        assert_eq!((nobody.code, nobody.effects.len()), (0, 0));
        run(&mut t, "DATA UPDATE USERINFO PIN=1\tName=Ann");
        run(&mut t, "DATA UPDATE USERINFO PIN=2\tName=Bo");
        let everyone = t.execute("DATA QUERY USERINFO");
        let Effect::Upload(all) = &everyone.effects[0] else { panic!("{:?}", everyone.effects) };
        let pins: Vec<_> = all.iter().map(|r| r.line.split('\t').next().unwrap()).collect();
        assert_eq!(pins, ["USER PIN=1", "USER PIN=2"]);
        let done = t.execute("DATA QUERY USERINFO PIN=1");
        assert_eq!(done.code, 0);
        let Effect::Upload(records) = &done.effects[0] else { panic!("{:?}", done.effects) };
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].table, Table::Operlog);
        assert!(records[0].line.starts_with("USER PIN=1\tName=Ann\tPri=0"));

        for (i, time) in ["2026-06-20 18:00:00", "2026-06-21 09:02:14", "2026-06-21 17:30:00", "2026-06-22 08:00:00"]
            .iter()
            .enumerate()
        {
            t.record_punch(Punch::new(&i.to_string(), time, 0, 1));
        }
        let done = t.execute("DATA QUERY ATTLOG StartTime=2026-06-21 00:00:00\tEndTime=2026-06-21 23:59:59");
        assert_eq!(done.code, 0);
        let Effect::Upload(records) = &done.effects[0] else { panic!("{:?}", done.effects) };
        let seqs: Vec<_> = records.iter().map(|r| r.log_seq).collect();
        assert_eq!(seqs, [Some(2), Some(3)]);
        assert!(records.iter().all(|r| r.requested && r.table == Table::Attlog));
        assert_eq!(records[0].line, "1\t2026-06-21 09:02:14\t0\t1\t0\t0\t0\t0\t0");
        assert_eq!(t.execute("DATA QUERY ATTLOG StartTime=2026-06-21").code, code::BAD_PARAMETER);
        assert_eq!(t.execute("DATA QUERY ATTLOG StartTime=yesterday\tEndTime=today").code, code::BAD_PARAMETER);
        let none = t.execute("DATA QUERY ATTLOG StartTime=2030-01-01 00:00:00\tEndTime=2030-01-02 00:00:00");
        assert_eq!((none.code, none.effects.len()), (0, 0));
    }

    #[test]
    fn clears_empty_what_they_name() {
        let mut t = terminal();
        run(&mut t, "DATA UPDATE USERINFO PIN=1");
        run(&mut t, "DATA UPDATE FINGERTMP PIN=1\tFID=1\tSize=4\tTMP=QUJD");
        t.record_punch(Punch::new("1", "2026-06-21 09:02:14", 0, 1));
        let done = t.execute("CLEAR LOG");
        assert_eq!((done.cmd.as_str(), done.code), ("CLEAR_LOG", 0));
        assert!(t.log.is_empty());
        assert_eq!(t.users.len(), 1);
        assert_eq!(t.execute("CLEAR PHOTO").cmd, "CLEAR PHOTO");
        assert_eq!(run(&mut t, "CLEAR BIODATA"), 0);
        assert!(t.users["1"].templates.is_empty());
        t.record_punch(Punch::new("1", "2026-06-21 09:02:15", 0, 1));
        let done = t.execute("CLEAR DATA");
        assert_eq!((done.cmd.as_str(), done.code), ("CLEAR_DATA", 0));
        assert!(t.users.is_empty() && t.log.is_empty());
        assert_eq!(run(&mut t, "CLEAR EVERYTHING"), code::NOT_SUPPORTED);
        // Sequence numbers never restart: the server's stamps stay meaningful.
        assert_eq!(t.record_punch(Punch::new("1", "2026-06-21 09:03:00", 0, 1)).log_seq, Some(3));
    }

    #[test]
    fn control_commands_answer_and_ask_for_their_effects() {
        let mut t = terminal();
        run(&mut t, "DATA UPDATE USERINFO PIN=1");
        let info = t.execute("INFO");
        assert_eq!((info.cmd.as_str(), info.code), ("INFO", 0));
        assert!(info.details.contains(&"UserCount=1".to_string()), "{:?}", info.details);
        assert!(info.details.contains(&"~SerialNumber=SN1".to_string()));
        assert_eq!(t.execute("REBOOT").effects, vec![Effect::Reboot]);
        assert_eq!(t.execute("CHECK").effects, vec![Effect::Rehandshake]);
        assert_eq!(t.execute("RELOAD OPTIONS").effects, vec![Effect::Rehandshake]);
        assert_eq!(t.execute("LOG").effects, vec![Effect::Flush]);
        let set = t.execute("SET OPTION Delay=5");
        assert_eq!((set.cmd.as_str(), set.code), ("SET OPTION", 0));
        assert_eq!(t.options.get("Delay").map(String::as_str), Some("5"));
        assert_eq!(run(&mut t, "SET OPTION Delay"), code::BAD_PARAMETER);
        assert_eq!(run(&mut t, "AC_UNLOCK"), 0);
        assert_eq!(run(&mut t, "CONTROL DEVICE 0102010500"), 0);
        assert_eq!(run(&mut t, "CONTROL DEVICE"), code::BAD_PARAMETER);
        assert_eq!(run(&mut t, "CONTROL DEVICE 0301000000"), code::NOT_SUPPORTED);
        assert_eq!(t.unlocks.iter().map(|u| (u.door, u.seconds)).collect::<Vec<_>>(), [(1, None), (2, Some(5))]);
    }

    #[test]
    fn unknown_commands_and_forms_answer_minus_1002() {
        let mut t = terminal();
        for text in [
            "USER ADD PIN=1",
            "DATA DEL USERINFO PIN=1",
            "DATA DELETE SMS UID=1",
            "DATA UPDATE SMS MSG=hi",
            "DATA QUERY BIODATA Type=1",
            "VERIFY SUM ATTLOG StartTime=a\tEndTime=b",
            "SHELL ls",
            "ENROLL_BIO TYPE=9\tPIN=1",
            "info",
        ] {
            let done = t.execute(text);
            assert_eq!(done.code, code::NOT_SUPPORTED, "{text}");
            assert!(done.effects.is_empty());
        }
        assert_eq!(t.execute("USER ADD PIN=1").cmd, "USER");
        assert!(t.users.is_empty());
    }

    #[test]
    fn enroll_fp_enrolls_a_fake_template_and_uploads_it() {
        let mut t = terminal();
        assert_eq!(run(&mut t, "ENROLL_FP PIN=1\tFID=1\tRETRY=3\tOVERWRITE=0"), code::NO_SUCH_USER);
        run(&mut t, "DATA UPDATE USERINFO PIN=1");
        assert_eq!(run(&mut t, "ENROLL_FP PIN=1\tFID=12\tRETRY=3\tOVERWRITE=0"), code::BAD_PARAMETER);
        let done = t.execute("ENROLL_FP PIN=1\tFID=1\tRETRY=3\tOVERWRITE=0");
        assert_eq!((done.cmd.as_str(), done.code), ("ENROLL_FP", 0));
        let template = t.users["1"].fingerprint(1).expect("enrolled").clone();
        assert!(protocol::is_base64(&template.tmp));
        assert_eq!(template, Template::fake("1", 1));
        let Effect::Upload(records) = &done.effects[0] else { panic!("{:?}", done.effects) };
        assert_eq!(records[0].line, protocol::fp_line("1", 1, &template));
        assert_eq!(run(&mut t, "ENROLL_FP PIN=1\tFID=1\tRETRY=3\tOVERWRITE=0"), code::ENROLL_EXISTS);
        assert_eq!(run(&mut t, "ENROLL_FP PIN=1\tFID=1\tRETRY=3\tOVERWRITE=1"), 0);
        t.enroll_result = Some(code::ENROLL_CANCELLED);
        let cancelled = t.execute("ENROLL_FP PIN=1\tFID=2\tRETRY=3\tOVERWRITE=0");
        assert_eq!((cancelled.code, cancelled.effects.len()), (code::ENROLL_CANCELLED, 0));
        assert!(t.users["1"].fingerprint(2).is_none());
    }

    #[test]
    fn the_eight_field_quirk_records_status_255() {
        let mut t = terminal();
        t.eight_field_attlog = true;
        let record = t.record_punch(Punch::new("5", "2026-06-21 09:02:14", 1, 4));
        assert_eq!(record.line, "5\t2026-06-21 09:02:14\t255\t4\t0\t0\t0\t0");
        assert_eq!(t.log[0].punch.status, 255);
    }

    #[test]
    fn a_local_enrolment_uploads_user_templates_and_photo() {
        let mut t = terminal();
        let mut user = User::new("3", "Bo").with_fingerprint(0, Template::new("QUJD"));
        user.templates.insert(TemplateKey { kind: BioKind::Face, no: 0, index: 0 }, Template::new("RkFDRQ=="));
        user.templates.insert(TemplateKey { kind: BioKind::Palm, no: 0, index: 0 }, Template::new("UEFMTQ=="));
        user.photo = Some("/9j/".into());
        let records = t.enroll_user(user);
        let heads: Vec<_> =
            records.iter().map(|r| (r.table, r.line.split(' ').next().unwrap().to_string(), r.trans_flag)).collect();
        assert_eq!(
            heads,
            [
                (Table::Operlog, "USER".to_string(), Some("EnrollUser")),
                (Table::Operlog, "FP".to_string(), Some("EnrollFP")),
                (Table::Operlog, "FACE".to_string(), Some("FACE")),
                (Table::Biodata, "BIODATA".to_string(), None),
                (Table::Operlog, "USERPIC".to_string(), Some("UserPic")),
            ]
        );
        let again = t.enroll_user(User::new("3", "Bo B"));
        assert_eq!(again[0].trans_flag, Some("ChgUser"));
        assert_eq!(t.users["3"].name, "Bo B");
    }
}
