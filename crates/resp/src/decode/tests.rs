use super::*;

fn buf(bytes: &[u8]) -> BytesMut {
    BytesMut::from(bytes)
}

fn frame(bytes: &[u8]) -> Result<Option<Frame>, ProtocolError> {
    decode(&mut buf(bytes), &Limits::default())
}

fn request(bytes: &[u8]) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    decode_request(&mut buf(bytes), &Limits::default())
}

fn args(list: &[&[u8]]) -> Vec<Bytes> {
    list.iter().map(|a| Bytes::copy_from_slice(a)).collect()
}

#[test]
fn decodes_each_frame_type() {
    assert_eq!(frame(b"+OK\r\n"), Ok(Some(Frame::simple("OK"))));
    assert_eq!(
        frame(b"-No more data\r\n"),
        Ok(Some(Frame::error("No more data")))
    );
    assert_eq!(frame(b":-12\r\n"), Ok(Some(Frame::Integer(-12))));
    assert_eq!(
        frame(b"$3\r\na\0b\r\n"),
        Ok(Some(Frame::bulk(&b"a\0b"[..])))
    );
    assert_eq!(frame(b"$0\r\n\r\n"), Ok(Some(Frame::bulk(Bytes::new()))));
    assert_eq!(frame(b"$-1\r\n"), Ok(Some(Frame::Null)));
    assert_eq!(frame(b"*-1\r\n"), Ok(Some(Frame::NullArray)));
    assert_eq!(frame(b"*0\r\n"), Ok(Some(Frame::Array(vec![]))));
    assert_eq!(frame(b"+\r\n"), Ok(Some(Frame::simple(""))));
}

#[test]
fn decodes_scan_shaped_reply() {
    let wire = b"*2\r\n$4\r\n\x87\0\0\0\r\n*2\r\n*3\r\n$1\r\na\r\n:16\r\n:1535361488\r\n*3\r\n$1\r\nb\r\n:6\r\n:1535361485\r\n";
    let expected = Frame::Array(vec![
        Frame::bulk(&b"\x87\0\0\0"[..]),
        Frame::Array(vec![
            Frame::Array(vec![
                Frame::bulk(&b"a"[..]),
                Frame::Integer(16),
                Frame::Integer(1_535_361_488),
            ]),
            Frame::Array(vec![
                Frame::bulk(&b"b"[..]),
                Frame::Integer(6),
                Frame::Integer(1_535_361_485),
            ]),
        ]),
    ]);
    assert_eq!(frame(wire), Ok(Some(expected)));
}

#[test]
fn consumes_exactly_one_frame() {
    let mut b = buf(b"+A\r\n:1\r\n$1\r\nx\r\n+partial");
    let l = Limits::default();
    assert_eq!(decode(&mut b, &l), Ok(Some(Frame::simple("A"))));
    assert_eq!(decode(&mut b, &l), Ok(Some(Frame::Integer(1))));
    assert_eq!(decode(&mut b, &l), Ok(Some(Frame::bulk(&b"x"[..]))));
    assert_eq!(decode(&mut b, &l), Ok(None));
    assert_eq!(&b[..], b"+partial");
}

#[test]
fn incomplete_input_is_not_consumed() {
    for partial in [
        &b""[..],
        b"+OK",
        b"+OK\r",
        b"$5\r\nhel",
        b"$5\r\nhello",
        b"$5\r\nhello\r",
        b"*2\r\n$1\r\na\r\n",
        b"*2\r\n*1\r\n",
        b":12",
        b"$",
        b"*",
    ] {
        let mut b = buf(partial);
        assert_eq!(decode(&mut b, &Limits::default()), Ok(None), "{partial:?}");
        assert_eq!(&b[..], partial);
    }
}

#[test]
fn decoded_payload_is_zero_copy() {
    let mut b = buf(b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n");
    let base = b.as_ptr() as usize;
    let args = decode_request(&mut b, &Limits::default()).unwrap().unwrap();
    // The arguments point into the original allocation.
    assert_eq!(args[0].as_ptr() as usize, base + 8);
    assert_eq!(args[1].as_ptr() as usize, base + 17);
}

#[test]
fn request_array_of_bulks() {
    assert_eq!(
        request(b"*3\r\n$3\r\nSET\r\n$0\r\n\r\n$5\r\nhello\r\n"),
        Ok(Some(args(&[b"SET", b"", b"hello"])))
    );
    assert_eq!(request(b"*0\r\n"), Ok(Some(vec![])));
    assert_eq!(request(b"*-1\r\n"), Ok(Some(vec![])));
}

#[test]
fn request_inline() {
    assert_eq!(request(b"PING\r\n"), Ok(Some(args(&[b"PING"]))));
    assert_eq!(request(b"PING\n"), Ok(Some(args(&[b"PING"]))));
    assert_eq!(
        request(b"  SET\tk  v \r\n"),
        Ok(Some(args(&[b"SET", b"k", b"v"])))
    );
    assert_eq!(request(b"\r\n"), Ok(Some(vec![])));
    assert_eq!(request(b"PING"), Ok(None));
}

#[test]
fn pipelined_requests_decode_one_by_one() {
    let mut b = buf(b"PING\r\n*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPI");
    let mut d = Decoder::default();
    assert_eq!(d.decode_request(&mut b), Ok(Some(args(&[b"PING"]))));
    assert_eq!(d.decode_request(&mut b), Ok(Some(args(&[b"PING"]))));
    assert_eq!(d.decode_request(&mut b), Ok(Some(args(&[b"GET", b"k"]))));
    assert_eq!(d.decode_request(&mut b), Ok(None));
    b.extend_from_slice(b"NG\r\n");
    assert_eq!(d.decode_request(&mut b), Ok(Some(args(&[b"PING"]))));
    assert!(b.is_empty());
}

#[test]
fn hostile_bulk_lengths() {
    assert_eq!(
        frame(b"$1099511627776\r\n"),
        Err(ProtocolError::BulkTooLarge {
            len: 1 << 40,
            limit: 8 * 1024 * 1024
        })
    );
    assert_eq!(
        ProtocolError::BulkTooLarge {
            len: 1 << 40,
            limit: 8388608
        }
        .to_string(),
        "bulk length 1099511627776 exceeds limit 8388608"
    );
    // The limit is enforced as soon as the header is in, without waiting for data.
    assert!(matches!(
        request(b"*1\r\n$8388609\r\n"),
        Err(ProtocolError::BulkTooLarge { .. })
    ));
    for bad in [
        &b"$-2\r\n"[..],
        b"$-100\r\n",
        b"$abc\r\n",
        b"$1a\r\n",
        b"$\r\n",
        b"$ 1\r\n",
        b"$99999999999999999999999\r\n",
    ] {
        assert_eq!(frame(bad), Err(ProtocolError::InvalidBulkLength), "{bad:?}");
    }
    assert_eq!(frame(b"$1\rX"), Err(ProtocolError::MissingCrlf));
}

#[test]
fn hostile_array_lengths() {
    assert_eq!(
        request(b"*1000000\r\n"),
        Err(ProtocolError::TooManyElements {
            len: 1_000_000,
            limit: 65_536
        })
    );
    assert!(ProtocolError::TooManyElements { len: 1, limit: 0 }
        .to_string()
        .starts_with("too many arguments"));
    for bad in [&b"*-2\r\n"[..], b"*x\r\n", b"*\r\n", b"*1 \r\n"] {
        assert_eq!(
            frame(bad),
            Err(ProtocolError::InvalidArrayLength),
            "{bad:?}"
        );
    }
}

#[test]
fn missing_crlf_after_payload() {
    assert_eq!(frame(b"$3\r\nabcXY"), Err(ProtocolError::MissingCrlf));
    assert_eq!(frame(b"$3\r\nabc\rX"), Err(ProtocolError::MissingCrlf));
    assert_eq!(frame(b"+OK\rX"), Err(ProtocolError::MissingCrlf));
    // A bare LF inside a line cannot be re-encoded faithfully: refuse it.
    assert_eq!(frame(b"+O\nK\r\n"), Err(ProtocolError::MissingCrlf));
    assert_eq!(frame(b"-ERR\n"), Err(ProtocolError::MissingCrlf));
    assert_eq!(
        request(b"*1\r\n$4\r\nPINGPONG"),
        Err(ProtocolError::MissingCrlf)
    );
}

#[test]
fn invalid_integers_and_types() {
    assert_eq!(frame(b":abc\r\n"), Err(ProtocolError::InvalidInteger));
    assert_eq!(frame(b":\r\n"), Err(ProtocolError::InvalidInteger));
    assert_eq!(
        frame(b":99999999999999999999\r\n"),
        Err(ProtocolError::InvalidInteger)
    );
    assert_eq!(frame(b"?\r\n"), Err(ProtocolError::InvalidFrameType(b'?')));
    assert_eq!(
        frame(b"\x00\xff\xfe"),
        Err(ProtocolError::InvalidFrameType(0))
    );
    assert_eq!(
        frame(b"PING\r\n"),
        Err(ProtocolError::InvalidFrameType(b'P'))
    );
}

#[test]
fn requests_only_accept_bulk_strings() {
    for bad in [
        &b"*1\r\n:1\r\n"[..],
        b"*1\r\n+OK\r\n",
        b"*1\r\n*1\r\n$1\r\na\r\n",
        b"*1\r\n$-1\r\n",
        b"*2\r\n$1\r\na\r\n\x00",
    ] {
        assert_eq!(request(bad), Err(ProtocolError::ExpectedBulk), "{bad:?}");
    }
}

#[test]
fn line_limits() {
    let limits = Limits::default().with_max_inline_len(8);
    // Inline command: refused once more than the limit is buffered without a newline.
    let mut b = buf(b"123456789");
    assert_eq!(
        decode_request(&mut b, &limits),
        Err(ProtocolError::InlineTooLong { limit: 8 })
    );
    let mut b = buf(b"12345678\r\n");
    assert!(matches!(
        decode_request(&mut b, &limits),
        Err(ProtocolError::InlineTooLong { .. })
    ));
    let mut b = buf(b"1234567\r\n");
    assert_eq!(
        decode_request(&mut b, &limits),
        Ok(Some(args(&[b"1234567"])))
    );
    // Simple-string lines share the same limit.
    let mut b = buf(b"+123456789");
    assert_eq!(
        decode(&mut b, &limits),
        Err(ProtocolError::LineTooLong { limit: 8 })
    );
    let mut b = buf(b"+12345678\r\n");
    assert_eq!(decode(&mut b, &limits), Ok(Some(Frame::simple("12345678"))));
}

#[test]
fn depth_limit() {
    let limits = Limits::default().with_max_depth(2);
    let mut ok = buf(b"*1\r\n*1\r\n:1\r\n");
    assert!(decode(&mut ok, &limits).unwrap().is_some());
    let mut deep = buf(b"*1\r\n*1\r\n*1\r\n:1\r\n");
    assert_eq!(
        decode(&mut deep, &limits),
        Err(ProtocolError::TooDeep { limit: 2 })
    );
    // A huge configured depth is still capped, so nesting cannot exhaust the stack.
    let limits = Limits::default().with_max_depth(usize::MAX);
    let mut wire = b"*1\r\n".repeat(100_000);
    wire.extend_from_slice(b":1\r\n");
    assert_eq!(
        decode(&mut buf(&wire), &limits),
        Err(ProtocolError::TooDeep {
            limit: crate::scan::HARD_MAX_DEPTH
        })
    );
}

#[test]
fn big_bulk_in_small_pieces_is_not_rescanned() {
    // 64 MiB of payload would take long to rescan quadratically; the header check makes
    // each partial call O(1). Use a limit large enough for the test value.
    const LEN: usize = 64 * 1024 * 1024;
    const CHUNK: usize = 64 * 1024;
    let limits = Limits::default().with_max_bulk_len(LEN);
    let mut d = Decoder::new(limits);
    let mut b = BytesMut::with_capacity(LEN + 64);
    b.extend_from_slice(format!("*2\r\n$3\r\nSET\r\n${LEN}\r\n").as_bytes());
    let chunk = vec![b'v'; CHUNK];
    let start = std::time::Instant::now();
    for _ in 0..LEN / CHUNK {
        assert_eq!(d.decode_request(&mut b), Ok(None));
        b.extend_from_slice(&chunk);
    }
    assert_eq!(d.decode_request(&mut b), Ok(None));
    b.extend_from_slice(b"\r\n");
    let got = d.decode_request(&mut b).unwrap().unwrap();
    assert_eq!(got[1].len(), LEN);
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn many_small_args_trickling_is_linear() {
    // 65 536 one-byte arguments delivered 7 bytes at a time: a decoder that re-validated
    // from the start would do ~65k * 65k element checks.
    let n = 65_536;
    let mut wire = format!("*{n}\r\n").into_bytes();
    for _ in 0..n {
        wire.extend_from_slice(b"$1\r\nx\r\n");
    }
    let mut d = Decoder::default();
    let mut b = BytesMut::new();
    let start = std::time::Instant::now();
    let mut out = None;
    for piece in wire.chunks(7) {
        b.extend_from_slice(piece);
        if let Some(args) = d.decode_request(&mut b).unwrap() {
            out = Some(args);
        }
    }
    assert_eq!(out.map(|a| a.len()), Some(n));
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn decoder_reset_after_foreign_buffer() {
    let mut d = Decoder::default();
    let mut b = buf(b"*2\r\n$1\r\na\r\n");
    assert_eq!(d.decode(&mut b), Ok(None));
    d.reset();
    let mut other = buf(b":5\r\n");
    assert_eq!(d.decode(&mut other), Ok(Some(Frame::Integer(5))));
}

#[test]
fn decoder_on_replaced_buffer_does_not_panic() {
    let mut d = Decoder::default();
    let mut b = buf(b"*3\r\n$1\r\na\r\n$1\r\nb\r\n");
    assert_eq!(d.decode(&mut b), Ok(None));
    // Same length or longer, different bytes, no reset: wrong but must not panic.
    let mut other = buf(b"$1\r\nabcdefghijklmnopqrstuvwxyz");
    let _ = d.decode(&mut other);
}
