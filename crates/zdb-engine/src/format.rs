//! On-disk formats: segment file headers, data records and index entries.
//!
//! The full byte layout is documented in `docs/format/zdb.md`; this module is the only code that
//! knows it. All integers are little-endian. Every record and every index entry carries a CRC32 so
//! that a torn or corrupt tail is detected and cut, never served.

use crate::Mode;

/// Size of the header at the start of every data and index segment file.
pub const FILE_HEADER_LEN: usize = 32;
/// Fixed part of a data record before the key and payload.
pub const RECORD_HEADER_LEN: usize = 26;
/// Fixed part of an index entry: header before the key plus the one-byte key-length trailer.
pub const ENTRY_FIXED_LEN: usize = 27;
/// Index entry size in sequential mode, where the key (the id) is implicit.
pub const SEQ_ENTRY_LEN: usize = ENTRY_FIXED_LEN;
/// Longest key a user-mode namespace accepts (stored in one byte).
pub const MAX_KEY_LEN: usize = 255;
/// Largest payload accepted, as in 0-db.
pub const MAX_PAYLOAD_LEN: usize = 8 * 1024 * 1024;
/// Marker for "no previous version" in a record's history link.
pub const NO_PREV: u32 = u32::MAX;

const DATA_MAGIC: &[u8; 4] = b"ZDBD";
const INDEX_MAGIC: &[u8; 4] = b"ZDBI";
const FORMAT_VERSION: u16 = 1;

/// Record and entry flag: this version is a deletion (tombstone).
pub const FLAG_DELETED: u8 = 0x01;

/// Which kind of segment file a header belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Data,
    Index,
}

/// Header written once at the start of each segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    pub kind: FileKind,
    pub mode: Mode,
    pub segment: u32,
    /// Sequential mode: the id of the first entry of this index segment.
    pub first_id: u32,
    pub created: u64,
}

impl FileHeader {
    pub fn encode(&self) -> [u8; FILE_HEADER_LEN] {
        let mut b = [0u8; FILE_HEADER_LEN];
        b[0..4].copy_from_slice(match self.kind {
            FileKind::Data => DATA_MAGIC,
            FileKind::Index => INDEX_MAGIC,
        });
        b[4..6].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[6] = self.mode.as_byte();
        b[8..12].copy_from_slice(&self.segment.to_le_bytes());
        b[12..16].copy_from_slice(&self.first_id.to_le_bytes());
        b[16..24].copy_from_slice(&self.created.to_le_bytes());
        let crc = crc32fast::hash(&b[0..28]);
        b[28..32].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Parse and check a header; `None` when the bytes are not a valid header of `kind`.
    pub fn decode(b: &[u8], kind: FileKind) -> Option<FileHeader> {
        if b.len() < FILE_HEADER_LEN {
            return None;
        }
        let magic = match kind {
            FileKind::Data => DATA_MAGIC,
            FileKind::Index => INDEX_MAGIC,
        };
        if &b[0..4] != magic
            || u16le(b, 4) != FORMAT_VERSION
            || crc32fast::hash(&b[0..28]) != u32le(b, 28)
        {
            return None;
        }
        Some(FileHeader {
            kind,
            mode: Mode::from_byte(b[6])?,
            segment: u32le(b, 8),
            first_id: u32le(b, 12),
            created: u64le(b, 16),
        })
    }
}

/// A data record's fixed header, as stored before its key and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    pub payload_crc: u32,
    pub payload_len: u32,
    pub timestamp: u32,
    /// Location of the previous version of the same key (history link).
    pub prev_seg: u32,
    pub prev_off: u32,
    pub flags: u8,
    pub key_len: u8,
}

impl RecordHeader {
    /// Full on-disk length of the record this header describes.
    pub fn record_len(&self) -> usize {
        RECORD_HEADER_LEN + self.key_len as usize + self.payload_len as usize
    }

    pub fn is_deleted(&self) -> bool {
        self.flags & FLAG_DELETED != 0
    }

    pub fn prev(&self) -> Option<(u32, u32)> {
        (self.prev_seg != NO_PREV).then_some((self.prev_seg, self.prev_off))
    }
}

/// Append the encoding of a full record (header, key, payload) to `out`.
pub fn encode_record(out: &mut Vec<u8>, h: &RecordHeader, key: &[u8], payload: &[u8]) {
    debug_assert_eq!(key.len(), h.key_len as usize);
    debug_assert_eq!(payload.len(), h.payload_len as usize);
    let start = out.len();
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&h.payload_crc.to_le_bytes());
    out.extend_from_slice(&h.payload_len.to_le_bytes());
    out.extend_from_slice(&h.timestamp.to_le_bytes());
    out.extend_from_slice(&h.prev_seg.to_le_bytes());
    out.extend_from_slice(&h.prev_off.to_le_bytes());
    out.push(h.flags);
    out.push(h.key_len);
    out.extend_from_slice(key);
    let crc = crc32fast::hash(&out[start + 4..]);
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(payload);
}

/// Why a record could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than the record needs: a torn tail, or a read that must be longer.
    Short { need: usize },
    /// The bytes are there but a checksum or a field is wrong.
    Corrupt(&'static str),
}

/// Decode and verify a record header plus key from the start of `b` (payload not checked here).
pub fn decode_record_header(b: &[u8]) -> Result<(RecordHeader, &[u8]), DecodeError> {
    if b.len() < RECORD_HEADER_LEN {
        return Err(DecodeError::Short {
            need: RECORD_HEADER_LEN,
        });
    }
    let key_len = b[25] as usize;
    let head_len = RECORD_HEADER_LEN + key_len;
    if b.len() < head_len {
        return Err(DecodeError::Short { need: head_len });
    }
    if crc32fast::hash(&b[4..head_len]) != u32le(b, 0) {
        return Err(DecodeError::Corrupt("record header checksum mismatch"));
    }
    let h = RecordHeader {
        payload_crc: u32le(b, 4),
        payload_len: u32le(b, 8),
        timestamp: u32le(b, 12),
        prev_seg: u32le(b, 16),
        prev_off: u32le(b, 20),
        flags: b[24],
        key_len: b[25],
    };
    if h.payload_len as usize > MAX_PAYLOAD_LEN {
        return Err(DecodeError::Corrupt("record payload length out of range"));
    }
    Ok((h, &b[RECORD_HEADER_LEN..head_len]))
}

/// Decode a whole record and verify both checksums.
pub fn decode_record(b: &[u8]) -> Result<(RecordHeader, &[u8], &[u8]), DecodeError> {
    let (h, key) = decode_record_header(b)?;
    let len = h.record_len();
    if b.len() < len {
        return Err(DecodeError::Short { need: len });
    }
    let payload = &b[RECORD_HEADER_LEN + key.len()..len];
    if crc32fast::hash(payload) != h.payload_crc {
        return Err(DecodeError::Corrupt("record payload checksum mismatch"));
    }
    Ok((h, key, payload))
}

/// One index entry: where the current version of a key lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub data_seg: u32,
    pub data_off: u32,
    pub payload_len: u32,
    pub timestamp: u32,
    /// CRC32 of the payload, so a SET can tell a changed value without reading the old one.
    pub payload_crc: u32,
    pub flags: u8,
}

impl IndexEntry {
    pub fn is_deleted(&self) -> bool {
        self.flags & FLAG_DELETED != 0
    }

    /// The entry for the record with header `h` at `(seg, off)`.
    pub fn for_record(seg: u32, off: u32, h: &RecordHeader) -> IndexEntry {
        IndexEntry {
            data_seg: seg,
            data_off: off,
            payload_len: h.payload_len,
            timestamp: h.timestamp,
            payload_crc: h.payload_crc,
            flags: h.flags,
        }
    }

    /// A deleted placeholder pointing at no record (sequential mode keeps ids in place).
    pub fn hole(timestamp: u32) -> IndexEntry {
        IndexEntry {
            data_seg: crate::segrefs::NO_SEGMENT,
            data_off: 0,
            payload_len: 0,
            timestamp,
            payload_crc: 0,
            flags: FLAG_DELETED,
        }
    }
}

/// Encoded length of an index entry with a key of `key_len` bytes.
pub fn entry_len(key_len: usize) -> usize {
    ENTRY_FIXED_LEN + key_len
}

/// Append an index entry (header, key, key-length trailer) to `out`.
pub fn encode_entry(out: &mut Vec<u8>, e: &IndexEntry, key: &[u8]) {
    let start = out.len();
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&e.data_off.to_le_bytes());
    out.extend_from_slice(&e.payload_len.to_le_bytes());
    out.extend_from_slice(&e.timestamp.to_le_bytes());
    out.extend_from_slice(&e.data_seg.to_le_bytes());
    out.extend_from_slice(&e.payload_crc.to_le_bytes());
    out.push(e.flags);
    out.push(key.len() as u8);
    out.extend_from_slice(key);
    out.push(key.len() as u8);
    let crc = crc32fast::hash(&out[start + 4..]);
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
}

/// Decode and verify one index entry at the start of `b`; returns the entry, its key and its length.
pub fn decode_entry(b: &[u8]) -> Result<(IndexEntry, &[u8], usize), DecodeError> {
    if b.len() < ENTRY_FIXED_LEN {
        return Err(DecodeError::Short {
            need: ENTRY_FIXED_LEN,
        });
    }
    let key_len = b[25] as usize;
    let len = entry_len(key_len);
    if b.len() < len {
        return Err(DecodeError::Short { need: len });
    }
    if b[len - 1] as usize != key_len || crc32fast::hash(&b[4..len]) != u32le(b, 0) {
        return Err(DecodeError::Corrupt("index entry checksum mismatch"));
    }
    let e = IndexEntry {
        data_off: u32le(b, 4),
        payload_len: u32le(b, 8),
        timestamp: u32le(b, 12),
        data_seg: u32le(b, 16),
        payload_crc: u32le(b, 20),
        flags: b[24],
    };
    Ok((e, &b[26..26 + key_len], len))
}

pub(crate) fn u16le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

pub(crate) fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

pub(crate) fn u64le(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header(key: &[u8], payload: &[u8]) -> RecordHeader {
        RecordHeader {
            payload_crc: crc32fast::hash(payload),
            payload_len: payload.len() as u32,
            timestamp: 1_700_000_000,
            prev_seg: NO_PREV,
            prev_off: 0,
            flags: 0,
            key_len: key.len() as u8,
        }
    }

    #[test]
    fn file_header_round_trip_and_rejects_wrong_kind() {
        let h = FileHeader {
            kind: FileKind::Index,
            mode: Mode::Seq,
            segment: 7,
            first_id: 99,
            created: 5,
        };
        let b = h.encode();
        assert_eq!(FileHeader::decode(&b, FileKind::Index), Some(h));
        assert_eq!(FileHeader::decode(&b, FileKind::Data), None);
        let mut bad = b;
        bad[9] ^= 1;
        assert_eq!(FileHeader::decode(&bad, FileKind::Index), None);
    }

    #[test]
    fn torn_record_is_short_and_flipped_byte_is_corrupt() {
        let mut buf = Vec::new();
        encode_record(&mut buf, &header(b"key", b"payload"), b"key", b"payload");
        for cut in 0..buf.len() {
            assert!(
                matches!(decode_record(&buf[..cut]), Err(DecodeError::Short { .. })),
                "cut {cut}"
            );
        }
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x40;
            assert!(decode_record(&bad).is_err(), "flip at {i} not detected");
        }
    }

    proptest! {
        #[test]
        fn record_round_trip(key in proptest::collection::vec(any::<u8>(), 0..=255), payload in proptest::collection::vec(any::<u8>(), 0..4096), ts in any::<u32>(), prev in any::<(u32, u32)>(), flags in any::<u8>()) {
            let mut h = header(&key, &payload);
            h.timestamp = ts;
            (h.prev_seg, h.prev_off) = prev;
            h.flags = flags;
            let mut buf = vec![9u8; 3];
            encode_record(&mut buf, &h, &key, &payload);
            let (h2, k2, p2) = decode_record(&buf[3..]).unwrap();
            prop_assert_eq!(h2, h);
            prop_assert_eq!(k2, &key[..]);
            prop_assert_eq!(p2, &payload[..]);
        }

        #[test]
        fn entry_round_trip(key in proptest::collection::vec(any::<u8>(), 0..=255), seg in any::<u32>(), off in any::<u32>(), len in any::<u32>(), ts in any::<u32>(), crc in any::<u32>(), flags in any::<u8>()) {
            let e = IndexEntry { data_seg: seg, data_off: off, payload_len: len, timestamp: ts, payload_crc: crc, flags };
            let mut buf = Vec::new();
            encode_entry(&mut buf, &e, &key);
            prop_assert_eq!(buf.len(), entry_len(key.len()));
            let (e2, k2, n) = decode_entry(&buf).unwrap();
            prop_assert_eq!(e2, e);
            prop_assert_eq!(k2, &key[..]);
            prop_assert_eq!(n, buf.len());
        }

        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = decode_record(&bytes);
            let _ = decode_entry(&bytes);
            let _ = FileHeader::decode(&bytes, FileKind::Data);
        }
    }
}
