//! Serialisation of frames, and direct writers for hot reply paths.
//!
//! The `write_*` helpers append to a [`BytesMut`] without building a [`Frame`], so a
//! server can stream a reply (e.g. an array header, then its elements) straight into its
//! write buffer.

use bytes::{BufMut, BytesMut};

use crate::Frame;

/// Appends the RESP2 encoding of `frame` to `out`.
///
/// Simple-string and error text containing `\r` or `\n` (which RESP cannot carry) is
/// written with those bytes replaced by spaces, so the output is always well-framed.
pub fn encode(frame: &Frame, out: &mut BytesMut) {
    match frame {
        Frame::Simple(s) => write_line(out, b'+', s),
        Frame::Error(s) => write_line(out, b'-', s),
        Frame::Integer(i) => write_integer(out, *i),
        Frame::Bulk(b) => write_bulk(out, b),
        Frame::Null => write_null(out),
        Frame::NullArray => write_null_array(out),
        Frame::Array(items) => {
            write_array_header(out, items.len());
            for item in items {
                encode(item, out);
            }
        }
    }
}

/// Appends a simple string, `+text\r\n` (CR/LF in `text` become spaces).
pub fn write_simple(out: &mut BytesMut, text: &str) {
    write_line(out, b'+', text.as_bytes());
}

/// Appends an error, `-text\r\n` (CR/LF in `text` become spaces).
pub fn write_error(out: &mut BytesMut, text: &str) {
    write_line(out, b'-', text.as_bytes());
}

/// Appends an integer, `:n\r\n`.
pub fn write_integer(out: &mut BytesMut, n: i64) {
    let mut fmt = itoa::Buffer::new();
    let digits = fmt.format(n).as_bytes();
    out.reserve(digits.len() + 3);
    out.put_u8(b':');
    out.put_slice(digits);
    out.put_slice(b"\r\n");
}

/// Appends a bulk string, `$len\r\ndata\r\n`.
pub fn write_bulk(out: &mut BytesMut, data: &[u8]) {
    out.reserve(data.len() + 24);
    write_bulk_header(out, data.len());
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

/// Appends only a bulk header, `$len\r\n`. The caller must then write exactly `len`
/// payload bytes followed by `\r\n` (useful to send a large payload without copying it
/// into the buffer, e.g. with a vectored write).
pub fn write_bulk_header(out: &mut BytesMut, len: usize) {
    write_len(out, b'$', len);
}

/// Appends the null bulk string, `$-1\r\n` (zdb's "nil").
pub fn write_null(out: &mut BytesMut) {
    out.put_slice(b"$-1\r\n");
}

/// Appends the null array, `*-1\r\n`.
pub fn write_null_array(out: &mut BytesMut) {
    out.put_slice(b"*-1\r\n");
}

/// Appends an array header, `*n\r\n`; the caller then writes `n` elements.
pub fn write_array_header(out: &mut BytesMut, n: usize) {
    write_len(out, b'*', n);
}

/// Appends a request as a client sends it: an array of bulk strings.
pub fn write_command<A: AsRef<[u8]>>(out: &mut BytesMut, args: &[A]) {
    let payload: usize = args.iter().map(|a| a.as_ref().len() + 24).sum();
    out.reserve(payload + 16);
    write_array_header(out, args.len());
    for arg in args {
        write_bulk(out, arg.as_ref());
    }
}

/// A piece of an encoded request: bytes of the encoder's buffer, or an argument the caller
/// still holds (sent from where it is, not copied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part<'a> {
    /// `out[range]` of the buffer given to [`write_command_parts`].
    Buffered(std::ops::Range<usize>),
    /// An argument, borrowed.
    Borrowed(&'a [u8]),
}

/// [`write_command`] without copying arguments of `by_ref` bytes or more: appends the
/// framing (and the small arguments) to `out` and the request's pieces, in wire order, to
/// `parts`. Sending the parts in order sends exactly what [`write_command`] would have
/// written. Several requests may be appended to the same `out` and `parts`.
pub fn write_command_parts<'a, A: AsRef<[u8]>>(
    out: &mut BytesMut,
    args: &'a [A],
    by_ref: usize,
    parts: &mut Vec<Part<'a>>,
) {
    let mut start = out.len();
    write_array_header(out, args.len());
    for arg in args {
        let arg = arg.as_ref();
        if arg.len() < by_ref {
            write_bulk(out, arg);
            continue;
        }
        write_bulk_header(out, arg.len());
        parts.push(Part::Buffered(start..out.len()));
        parts.push(Part::Borrowed(arg));
        start = out.len();
        out.put_slice(b"\r\n");
    }
    if out.len() > start {
        parts.push(Part::Buffered(start..out.len()));
    }
}

fn write_len(out: &mut BytesMut, prefix: u8, len: usize) {
    let mut fmt = itoa::Buffer::new();
    let digits = fmt.format(len).as_bytes();
    out.reserve(digits.len() + 3);
    out.put_u8(prefix);
    out.put_slice(digits);
    out.put_slice(b"\r\n");
}

fn write_line(out: &mut BytesMut, prefix: u8, text: &[u8]) {
    out.reserve(text.len() + 3);
    out.put_u8(prefix);
    if text.iter().any(|&b| b == b'\r' || b == b'\n') {
        out.extend(
            text.iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
    } else {
        out.put_slice(text);
    }
    out.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn enc(f: &Frame) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode(f, &mut out);
        out.to_vec()
    }

    #[test]
    fn encodes_every_variant() {
        assert_eq!(enc(&Frame::simple("OK")), b"+OK\r\n");
        assert_eq!(enc(&Frame::error("ERR bad")), b"-ERR bad\r\n");
        assert_eq!(enc(&Frame::Integer(-7)), b":-7\r\n");
        assert_eq!(enc(&Frame::Integer(i64::MIN)), b":-9223372036854775808\r\n");
        assert_eq!(
            enc(&Frame::bulk(Bytes::from_static(b"a\r\nb"))),
            b"$4\r\na\r\nb\r\n"
        );
        assert_eq!(enc(&Frame::bulk(Bytes::new())), b"$0\r\n\r\n");
        assert_eq!(enc(&Frame::Null), b"$-1\r\n");
        assert_eq!(enc(&Frame::NullArray), b"*-1\r\n");
        assert_eq!(enc(&Frame::Array(vec![])), b"*0\r\n");
        assert_eq!(
            enc(&Frame::Array(vec![
                Frame::Integer(1),
                Frame::Array(vec![Frame::Null])
            ])),
            b"*2\r\n:1\r\n*1\r\n$-1\r\n"
        );
    }

    #[test]
    fn line_text_is_sanitised() {
        assert_eq!(enc(&Frame::error("bad\r\nthing")), b"-bad  thing\r\n");
        let mut out = BytesMut::new();
        write_simple(&mut out, "a\nb");
        assert_eq!(&out[..], b"+a b\r\n");
    }

    #[test]
    fn direct_writers_match_encode() {
        let mut out = BytesMut::new();
        write_array_header(&mut out, 3);
        write_bulk(&mut out, b"key");
        write_integer(&mut out, 16);
        write_null(&mut out);
        assert_eq!(
            &out[..],
            &enc(&Frame::Array(vec![
                Frame::bulk(&b"key"[..]),
                Frame::Integer(16),
                Frame::Null
            ]))[..]
        );
        let mut out = BytesMut::new();
        write_error(&mut out, "No more data");
        write_null_array(&mut out);
        assert_eq!(&out[..], b"-No more data\r\n*-1\r\n");
    }

    #[test]
    fn command_is_array_of_bulks() {
        let mut out = BytesMut::new();
        write_command(&mut out, &[&b"SET"[..], b"k", b""]);
        assert_eq!(&out[..], b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
    }

    proptest::proptest! {
        #[test]
        fn parts_send_what_write_command_writes(
            requests in proptest::collection::vec(
                proptest::collection::vec(proptest::collection::vec(0u8..=255, 0..64), 0..5),
                1..4,
            ),
            by_ref in 0usize..40,
        ) {
            let mut whole = BytesMut::new();
            let mut out = BytesMut::new();
            let mut parts = Vec::new();
            for args in &requests {
                write_command(&mut whole, args);
                write_command_parts(&mut out, args, by_ref, &mut parts);
            }
            let mut sent = Vec::new();
            for p in &parts {
                match p {
                    Part::Buffered(r) => sent.extend_from_slice(&out[r.clone()]),
                    Part::Borrowed(b) => {
                        proptest::prop_assert!(b.len() >= by_ref);
                        sent.extend_from_slice(b);
                    }
                }
            }
            proptest::prop_assert_eq!(&sent[..], &whole[..]);
        }
    }
}
