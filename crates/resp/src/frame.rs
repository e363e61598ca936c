//! The [`Frame`] type: one RESP2 value.

use std::fmt;

use bytes::Bytes;

/// One RESP2 value.
///
/// Text-like variants (`Simple`, `Error`) hold raw bytes: RESP does not promise UTF-8, and
/// keeping bytes makes decoding zero-copy. Use [`Frame::as_text`] or [`Frame::to_text`]
/// for a string view.
#[derive(Clone, PartialEq, Eq)]
pub enum Frame {
    /// `+text\r\n`. The text must not contain `\r` or `\n`.
    Simple(Bytes),
    /// `-text\r\n`. The text must not contain `\r` or `\n`.
    Error(Bytes),
    /// `:123\r\n`.
    Integer(i64),
    /// `$3\r\nabc\r\n`: a binary-safe string.
    Bulk(Bytes),
    /// `$-1\r\n`: the null bulk string (zdb's "nil").
    Null,
    /// `*-1\r\n`: the null array.
    NullArray,
    /// `*2\r\n…`: an array of frames.
    Array(Vec<Frame>),
}

impl Frame {
    /// A simple-string frame from static or owned text.
    pub fn simple(text: impl Into<Bytes>) -> Frame {
        Frame::Simple(text.into())
    }

    /// An error frame from static or owned text.
    pub fn error(text: impl Into<Bytes>) -> Frame {
        Frame::Error(text.into())
    }

    /// A bulk-string frame.
    pub fn bulk(data: impl Into<Bytes>) -> Frame {
        Frame::Bulk(data.into())
    }

    /// True for `$-1` and `*-1`.
    pub fn is_null(&self) -> bool {
        matches!(self, Frame::Null | Frame::NullArray)
    }

    /// True for an error reply.
    pub fn is_error(&self) -> bool {
        matches!(self, Frame::Error(_))
    }

    /// The payload of a bulk, simple or error frame.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            Frame::Simple(b) | Frame::Error(b) | Frame::Bulk(b) => Some(b),
            _ => None,
        }
    }

    /// The payload of a bulk, simple or error frame, if it is valid UTF-8.
    pub fn as_text(&self) -> Option<&str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    /// The payload of a bulk, simple or error frame as text, replacing invalid UTF-8.
    pub fn to_text(&self) -> Option<String> {
        self.as_bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }

    /// A short name of the variant, for error messages ("bulk", "array", …).
    pub fn kind(&self) -> &'static str {
        match self {
            Frame::Simple(_) => "simple string",
            Frame::Error(_) => "error",
            Frame::Integer(_) => "integer",
            Frame::Bulk(_) => "bulk string",
            Frame::Null => "null",
            Frame::NullArray => "null array",
            Frame::Array(_) => "array",
        }
    }
}

/// Debug output shows text lossily and escapes binary, like `redis-cli` does.
impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Frame::Simple(b) => write!(f, "Simple({})", Escaped(b)),
            Frame::Error(b) => write!(f, "Error({})", Escaped(b)),
            Frame::Integer(i) => write!(f, "Integer({i})"),
            Frame::Bulk(b) => write!(f, "Bulk({})", Escaped(b)),
            Frame::Null => f.write_str("Null"),
            Frame::NullArray => f.write_str("NullArray"),
            Frame::Array(items) => f.debug_tuple("Array").field(items).finish(),
        }
    }
}

/// Writes bytes as a quoted string with non-printable bytes escaped, truncated for
/// readability.
struct Escaped<'a>(&'a [u8]);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 64;
        f.write_str("\"")?;
        for &b in self.0.iter().take(SHOWN) {
            for c in std::ascii::escape_default(b) {
                f.write_str(char::from(c).encode_utf8(&mut [0; 4]))?;
            }
        }
        if self.0.len() > SHOWN {
            write!(f, "\"…({} bytes)", self.0.len())
        } else {
            f.write_str("\"")
        }
    }
}

impl From<i64> for Frame {
    fn from(v: i64) -> Self {
        Frame::Integer(v)
    }
}

impl From<Bytes> for Frame {
    fn from(v: Bytes) -> Self {
        Frame::Bulk(v)
    }
}

impl From<Vec<Frame>> for Frame {
    fn from(v: Vec<Frame>) -> Self {
        Frame::Array(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors() {
        let f = Frame::bulk(&b"abc"[..]);
        assert_eq!(f.as_text(), Some("abc"));
        assert!(!f.is_null());
        assert!(Frame::Null.is_null());
        assert!(Frame::NullArray.is_null());
        assert!(Frame::error("ERR x").is_error());
        assert_eq!(Frame::Integer(3).as_bytes(), None);
        assert_eq!(
            Frame::bulk(vec![0xff, b'a']).to_text().as_deref(),
            Some("\u{fffd}a")
        );
    }

    #[test]
    fn debug_escapes_binary() {
        let s = format!("{:?}", Frame::bulk(vec![0u8, b'a', b'\n']));
        assert_eq!(s, r#"Bulk("\x00a\n")"#);
        let long = format!("{:?}", Frame::bulk(vec![b'x'; 100]));
        assert!(long.ends_with("\"…(100 bytes))"), "{long}");
    }
}
