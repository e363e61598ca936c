//! Typed decoding errors.

use thiserror::Error;

/// Why a byte stream is not valid RESP2 (or exceeds the configured [`crate::Limits`]).
///
/// The `Display` text is short and suitable to send back to a peer, e.g. as
/// `-ERR Protocol error: <text>`. After any of these errors the stream has no reliable
/// frame boundary left and the connection should be closed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    /// The first byte of a frame is not one of `+ - : $ *`.
    #[error("invalid frame type byte 0x{0:02x}")]
    InvalidFrameType(u8),
    /// A `$` header is not `-1` or a non-negative decimal that fits in 64 bits.
    #[error("invalid bulk length")]
    InvalidBulkLength,
    /// A `$` header declares more bytes than [`crate::Limits::max_bulk_len`].
    #[error("bulk length {len} exceeds limit {limit}")]
    BulkTooLarge {
        /// The declared length.
        len: u64,
        /// The configured limit.
        limit: usize,
    },
    /// A `*` header is not `-1` or a non-negative decimal that fits in 64 bits.
    #[error("invalid multibulk length")]
    InvalidArrayLength,
    /// A `*` header declares more elements than [`crate::Limits::max_array_len`].
    #[error("too many arguments: array length {len} exceeds limit {limit}")]
    TooManyElements {
        /// The declared element count.
        len: u64,
        /// The configured limit.
        limit: usize,
    },
    /// Arrays are nested deeper than allowed ([`crate::Limits::max_depth`], or 1 for requests).
    #[error("array nesting exceeds maximum depth {limit}")]
    TooDeep {
        /// The depth limit that was exceeded.
        limit: usize,
    },
    /// A `:` frame does not hold a decimal that fits in an `i64`.
    #[error("invalid integer")]
    InvalidInteger,
    /// A line or bulk payload is not followed by `\r\n`.
    #[error("missing CRLF terminator")]
    MissingCrlf,
    /// A simple string, error or integer line is longer than
    /// [`crate::Limits::max_inline_len`].
    #[error("line too long: exceeds limit {limit}")]
    LineTooLong {
        /// The configured limit.
        limit: usize,
    },
    /// An inline command line is longer than [`crate::Limits::max_inline_len`].
    #[error("inline command too long: exceeds limit {limit}")]
    InlineTooLong {
        /// The configured limit.
        limit: usize,
    },
    /// A request array holds something other than a non-null bulk string.
    #[error("expected bulk string in request")]
    ExpectedBulk,
}
