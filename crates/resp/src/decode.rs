//! Incremental decoding of frames and requests out of a read buffer.
//!
//! Decoding is two-phase: [`crate::scan`] validates that one complete frame is buffered
//! and measures it (no allocation, resumable), then the frame's bytes are split off the
//! buffer once, frozen, and the result is built from zero-copy slices of them.

use bytes::{Bytes, BytesMut};

use crate::scan::{self, Len, Line, Mode, Scan, Scanner};
use crate::{Frame, Limits, ProtocolError};

/// Decodes one frame from the front of `buf`.
///
/// Returns `Ok(None)` without consuming anything when `buf` does not yet hold a complete
/// frame. Otherwise consumes exactly that frame's bytes. Stateless: for a long-lived
/// connection prefer [`Decoder::decode`], which does not re-validate a partial frame on
/// every call.
pub fn decode(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Frame>, ProtocolError> {
    decode_frame_with(&mut Scanner::default(), buf, limits)
}

/// Decodes one client request from the front of `buf`, as the server sees it.
///
/// Accepts either a RESP array of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) or an
/// inline command line (`GET k\r\n`, arguments separated by spaces or tabs; no quoting),
/// and returns the argument vector. The arguments are zero-copy slices of the consumed
/// bytes. An empty array (`*0`, `*-1`) or an empty inline line yields an empty vector,
/// which a server should simply ignore.
///
/// Returns `Ok(None)` without consuming anything when the request is not complete yet.
pub fn decode_request(
    buf: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    decode_request_with(&mut Scanner::default(), buf, limits)
}

/// A stateful decoder for one connection's read buffer.
///
/// Same results as [`decode`] / [`decode_request`], but when a frame is incomplete the
/// decoder remembers how much of it was already validated, so a frame arriving in many
/// small reads is validated once in total (linear time even for a maximal array of tiny
/// arguments trickling in byte by byte).
///
/// Between a call that returned `Ok(None)` and the next call, the caller must only
/// *append* to the buffer (the normal read loop). If it discards or replaces the buffer's
/// contents, it must call [`Decoder::reset`]; a decoder used on a foreign buffer may
/// return a protocol error but never panics.
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    limits: Limits,
    scanner: Scanner,
}

impl Decoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Decoder {
            limits,
            scanner: Scanner::default(),
        }
    }

    /// The limits this decoder enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Decodes one frame; see [`decode`].
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        decode_frame_with(&mut self.scanner, buf, &self.limits)
    }

    /// Decodes one request; see [`decode_request`].
    pub fn decode_request(
        &mut self,
        buf: &mut BytesMut,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        decode_request_with(&mut self.scanner, buf, &self.limits)
    }

    /// Forgets partial progress; needed only if the buffer was modified other than by
    /// appending since the last call.
    pub fn reset(&mut self) {
        self.scanner.reset();
    }
}

fn decode_frame_with(
    scanner: &mut Scanner,
    buf: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<Frame>, ProtocolError> {
    match scanner.scan(buf, limits, Mode::Frame)? {
        Scan::Incomplete => Ok(None),
        Scan::Complete(n) => {
            let data = buf.split_to(n).freeze();
            let mut pos = 0;
            let frame = build_frame(&data, &mut pos)?;
            Ok(Some(frame))
        }
        // Inline commands only exist in request mode.
        Scan::Inline(_) => Err(ProtocolError::InvalidFrameType(
            buf.first().copied().unwrap_or(0),
        )),
    }
}

fn decode_request_with(
    scanner: &mut Scanner,
    buf: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    match scanner.scan(buf, limits, Mode::Request)? {
        Scan::Incomplete => Ok(None),
        Scan::Complete(n) => {
            let data = buf.split_to(n).freeze();
            build_request(&data).map(Some)
        }
        Scan::Inline(n) => {
            let data = buf.split_to(n).freeze();
            Ok(Some(split_inline(&data)))
        }
    }
}

/// Error for a frame that the scanner accepted but the builder cannot read; only
/// reachable if a [`Decoder`]'s buffer was modified behind its back.
fn inconsistent() -> ProtocolError {
    ProtocolError::MissingCrlf
}

/// Builds the frame starting at `*pos` in validated bytes, advancing `*pos` past it.
fn build_frame(data: &Bytes, pos: &mut usize) -> Result<Frame, ProtocolError> {
    let start = *pos;
    let ty = *data.get(start).ok_or_else(inconsistent)?;
    match ty {
        b'+' | b'-' | b':' => {
            let cr = match scan::find_crlf(data, start + 1, start + 1, usize::MAX)? {
                Line::Found(cr) => cr,
                Line::Incomplete(_) => return Err(inconsistent()),
            };
            *pos = cr + 2;
            let text = data.slice(start + 1..cr);
            Ok(match ty {
                b'+' => Frame::Simple(text),
                b'-' => Frame::Error(text),
                _ => Frame::Integer(scan::parse_integer(&text)?),
            })
        }
        b'$' => {
            let (len, body) = scan::parse_len(data, start + 1, ProtocolError::InvalidBulkLength)?
                .ok_or_else(inconsistent)?;
            match len {
                Len::Null => {
                    *pos = body;
                    Ok(Frame::Null)
                }
                Len::Some(n) => {
                    let end = usize::try_from(n)
                        .ok()
                        .and_then(|n| body.checked_add(n))
                        .filter(|&end| end + 2 <= data.len())
                        .ok_or_else(inconsistent)?;
                    *pos = end + 2;
                    Ok(Frame::Bulk(data.slice(body..end)))
                }
            }
        }
        b'*' => {
            let (len, body) = scan::parse_len(data, start + 1, ProtocolError::InvalidArrayLength)?
                .ok_or_else(inconsistent)?;
            *pos = body;
            match len {
                Len::Null => Ok(Frame::NullArray),
                Len::Some(n) => {
                    // The scanner checked `n` against the limit and that all `n`
                    // elements (at least 3 bytes each) are buffered; still cap the
                    // reservation by what the remaining bytes could possibly hold.
                    let n = usize::try_from(n).map_err(|_| inconsistent())?;
                    let mut items = Vec::with_capacity(n.min((data.len() - body) / 3));
                    for _ in 0..n {
                        items.push(build_frame(data, pos)?);
                    }
                    Ok(Frame::Array(items))
                }
            }
        }
        other => Err(ProtocolError::InvalidFrameType(other)),
    }
}

/// Builds the argument vector of a validated request array.
fn build_request(data: &Bytes) -> Result<Vec<Bytes>, ProtocolError> {
    let (len, mut pos) =
        scan::parse_len(data, 1, ProtocolError::InvalidArrayLength)?.ok_or_else(inconsistent)?;
    let n = match len {
        Len::Null => return Ok(Vec::new()),
        Len::Some(n) => usize::try_from(n).map_err(|_| inconsistent())?,
    };
    let mut args = Vec::with_capacity(n.min((data.len() - pos) / 4));
    for _ in 0..n {
        if data.get(pos) != Some(&b'$') {
            return Err(ProtocolError::ExpectedBulk);
        }
        let (len, body) = scan::parse_len(data, pos + 1, ProtocolError::InvalidBulkLength)?
            .ok_or_else(inconsistent)?;
        let Len::Some(len) = len else {
            return Err(ProtocolError::ExpectedBulk);
        };
        let end = usize::try_from(len)
            .ok()
            .and_then(|n| body.checked_add(n))
            .filter(|&end| end + 2 <= data.len())
            .ok_or_else(inconsistent)?;
        args.push(data.slice(body..end));
        pos = end + 2;
    }
    Ok(args)
}

/// Splits a complete inline line (ending in `\n`, maybe `\r\n`) on spaces and tabs.
fn split_inline(line: &Bytes) -> Vec<Bytes> {
    let mut end = line.len();
    if line[..end].ends_with(b"\n") {
        end -= 1;
    }
    if line[..end].ends_with(b"\r") {
        end -= 1;
    }
    let mut args = Vec::new();
    let mut i = 0;
    while i < end {
        if matches!(line[i], b' ' | b'\t') {
            i += 1;
            continue;
        }
        let start = i;
        while i < end && !matches!(line[i], b' ' | b'\t') {
            i += 1;
        }
        args.push(line.slice(start..i));
    }
    args
}

#[cfg(test)]
mod tests;
