//! Phase one of decoding: find out whether the buffer holds one complete, valid frame and
//! how long it is, without allocating and without consuming anything.
//!
//! The [`Scanner`] is resumable: when the buffer ends in the middle of a frame it records
//! the offset of the first element it has not finished validating (plus how far a line
//! was searched for its terminator), so the next call continues from there instead of
//! re-validating the whole prefix. A bulk payload is never scanned at all: its declared
//! length is compared with the number of buffered bytes, which keeps a large value that
//! arrives in many small reads linear in total.

use memchr::{memchr, memchr2};

use crate::{Limits, ProtocolError};

/// Deepest nesting ever accepted, whatever [`Limits::max_depth`] says. Building and
/// dropping a [`crate::Frame`] recurses once per level, so this keeps the stack bounded.
pub(crate) const HARD_MAX_DEPTH: usize = 128;

/// Bulk and array headers hold at most this many digits (enough for any `u64` below
/// 10^19), which bounds how long we wait for a header's CRLF.
const MAX_LEN_DIGITS: usize = 19;

/// What kind of input the caller expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Any RESP2 frame (replies).
    Frame,
    /// A request: an array of bulk strings, or an inline command line.
    Request,
}

/// Result of a successful scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scan {
    /// The buffer ends before the frame does.
    Incomplete,
    /// A complete RESP frame of this many bytes is at the front of the buffer.
    Complete(usize),
    /// A complete inline command line of this many bytes (including its `\n`).
    Inline(usize),
}

/// A decoded `$` or `*` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Len {
    /// `-1`.
    Null,
    /// A non-negative length.
    Some(u64),
}

/// Resumable validation state for one frame.
#[derive(Debug, Default, Clone)]
pub(crate) struct Scanner {
    /// Mode of the frame in progress (meaningful only while `active`).
    mode: Option<Mode>,
    /// Offset of the next element header to validate.
    pos: usize,
    /// For a line starting at `pos` (or the inline command): offset up to which no line
    /// terminator was found yet.
    hint: usize,
    /// Remaining element counts of the arrays currently open, outermost first.
    stack: Vec<u64>,
}

impl Scanner {
    /// Forgets any partial progress.
    pub(crate) fn reset(&mut self) {
        self.mode = None;
        self.pos = 0;
        self.hint = 0;
        self.stack.clear();
    }

    /// Validates the frame at the front of `buf`, resuming from earlier progress when the
    /// previous call on the same (only appended-to) buffer returned `Incomplete`.
    pub(crate) fn scan(
        &mut self,
        buf: &[u8],
        limits: &Limits,
        mode: Mode,
    ) -> Result<Scan, ProtocolError> {
        if self.mode != Some(mode) || buf.len() < self.pos || buf.len() < self.hint {
            self.reset();
            self.mode = Some(mode);
        }
        let result = self.scan_inner(buf, limits, mode);
        if !matches!(result, Ok(Scan::Incomplete)) {
            self.reset();
        }
        result
    }

    fn scan_inner(
        &mut self,
        buf: &[u8],
        limits: &Limits,
        mode: Mode,
    ) -> Result<Scan, ProtocolError> {
        let Some(&first) = buf.first() else {
            return Ok(Scan::Incomplete);
        };
        if mode == Mode::Request && first != b'*' {
            return self.scan_inline(buf, limits);
        }
        let max_depth = match mode {
            Mode::Request => 1,
            Mode::Frame => limits.max_depth.min(HARD_MAX_DEPTH),
        };
        loop {
            let pos = self.pos;
            let Some(&ty) = buf.get(pos) else {
                return Ok(Scan::Incomplete);
            };
            if mode == Mode::Request && !self.stack.is_empty() && ty != b'$' {
                return Err(ProtocolError::ExpectedBulk);
            }
            match ty {
                b'+' | b'-' | b':' => {
                    let from = self.hint.max(pos + 1);
                    match find_crlf(buf, pos + 1, from, limits.max_inline_len)? {
                        Line::Incomplete(searched) => {
                            self.hint = searched;
                            return Ok(Scan::Incomplete);
                        }
                        Line::Found(cr) => {
                            if ty == b':' {
                                parse_integer(&buf[pos + 1..cr])?;
                            }
                            self.hint = 0;
                            self.pos = cr + 2;
                        }
                    }
                }
                b'$' => {
                    let Some((len, body)) =
                        parse_len(buf, pos + 1, ProtocolError::InvalidBulkLength)?
                    else {
                        return Ok(Scan::Incomplete);
                    };
                    match len {
                        Len::Null if mode == Mode::Request => {
                            return Err(ProtocolError::ExpectedBulk)
                        }
                        Len::Null => self.pos = body,
                        Len::Some(n) => {
                            let n = checked_bulk_len(n, limits)?;
                            // Compare the declared length with what is buffered before
                            // touching the payload: a big value arriving in pieces costs
                            // O(1) per call, not a rescan.
                            let end = body + n;
                            if buf.len() < end + 2 {
                                return Ok(Scan::Incomplete);
                            }
                            if &buf[end..end + 2] != b"\r\n" {
                                return Err(ProtocolError::MissingCrlf);
                            }
                            self.pos = end + 2;
                        }
                    }
                }
                b'*' => {
                    let Some((len, body)) =
                        parse_len(buf, pos + 1, ProtocolError::InvalidArrayLength)?
                    else {
                        return Ok(Scan::Incomplete);
                    };
                    self.pos = body;
                    if let Len::Some(n) = len {
                        if n > limits.max_array_len as u64 {
                            return Err(ProtocolError::TooManyElements {
                                len: n,
                                limit: limits.max_array_len,
                            });
                        }
                        if self.stack.len() + 1 > max_depth {
                            return Err(ProtocolError::TooDeep { limit: max_depth });
                        }
                        if n > 0 {
                            self.stack.push(n);
                            continue;
                        }
                    }
                }
                other => return Err(ProtocolError::InvalidFrameType(other)),
            }
            // One element finished: close every array it completes.
            loop {
                match self.stack.last_mut() {
                    None => return Ok(Scan::Complete(self.pos)),
                    Some(remaining) => {
                        *remaining -= 1;
                        if *remaining > 0 {
                            break;
                        }
                        self.stack.pop();
                    }
                }
            }
        }
    }

    fn scan_inline(&mut self, buf: &[u8], limits: &Limits) -> Result<Scan, ProtocolError> {
        let from = self.hint;
        if let Some(i) = memchr(b'\n', &buf[from..]) {
            let nl = from + i;
            if nl > limits.max_inline_len {
                return Err(ProtocolError::InlineTooLong {
                    limit: limits.max_inline_len,
                });
            }
            Ok(Scan::Inline(nl + 1))
        } else {
            if buf.len() > limits.max_inline_len {
                return Err(ProtocolError::InlineTooLong {
                    limit: limits.max_inline_len,
                });
            }
            self.hint = buf.len();
            Ok(Scan::Incomplete)
        }
    }
}

/// Outcome of searching for a line's `\r\n`.
pub(crate) enum Line {
    /// The `\r` of the terminator is at this offset (the `\n` follows it).
    Found(usize),
    /// No terminator yet; everything before this offset was searched.
    Incomplete(usize),
}

/// Finds the `\r\n` ending the line whose content starts at `start`, searching from
/// `from` (>= `start`). Errors if the content is longer than `limit` bytes, holds a bare
/// `\n` (RESP lines cannot carry one), or the `\r` is not followed by `\n`.
pub(crate) fn find_crlf(
    buf: &[u8],
    start: usize,
    from: usize,
    limit: usize,
) -> Result<Line, ProtocolError> {
    let from = from.min(buf.len());
    if let Some(i) = memchr2(b'\r', b'\n', &buf[from..]) {
        let cr = from + i;
        if cr - start > limit {
            return Err(ProtocolError::LineTooLong { limit });
        }
        if buf[cr] == b'\n' {
            return Err(ProtocolError::MissingCrlf);
        }
        match buf.get(cr + 1) {
            None => Ok(Line::Incomplete(cr)),
            Some(b'\n') => Ok(Line::Found(cr)),
            Some(_) => Err(ProtocolError::MissingCrlf),
        }
    } else {
        if buf.len().saturating_sub(start) > limit {
            return Err(ProtocolError::LineTooLong { limit });
        }
        Ok(Line::Incomplete(buf.len()))
    }
}

/// Parses the decimal length of a `$`/`*` header whose digits start at `i`.
///
/// Returns `Ok(None)` when the header is not complete yet, otherwise the length and the
/// offset just past the header's `\r\n`. Only `-1` is accepted as a negative length.
pub(crate) fn parse_len(
    buf: &[u8],
    mut i: usize,
    err: ProtocolError,
) -> Result<Option<(Len, usize)>, ProtocolError> {
    let negative = buf.get(i) == Some(&b'-');
    if negative {
        i += 1;
    }
    let digits_start = i;
    let mut value: u64 = 0;
    loop {
        match buf.get(i) {
            None => return Ok(None),
            Some(&b) if b.is_ascii_digit() => {
                if i - digits_start >= MAX_LEN_DIGITS {
                    return Err(err);
                }
                // Cannot overflow: at most 19 digits.
                value = value * 10 + u64::from(b - b'0');
                i += 1;
            }
            Some(b'\r') => break,
            Some(_) => return Err(err),
        }
    }
    if i == digits_start {
        return Err(err);
    }
    match buf.get(i + 1) {
        None => return Ok(None),
        Some(b'\n') => {}
        Some(_) => return Err(ProtocolError::MissingCrlf),
    }
    let len = match (negative, value) {
        (false, v) => Len::Some(v),
        (true, 1) => Len::Null,
        (true, _) => return Err(err),
    };
    Ok(Some((len, i + 2)))
}

/// Checks a declared bulk length against the limit and converts it to `usize`.
pub(crate) fn checked_bulk_len(n: u64, limits: &Limits) -> Result<usize, ProtocolError> {
    match usize::try_from(n) {
        Ok(v) if v <= limits.max_bulk_len => Ok(v),
        _ => Err(ProtocolError::BulkTooLarge {
            len: n,
            limit: limits.max_bulk_len,
        }),
    }
}

/// Parses the text of a `:` frame: an optional `-` and 1 to 19 digits, within `i64`.
pub(crate) fn parse_integer(text: &[u8]) -> Result<i64, ProtocolError> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > MAX_LEN_DIGITS {
        return Err(ProtocolError::InvalidInteger);
    }
    let mut value: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return Err(ProtocolError::InvalidInteger);
        }
        value = value * 10 + u64::from(b - b'0');
    }
    if negative {
        // i64::MIN has magnitude 2^63, one more than i64::MAX.
        match value {
            v if v <= i64::MAX as u64 => Ok(-(v as i64)),
            v if v == i64::MAX as u64 + 1 => Ok(i64::MIN),
            _ => Err(ProtocolError::InvalidInteger),
        }
    } else {
        i64::try_from(value).map_err(|_| ProtocolError::InvalidInteger)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(buf: &[u8], mode: Mode) -> Result<Scan, ProtocolError> {
        Scanner::default().scan(buf, &Limits::default(), mode)
    }

    #[test]
    fn parse_len_cases() {
        let e = ProtocolError::InvalidBulkLength;
        assert_eq!(
            parse_len(b"12\r\n", 0, e.clone()),
            Ok(Some((Len::Some(12), 4)))
        );
        assert_eq!(parse_len(b"-1\r\n", 0, e.clone()), Ok(Some((Len::Null, 4))));
        assert_eq!(parse_len(b"12", 0, e.clone()), Ok(None));
        assert_eq!(parse_len(b"12\r", 0, e.clone()), Ok(None));
        assert_eq!(parse_len(b"-", 0, e.clone()), Ok(None));
        assert_eq!(parse_len(b"-2\r\n", 0, e.clone()), Err(e.clone()));
        assert_eq!(parse_len(b"-0\r\n", 0, e.clone()), Err(e.clone()));
        assert_eq!(parse_len(b"\r\n", 0, e.clone()), Err(e.clone()));
        assert_eq!(parse_len(b"1x\r\n", 0, e.clone()), Err(e.clone()));
        assert_eq!(parse_len(b"+1\r\n", 0, e.clone()), Err(e.clone()));
        assert_eq!(
            parse_len(b"1\rx", 0, e.clone()),
            Err(ProtocolError::MissingCrlf)
        );
        // 20 digits are refused even before the CRLF arrives.
        assert_eq!(parse_len(b"11111111111111111111", 0, e.clone()), Err(e));
    }

    #[test]
    fn parse_integer_cases() {
        assert_eq!(parse_integer(b"0"), Ok(0));
        assert_eq!(parse_integer(b"-42"), Ok(-42));
        assert_eq!(parse_integer(b"9223372036854775807"), Ok(i64::MAX));
        assert_eq!(parse_integer(b"-9223372036854775808"), Ok(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b"1 ",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"99999999999999999999",
        ] {
            assert_eq!(
                parse_integer(bad),
                Err(ProtocolError::InvalidInteger),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn scan_lengths() {
        assert_eq!(scan(b"+OK\r\n", Mode::Frame), Ok(Scan::Complete(5)));
        assert_eq!(scan(b"+OK\r\nrest", Mode::Frame), Ok(Scan::Complete(5)));
        assert_eq!(
            scan(b"*2\r\n:1\r\n$-1\r\n", Mode::Frame),
            Ok(Scan::Complete(13))
        );
        assert_eq!(scan(b"*2\r\n:1\r\n", Mode::Frame), Ok(Scan::Incomplete));
        assert_eq!(scan(b"PING\r\n", Mode::Request), Ok(Scan::Inline(6)));
        assert_eq!(scan(b"PING", Mode::Request), Ok(Scan::Incomplete));
    }

    #[test]
    fn resumes_where_it_stopped() {
        let full = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
        let mut s = Scanner::default();
        let limits = Limits::default();
        for end in 1..full.len() {
            assert_eq!(
                s.scan(&full[..end], &limits, Mode::Request),
                Ok(Scan::Incomplete)
            );
        }
        assert_eq!(
            s.scan(full, &limits, Mode::Request),
            Ok(Scan::Complete(full.len()))
        );
        // State is reset after a complete frame.
        assert_eq!(s.pos, 0);
        assert!(s.stack.is_empty());
    }

    #[test]
    fn resets_when_buffer_shrinks() {
        let mut s = Scanner::default();
        let limits = Limits::default();
        assert_eq!(
            s.scan(b"*2\r\n$1\r\na\r\n", &limits, Mode::Frame),
            Ok(Scan::Incomplete)
        );
        // The caller replaced the buffer: a shorter one must not index out of range.
        assert_eq!(
            s.scan(b":1\r\n", &limits, Mode::Frame),
            Ok(Scan::Complete(4))
        );
    }
}
