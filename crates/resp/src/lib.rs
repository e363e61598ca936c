//! RESP2 wire codec shared by the zdb server and the zdb client.
//!
//! # What this crate owns
//!
//! * **Framing**: the [`Frame`] type (simple string, error, integer, bulk string,
//!   null bulk `$-1`, null array `*-1`, array) and incremental decoding of frames out of
//!   a [`bytes::BytesMut`] read buffer ([`decode`], [`decode_request`], [`Decoder`]).
//! * **Limits**: every length the peer declares is checked against [`Limits`] *before*
//!   anything is allocated or scanned, so hostile input produces a typed
//!   [`ProtocolError`] instead of a panic, a huge allocation or unbounded buffering.
//! * **Encoding**: [`encode`] for a whole [`Frame`], plus direct writers
//!   ([`write_simple`], [`write_error`], [`write_integer`], [`write_bulk`], [`write_null`],
//!   [`write_array_header`], …) that serialise replies without building a `Frame` first.
//!
//! # What this crate must not touch
//!
//! * **No command semantics**: it does not know what `SET` or `SELECT` mean, which
//!   arguments a command takes or what an error text should say. That belongs to the
//!   server's command modules and to the client's typed helpers.
//! * **No I/O policy**: it never reads from or writes to a socket, never sleeps, never
//!   spawns. Callers own their sockets, buffers, timeouts and connection lifetimes; this
//!   crate only turns bytes into frames and frames into bytes.
//!
//! # Decoding contract
//!
//! All decoders return `Ok(None)` when the buffer does not yet hold a complete frame; in
//! that case nothing is consumed and the caller should read more bytes and call again.
//! On success exactly one frame (or request) is split off the front of the buffer; its
//! payloads are zero-copy [`bytes::Bytes`] slices of the consumed region. On error the
//! stream must be considered unusable (the caller should report the error and close the
//! connection): RESP has no resynchronisation point. Errors are detected as early as the
//! offending bytes arrive (a bad header, an oversized declared length), not only once
//! the whole frame is buffered.
//!
//! The free functions [`decode`] and [`decode_request`] are stateless. A long-lived
//! [`Decoder`] additionally remembers how far it has already validated an incomplete
//! frame, so a frame that trickles in over many reads is scanned only once in total.

#![forbid(unsafe_code)]

mod decode;
mod encode;
mod error;
mod frame;
mod limits;
mod scan;

pub use decode::{decode, decode_request, Decoder};
pub use encode::{
    encode, write_array_header, write_bulk, write_bulk_header, write_command, write_command_parts,
    write_error, write_integer, write_null, write_null_array, write_simple, Part,
};
pub use error::ProtocolError;
pub use frame::Frame;
pub use limits::Limits;
