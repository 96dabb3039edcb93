//! One record of the event log: its frame, its payload, its checksum and its position.
//!
//! A segment is a sequence of frames, nothing else:
//!
//! ```text
//! [len: u32 LE][crc: u32 LE][payload: len bytes]
//! payload = [1: u8][device id length: u8][device id: UTF-8][sequence: u64 LE][event bytes]
//! ```
//!
//! `crc` is the CRC-32C (Castagnoli) of the payload, seeded with the record's position:
//! `crc32c(position as u64 LE ++ payload)`. The seed costs nothing and makes a record
//! valid only where it was written: bytes that look like a record inside another one's
//! payload (a photo is device-supplied bytes) do not pass as a record when recovery
//! searches past a damaged region for the next intact one, nor does a record read at a
//! stale position (an index pointing into a log that was replaced).
//!
//! A record's [`Position`](super::position::Position) is where its frame starts in the
//! whole log.
use std::fmt;

use super::damage::CorruptReason;
use super::error::LogError;

/// Bytes of a frame before its payload.
pub const HEADER_BYTES: u64 = 8;
/// The largest payload the log writes (a record with a photo is far below).
pub const MAX_PAYLOAD: u32 = 16 * 1024 * 1024;
/// The first byte of a payload: its format.
const PAYLOAD_V1: u8 = 1;
/// Version, device id length, a one-byte device id, sequence.
pub(super) const MIN_PAYLOAD: u32 = 1 + 1 + 1 + 8;
/// The longest device id a record can carry.
pub const MAX_DEVICE_BYTES: usize = u8::MAX as usize;

/// The checksum stored in the frame of the record at `position`.
pub(super) fn checksum(position: u64, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&position.to_le_bytes()), payload)
}

/// A frame header: (payload length, stored checksum).
pub(super) fn parse_header(header: &[u8]) -> Option<(u32, u32)> {
    let len = u32::from_le_bytes(header.get(0..4)?.try_into().ok()?);
    let crc = u32::from_le_bytes(header.get(4..8)?.try_into().ok()?);
    Some((len, crc))
}

/// Whether a header's length can be a record's.
pub(super) fn check_len(len: u32) -> Result<(), CorruptReason> {
    if (MIN_PAYLOAD..=MAX_PAYLOAD).contains(&len) { Ok(()) } else { Err(CorruptReason::LengthOutOfRange { len }) }
}

/// The device id's length, if `payload` has the shape of a record this version writes.
/// Cheap: recovery runs it before the checksum on every candidate position.
pub(super) fn check_payload(payload: &[u8]) -> Result<usize, CorruptReason> {
    let bad = |detail| Err(CorruptReason::BadPayload { detail });
    match payload.first() {
        Some(&PAYLOAD_V1) => {}
        Some(_) => return bad("unknown payload format"),
        None => return bad("empty payload"),
    }
    let Some(&device_len) = payload.get(1) else { return bad("no device id length") };
    let device_len = usize::from(device_len);
    if device_len == 0 {
        return bad("empty device id");
    }
    let Some(device) = payload.get(2..2 + device_len) else { return bad("device id runs past the payload") };
    if payload.len() < 2 + device_len + 8 {
        return bad("no sequence");
    }
    if device.iter().any(|b| b.is_ascii_control()) || std::str::from_utf8(device).is_err() {
        return bad("device id is not text");
    }
    Ok(device_len)
}

/// Records to append together: framed here, on the appender's thread, so the writer
/// only stamps checksums and writes.
#[derive(Debug, Default, Clone)]
pub struct LogBatch {
    /// The frames, checksums still zero.
    frames: Vec<u8>,
    /// Where each frame starts in `frames`.
    starts: Vec<usize>,
}

impl LogBatch {
    pub fn new() -> Self {
        LogBatch::default()
    }

    /// Room for `records` records of about `body_bytes` bytes of events in all.
    pub fn with_capacity(records: usize, body_bytes: usize) -> Self {
        LogBatch { frames: Vec::with_capacity(body_bytes + records * 48), starts: Vec::with_capacity(records) }
    }

    /// Adds the event `body` of `device`'s event `seq`.
    pub fn push(&mut self, device: &str, seq: u64, body: &[u8]) -> Result<(), LogError> {
        if device.is_empty() || device.len() > MAX_DEVICE_BYTES || device.bytes().any(|b| b.is_ascii_control()) {
            return Err(LogError::Invalid(format!("device id {device:?} cannot be stored (1 to 255 bytes of text)")));
        }
        let len = 2 + device.len() + 8 + body.len();
        let Some(len) = u32::try_from(len).ok().filter(|l| *l <= MAX_PAYLOAD) else {
            return Err(LogError::Invalid(format!("a record of {len} bytes is above the limit of {MAX_PAYLOAD}")));
        };
        self.starts.push(self.frames.len());
        self.frames.reserve(HEADER_BYTES as usize + len as usize);
        self.frames.extend_from_slice(&len.to_le_bytes());
        self.frames.extend_from_slice(&[0; 4]);
        self.frames.push(PAYLOAD_V1);
        self.frames.push(device.len() as u8);
        self.frames.extend_from_slice(device.as_bytes());
        self.frames.extend_from_slice(&seq.to_le_bytes());
        self.frames.extend_from_slice(body);
        Ok(())
    }

    /// How many records.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Bytes the records take in the log.
    pub fn bytes(&self) -> usize {
        self.frames.len()
    }

    pub(super) fn into_parts(self) -> (Vec<u8>, Vec<usize>) {
        (self.frames, self.starts)
    }
}

/// Writes the checksum of each frame of `frames` (starting at `starts`) as if `frames`
/// were written at log position `at`.
pub(super) fn stamp(frames: &mut [u8], starts: &[usize], at: u64) {
    for &start in starts {
        let Some((len, _)) = frames.get(start..).and_then(parse_header) else { continue };
        let payload_at = start + HEADER_BYTES as usize;
        let Some(payload) = frames.get(payload_at..payload_at + len as usize) else { continue };
        let crc = checksum(at + start as u64, payload);
        if let Some(slot) = frames.get_mut(start + 4..start + 8) {
            slot.copy_from_slice(&crc.to_le_bytes());
        }
    }
}

/// A record read back: its device, sequence and event bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    /// The payload, from `at`.
    buf: Vec<u8>,
    at: usize,
    device_len: usize,
}

impl Record {
    /// The record whose payload is `buf[at..]`, checksum already verified.
    pub(super) fn from_payload(buf: Vec<u8>, at: usize) -> Result<Record, CorruptReason> {
        let device_len = check_payload(buf.get(at..).unwrap_or_default())?;
        Ok(Record { buf, at, device_len })
    }

    fn payload(&self) -> &[u8] {
        self.buf.get(self.at..).unwrap_or_default()
    }

    /// The device id.
    pub fn device(&self) -> &str {
        // Checked by `from_payload`.
        self.payload().get(2..2 + self.device_len).and_then(|d| std::str::from_utf8(d).ok()).unwrap_or_default()
    }

    /// The device's sequence number of the event.
    pub fn seq(&self) -> u64 {
        let at = 2 + self.device_len;
        self.payload().get(at..at + 8).and_then(|s| s.try_into().ok()).map(u64::from_le_bytes).unwrap_or_default()
    }

    /// The event bytes.
    pub fn body(&self) -> &[u8] {
        self.payload().get(2 + self.device_len + 8..).unwrap_or_default()
    }

    /// Bytes the record takes in the log, frame header included: the position of the
    /// next record of the same append is this much further.
    pub fn frame_bytes(&self) -> u64 {
        HEADER_BYTES + self.payload().len() as u64
    }

    /// The event bytes, owned.
    pub fn into_body(mut self) -> Vec<u8> {
        self.buf.drain(..self.at + 2 + self.device_len + 8);
        self.buf
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("device", &self.device())
            .field("seq", &self.seq())
            .field("body_bytes", &self.body().len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The position seed is a prefix of the checksummed bytes, nothing else.
    #[test]
    fn the_checksum_is_crc32c_of_the_position_then_the_payload() {
        let payload = b"\x01\x02D1\x07\0\0\0\0\0\0\0event";
        let mut seeded = 4096u64.to_le_bytes().to_vec();
        seeded.extend_from_slice(payload);
        assert_eq!(checksum(4096, payload), crc32c::crc32c(&seeded));
        assert_ne!(checksum(4096, payload), checksum(4097, payload));
    }

    #[test]
    fn a_framed_record_reads_back() {
        let mut batch = LogBatch::new();
        batch.push("SN-1", 42, b"hello").expect("push");
        batch.push("SN-2", 43, b"").expect("push");
        let (mut frames, starts) = batch.into_parts();
        stamp(&mut frames, &starts, 1000);
        let (len, crc) = parse_header(&frames).expect("header");
        assert_eq!(len as usize, starts[1] - 8);
        assert_eq!(crc, checksum(1000, &frames[8..starts[1]]));
        let first = Record::from_payload(frames[..starts[1]].to_vec(), 8).expect("record");
        assert_eq!((first.device(), first.seq(), first.body()), ("SN-1", 42, &b"hello"[..]));
        let second = Record::from_payload(frames.clone(), starts[1] + 8).expect("record");
        assert_eq!((second.device(), second.seq(), second.body()), ("SN-2", 43, &b""[..]));
        assert_eq!(first.frame_bytes(), starts[1] as u64);
        assert_eq!(first.into_body(), b"hello");
        let (_, crc2) = parse_header(&frames[starts[1]..]).expect("header");
        assert_eq!(crc2, checksum(1000 + starts[1] as u64, &frames[starts[1] + 8..]));
    }

    #[test]
    fn records_that_cannot_be_stored_are_refused() {
        let mut batch = LogBatch::new();
        assert!(batch.push("", 1, b"x").is_err());
        assert!(batch.push(&"d".repeat(256), 1, b"x").is_err());
        assert!(batch.push("a\nb", 1, b"x").is_err());
        assert!(batch.push("D", 1, &vec![0; MAX_PAYLOAD as usize]).is_err());
        assert!(batch.is_empty());
    }

    #[test]
    fn payloads_of_another_shape_are_refused() {
        assert!(check_payload(b"").is_err());
        assert!(check_payload(b"\x02\x01D\0\0\0\0\0\0\0\0").is_err());
        assert!(check_payload(b"\x01\x00\0\0\0\0\0\0\0\0").is_err());
        assert!(check_payload(b"\x01\x05D\0\0\0\0\0\0\0\0").is_err());
        assert!(check_payload(b"\x01\x01\x07\0\0\0\0\0\0\0\0").is_err());
        assert_eq!(check_payload(b"\x01\x01D\0\0\0\0\0\0\0\0"), Ok(1));
    }
}
