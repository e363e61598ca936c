//! Property tests: round-trips, robustness on arbitrary bytes, and split-point
//! independence of the incremental decoders.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use resp::{decode, decode_request, encode, write_command, Decoder, Frame, Limits, ProtocolError};

/// Text without CR/LF, as simple strings and errors must be.
fn line_text() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(
        any::<u8>().prop_filter("no CR/LF", |b| *b != b'\r' && *b != b'\n'),
        0..32,
    )
    .prop_map(Bytes::from)
}

fn arb_frame() -> impl Strategy<Value = Frame> {
    let leaf = prop_oneof![
        line_text().prop_map(Frame::Simple),
        line_text().prop_map(Frame::Error),
        any::<i64>().prop_map(Frame::Integer),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(|v| Frame::Bulk(v.into())),
        Just(Frame::Null),
        Just(Frame::NullArray),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        proptest::collection::vec(inner, 0..8).prop_map(Frame::Array)
    })
}

/// Small limits so that the limit paths are exercised by random input.
fn small_limits() -> Limits {
    Limits::default()
        .with_max_bulk_len(64)
        .with_max_array_len(16)
        .with_max_inline_len(48)
        .with_max_depth(4)
}

/// Decodes everything decodable from `input` at once: the frames in order, then either
/// the error that stopped decoding or the undecoded remainder.
fn decode_all<T>(
    input: &[u8],
    mut f: impl FnMut(&mut BytesMut) -> Result<Option<T>, ProtocolError>,
) -> (Vec<T>, Result<Vec<u8>, ProtocolError>) {
    let mut buf = BytesMut::from(input);
    let mut out = Vec::new();
    loop {
        match f(&mut buf) {
            Ok(Some(v)) => out.push(v),
            Ok(None) => return (out, Ok(buf.to_vec())),
            Err(e) => return (out, Err(e)),
        }
    }
}

/// Same, but feeding `input` in pieces cut at `cuts`, decoding after every piece.
fn decode_split<T>(
    input: &[u8],
    cuts: &[usize],
    mut f: impl FnMut(&mut BytesMut) -> Result<Option<T>, ProtocolError>,
) -> (Vec<T>, Result<Vec<u8>, ProtocolError>) {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    points.push(input.len());
    points.sort_unstable();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut prev = 0;
    for p in points {
        buf.extend_from_slice(&input[prev..p]);
        prev = p;
        loop {
            match f(&mut buf) {
                Ok(Some(v)) => out.push(v),
                Ok(None) => break,
                Err(e) => return (out, Err(e)),
            }
        }
    }
    (out, Ok(buf.to_vec()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn encode_decode_round_trip(frames in proptest::collection::vec(arb_frame(), 1..4)) {
        let mut buf = BytesMut::new();
        for f in &frames {
            encode(f, &mut buf);
        }
        let limits = Limits::default();
        for f in &frames {
            prop_assert_eq!(decode(&mut buf, &limits)?, Some(f.clone()));
        }
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn request_round_trip(args in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..10)) {
        let mut buf = BytesMut::new();
        write_command(&mut buf, &args);
        let got = decode_request(&mut buf, &Limits::default())?.expect("complete");
        let got: Vec<Vec<u8>> = got.iter().map(|b| b.to_vec()).collect();
        prop_assert_eq!(got, args);
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..256)) {
        let limits = small_limits();
        let _ = decode_all(&input, |b| decode(b, &limits));
        let _ = decode_all(&input, |b| decode_request(b, &limits));
    }

    #[test]
    fn frame_split_points_do_not_matter(
        frames in proptest::collection::vec(arb_frame(), 0..4),
        garbage in proptest::collection::vec(any::<u8>(), 0..24),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        // Valid frames followed by arbitrary bytes, so both success and error paths run.
        let mut input = BytesMut::new();
        for f in &frames {
            encode(f, &mut input);
        }
        input.extend_from_slice(&garbage);
        let limits = small_limits();
        let whole = decode_all(&input, |b| decode(b, &limits));
        let mut d = Decoder::new(limits.clone());
        let split_stateful = decode_split(&input, &cuts, |b| d.decode(b));
        let split_stateless = decode_split(&input, &cuts, |b| decode(b, &limits));
        prop_assert_eq!(&split_stateful, &whole);
        prop_assert_eq!(&split_stateless, &whole);
    }

    #[test]
    fn request_split_points_do_not_matter(
        reqs in proptest::collection::vec(proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 0..5), 0..4),
        inline in proptest::collection::vec(prop_oneof![Just(b' '), Just(b'a'), Just(b'\r'), Just(b'\n'), any::<u8>()], 0..40),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut input = BytesMut::new();
        for r in &reqs {
            write_command(&mut input, r);
        }
        input.extend_from_slice(&inline);
        let limits = small_limits();
        let whole = decode_all(&input, |b| decode_request(b, &limits));
        let mut d = Decoder::new(limits.clone());
        let split = decode_split(&input, &cuts, |b| d.decode_request(b));
        prop_assert_eq!(&split, &whole);
    }

    #[test]
    fn arbitrary_bytes_split_points_do_not_matter(
        input in proptest::collection::vec(prop_oneof![
            Just(b'*'), Just(b'$'), Just(b':'), Just(b'+'), Just(b'-'),
            Just(b'\r'), Just(b'\n'), Just(b'1'), Just(b'0'), any::<u8>()
        ], 0..128),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let limits = small_limits();
        let whole = decode_all(&input, |b| decode(b, &limits));
        let mut d = Decoder::new(limits.clone());
        prop_assert_eq!(&decode_split(&input, &cuts, |b| d.decode(b)), &whole);
        let whole_req = decode_all(&input, |b| decode_request(b, &limits));
        let mut d = Decoder::new(limits.clone());
        prop_assert_eq!(&decode_split(&input, &cuts, |b| d.decode_request(b)), &whole_req);
    }
}
