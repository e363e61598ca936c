//! Reply shapes of 0-db commands and the functions that parse them.
//!
//! Everything here is pure (frames in, typed values out) so it is unit-tested without a
//! server. Error replies never reach these parsers: [`crate::Connection::request`] turns
//! them into [`ClientError::Server`] first.

use stack_abi::zdb::nsinfo;
use std::collections::BTreeMap;

use bytes::Bytes;
use resp::Frame;

use crate::ClientError;

/// Turns a raw reply (e.g. one element of a pipeline result) into a `Result`: an error
/// reply becomes [`ClientError::Server`], anything else is returned unchanged.
pub fn check_reply(frame: Frame) -> Result<Frame, ClientError> {
    match frame {
        Frame::Error(text) => Err(ClientError::Server(
            String::from_utf8_lossy(&text).into_owned(),
        )),
        other => Ok(other),
    }
}

/// One entry of a `SCAN` / `RSCAN` page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanEntry {
    /// The key (binary; in sequential mode the 8-byte little-endian id).
    pub key: Bytes,
    /// Payload size in bytes.
    pub size: u64,
    /// Unix timestamp (seconds) of the entry's last write.
    pub timestamp: u64,
}

/// One step back in a key's history (`HISTORY key [cursor]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Cursor to pass to `HISTORY` to get the version before this one; `None` when this
    /// is the oldest version.
    pub previous: Option<Bytes>,
    /// Unix timestamp (seconds) when this version was written.
    pub timestamp: u64,
    /// The payload of this version.
    pub payload: Bytes,
}

/// The `key: value` lines of an `NSINFO` reply, with typed accessors for the fields zstor
/// and zdbfs use. Unknown fields are kept and reachable through [`NsInfo::get`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NsInfo {
    fields: BTreeMap<String, String>,
}

impl NsInfo {
    /// Parses `key: value` lines; blank lines and `#` comment lines are skipped, lines
    /// without a colon are ignored, keys and values are trimmed.
    pub fn parse(text: &str) -> NsInfo {
        let fields = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        NsInfo { fields }
    }

    /// The raw value of a field.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }

    /// A field parsed as an unsigned integer.
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(|v| v.parse().ok())
    }

    /// A field parsed as a boolean (`yes`/`no`, `true`/`false`, `1`/`0`).
    pub fn get_bool(&self, key: &str) -> Option<bool> {
        match self.get(key)?.to_ascii_lowercase().as_str() {
            "yes" | "true" | "1" => Some(true),
            "no" | "false" | "0" => Some(false),
            _ => None,
        }
    }

    /// All fields, sorted by key.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// `name`.
    pub fn name(&self) -> Option<&str> {
        self.get(nsinfo::NAME)
    }
    /// `entries`: number of live keys.
    pub fn entries(&self) -> Option<u64> {
        self.get_u64(nsinfo::ENTRIES)
    }
    /// `public`: readable without password.
    pub fn public(&self) -> Option<bool> {
        self.get_bool(nsinfo::PUBLIC)
    }
    /// `password`: whether a password is set.
    pub fn password(&self) -> Option<bool> {
        self.get_bool(nsinfo::PASSWORD)
    }
    /// `data_size_bytes`: total payload bytes.
    pub fn data_size_bytes(&self) -> Option<u64> {
        self.get_u64(nsinfo::DATA_SIZE_BYTES)
    }
    /// `data_limits_bytes`: size limit, 0 for unlimited.
    pub fn data_limits_bytes(&self) -> Option<u64> {
        self.get_u64(nsinfo::DATA_LIMITS_BYTES)
    }
    /// `index_size_bytes`.
    pub fn index_size_bytes(&self) -> Option<u64> {
        self.get_u64(nsinfo::INDEX_SIZE_BYTES)
    }
    /// `mode`: `userkey` or `sequential`.
    pub fn mode(&self) -> Option<&str> {
        self.get(nsinfo::MODE)
    }
    /// `worm`: write-once namespace.
    pub fn worm(&self) -> Option<bool> {
        self.get_bool(nsinfo::WORM)
    }
    /// `locked`: read-only.
    pub fn locked(&self) -> Option<bool> {
        self.get_bool(nsinfo::LOCKED)
    }
    /// `data_disk_freespace_bytes`.
    pub fn data_disk_freespace_bytes(&self) -> Option<u64> {
        self.get_u64(nsinfo::DATA_DISK_FREESPACE_BYTES)
    }
    /// `index_disk_freespace_bytes`.
    pub fn index_disk_freespace_bytes(&self) -> Option<u64> {
        self.get_u64(nsinfo::INDEX_DISK_FREESPACE_BYTES)
    }
    /// `data_current_id`: id of the data segment being written.
    pub fn data_current_id(&self) -> Option<u64> {
        self.get_u64(nsinfo::DATA_CURRENT_ID)
    }
    /// `data_current_offset`: write offset in the current data segment.
    pub fn data_current_offset(&self) -> Option<u64> {
        self.get_u64(nsinfo::DATA_CURRENT_OFFSET)
    }
}

fn shape(command: &'static str, expected: &str, got: &Frame) -> ClientError {
    ClientError::unexpected(command, format!("expected {expected}, got {}", got.kind()))
}

/// `+OK` (any status reply).
pub(crate) fn ok(command: &'static str, frame: Frame) -> Result<(), ClientError> {
    match frame {
        Frame::Simple(_) => Ok(()),
        other => Err(shape(command, "status reply", &other)),
    }
}

/// A bulk string.
pub(crate) fn bulk(command: &'static str, frame: Frame) -> Result<Bytes, ClientError> {
    match frame {
        Frame::Bulk(b) => Ok(b),
        other => Err(shape(command, "bulk string", &other)),
    }
}

/// A bulk string or nil.
pub(crate) fn opt_bulk(command: &'static str, frame: Frame) -> Result<Option<Bytes>, ClientError> {
    match frame {
        Frame::Bulk(b) => Ok(Some(b)),
        Frame::Null => Ok(None),
        other => Err(shape(command, "bulk string or nil", &other)),
    }
}

/// Text, sent as bulk or status reply.
pub(crate) fn text(command: &'static str, frame: Frame) -> Result<String, ClientError> {
    match frame {
        Frame::Bulk(b) | Frame::Simple(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
        other => Err(shape(command, "text", &other)),
    }
}

/// A non-negative integer.
pub(crate) fn uint(command: &'static str, frame: Frame) -> Result<u64, ClientError> {
    match frame {
        Frame::Integer(i) => {
            u64::try_from(i).map_err(|_| ClientError::unexpected(command, format!("negative {i}")))
        }
        other => Err(shape(command, "integer", &other)),
    }
}

/// A non-negative integer or nil.
pub(crate) fn opt_uint(command: &'static str, frame: Frame) -> Result<Option<u64>, ClientError> {
    match frame {
        Frame::Null => Ok(None),
        other => uint(command, other).map(Some),
    }
}

/// A non-negative integer, sent either as `:n` or as a bulk string of digits (0-db sends
/// some timestamps as bulk strings).
pub(crate) fn uint_lenient(command: &'static str, frame: Frame) -> Result<u64, ClientError> {
    match frame {
        Frame::Bulk(b) | Frame::Simple(b) => std::str::from_utf8(&b)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| ClientError::unexpected(command, "expected a decimal number")),
        other => uint(command, other),
    }
}

/// An array.
pub(crate) fn array(command: &'static str, frame: Frame) -> Result<Vec<Frame>, ClientError> {
    match frame {
        Frame::Array(items) => Ok(items),
        other => Err(shape(command, "array", &other)),
    }
}

/// The little-endian id returned by `SET` in sequential mode: 8 bytes as 0-db sends it
/// (4 bytes accepted too).
pub(crate) fn seq_id(command: &'static str, key: &[u8]) -> Result<u64, ClientError> {
    match key.len() {
        8 => Ok(u64::from_le_bytes(key.try_into().expect("length checked"))),
        4 => Ok(u64::from(u32::from_le_bytes(
            key.try_into().expect("length checked"),
        ))),
        n => Err(ClientError::unexpected(
            command,
            format!("expected an 8-byte id, got {n} bytes"),
        )),
    }
}

/// `SCAN`/`RSCAN`: `*2` of next cursor and an array of `*3` `[key, :size, :timestamp]`.
pub(crate) fn scan_page(
    command: &'static str,
    frame: Frame,
) -> Result<(Bytes, Vec<ScanEntry>), ClientError> {
    let mut parts = array(command, frame)?.into_iter();
    let (Some(cursor), Some(list), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ClientError::unexpected(command, "expected 2 elements"));
    };
    let cursor = bulk(command, cursor)?;
    let entries = array(command, list)?
        .into_iter()
        .map(|item| {
            let mut f = array(command, item)?.into_iter();
            let (Some(key), Some(size), Some(ts), None) = (f.next(), f.next(), f.next(), f.next())
            else {
                return Err(ClientError::unexpected(
                    command,
                    "entry must have 3 elements",
                ));
            };
            Ok(ScanEntry {
                key: bulk(command, key)?,
                size: uint_lenient(command, size)?,
                timestamp: uint_lenient(command, ts)?,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((cursor, entries))
}

/// `HISTORY`: `*3` of previous cursor (bulk or nil), timestamp, payload.
pub(crate) fn history(frame: Frame) -> Result<HistoryEntry, ClientError> {
    const CMD: &str = "HISTORY";
    let mut parts = array(CMD, frame)?.into_iter();
    let (Some(prev), Some(ts), Some(payload), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ClientError::unexpected(CMD, "expected 3 elements"));
    };
    Ok(HistoryEntry {
        previous: opt_bulk(CMD, prev)?,
        timestamp: uint_lenient(CMD, ts)?,
        payload: bulk(CMD, payload)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &[u8]) -> Frame {
        Frame::Bulk(Bytes::copy_from_slice(s))
    }

    #[test]
    fn check_reply_maps_errors() {
        assert!(matches!(
            check_reply(Frame::error("No more data")),
            Err(ClientError::Server(m)) if m == "No more data"
        ));
        assert_eq!(check_reply(Frame::Integer(1)).unwrap(), Frame::Integer(1));
    }

    #[test]
    fn scalar_shapes() {
        assert!(ok("PING", Frame::simple("PONG")).is_ok());
        assert!(ok("DEL", Frame::Integer(1)).is_err());
        assert_eq!(opt_bulk("GET", Frame::Null).unwrap(), None);
        assert_eq!(
            opt_bulk("GET", b(b"v")).unwrap().as_deref(),
            Some(&b"v"[..])
        );
        assert!(opt_bulk("GET", Frame::Integer(3)).is_err());
        assert_eq!(uint("DBSIZE", Frame::Integer(7)).unwrap(), 7);
        assert!(uint("DBSIZE", Frame::Integer(-1)).is_err());
        assert_eq!(opt_uint("LENGTH", Frame::Null).unwrap(), None);
        assert_eq!(uint_lenient("X", b(b"1535361488")).unwrap(), 1_535_361_488);
        assert!(uint_lenient("X", b(b"12a")).is_err());
        assert_eq!(text("INFO", b(b"a: b")).unwrap(), "a: b");
    }

    #[test]
    fn seq_ids_are_little_endian() {
        assert_eq!(seq_id("SET", &[1, 0, 0, 0]).unwrap(), 1);
        assert_eq!(seq_id("SET", &[0, 1, 0, 0]).unwrap(), 256);
        let err = seq_id("SET", b"abc").unwrap_err();
        assert!(err.to_string().contains("8-byte"), "{err}");
        assert_eq!(seq_id("SET", &[2, 1, 0, 0, 0, 0, 0, 0]).unwrap(), 258);
    }

    #[test]
    fn scan_page_parses() {
        let frame = Frame::Array(vec![
            b(b"\x87\0\0\0"),
            Frame::Array(vec![
                Frame::Array(vec![
                    b(b"\x01\x02\x03"),
                    Frame::Integer(16),
                    Frame::Integer(1_535_361_488),
                ]),
                Frame::Array(vec![
                    b(b"k2"),
                    Frame::Integer(6),
                    Frame::Integer(1_535_361_485),
                ]),
            ]),
        ]);
        let (cursor, entries) = scan_page("SCAN", frame).unwrap();
        assert_eq!(&cursor[..], b"\x87\0\0\0");
        assert_eq!(
            entries,
            vec![
                ScanEntry {
                    key: Bytes::from_static(b"\x01\x02\x03"),
                    size: 16,
                    timestamp: 1_535_361_488
                },
                ScanEntry {
                    key: Bytes::from_static(b"k2"),
                    size: 6,
                    timestamp: 1_535_361_485
                },
            ]
        );
    }

    #[test]
    fn scan_page_rejects_bad_shapes() {
        for bad in [
            Frame::Integer(1),
            Frame::Array(vec![b(b"c")]),
            Frame::Array(vec![
                b(b"c"),
                Frame::Array(vec![Frame::Array(vec![b(b"k"), Frame::Integer(1)])]),
            ]),
            Frame::Array(vec![Frame::Integer(1), Frame::Array(vec![])]),
            Frame::Array(vec![b(b"c"), Frame::Array(vec![]), Frame::Null]),
        ] {
            assert!(matches!(
                scan_page("SCAN", bad),
                Err(ClientError::UnexpectedReply { .. })
            ));
        }
    }

    #[test]
    fn history_parses_both_timestamp_encodings() {
        let h = history(Frame::Array(vec![
            b(b"\0\0\x1b\0\0\0"),
            b(b"1600000000"),
            b(b"old"),
        ]))
        .unwrap();
        assert_eq!(h.previous.as_deref(), Some(&b"\0\0\x1b\0\0\0"[..]));
        assert_eq!(h.timestamp, 1_600_000_000);
        assert_eq!(&h.payload[..], b"old");
        let h = history(Frame::Array(vec![Frame::Null, Frame::Integer(5), b(b"")])).unwrap();
        assert_eq!(h.previous, None);
        assert_eq!(h.timestamp, 5);
        assert!(history(Frame::Array(vec![Frame::Null, Frame::Integer(5)])).is_err());
    }

    #[test]
    fn nsinfo_parses_key_value_lines() {
        let text = "# namespace\nname: default\nentries: 12\npublic: yes\npassword: no\n\
                    data_size_bytes: 1024\ndata_size_mb: 0.00\ndata_limits_bytes: 0\n\
                    index_size_bytes: 300\nmode: userkey\nworm: no\nlocked: no\n\
                    next_internal_id: 0x0000000c\ndata_current_id: 3\ndata_current_offset: 77\n\
                    data_disk_freespace_bytes: 999\nindex_disk_freespace_bytes: 888\r\n\
                    garbage line\n";
        let info = NsInfo::parse(text);
        assert_eq!(info.name(), Some("default"));
        assert_eq!(info.entries(), Some(12));
        assert_eq!(info.public(), Some(true));
        assert_eq!(info.password(), Some(false));
        assert_eq!(info.data_size_bytes(), Some(1024));
        assert_eq!(info.data_limits_bytes(), Some(0));
        assert_eq!(info.index_size_bytes(), Some(300));
        assert_eq!(info.mode(), Some("userkey"));
        assert_eq!(info.worm(), Some(false));
        assert_eq!(info.locked(), Some(false));
        assert_eq!(info.get("next_internal_id"), Some("0x0000000c"));
        assert_eq!(info.get("data_size_mb"), Some("0.00"));
        assert_eq!(info.data_current_id(), Some(3));
        assert_eq!(info.data_current_offset(), Some(77));
        assert_eq!(info.data_disk_freespace_bytes(), Some(999));
        assert_eq!(info.index_disk_freespace_bytes(), Some(888));
        assert_eq!(info.get("missing"), None);
        assert_eq!(info.get_u64("mode"), None);
        assert_eq!(info.fields().count(), 16);
    }
}
