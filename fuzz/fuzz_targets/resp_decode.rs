//! Feeds arbitrary bytes to both RESP decoders with small limits.
//!
//! Checks, beyond "never panics": a decoder only ever consumes what it reports, decoded
//! frames re-encode to bytes that decode to the same frame, and feeding the input in two
//! pieces (cut where the first input byte says) gives the same results as feeding it
//! whole.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use resp::{decode, decode_request, encode, Decoder, Frame, Limits, ProtocolError};

fn limits() -> Limits {
    Limits::default()
        .with_max_bulk_len(1024)
        .with_max_array_len(64)
        .with_max_inline_len(256)
        .with_max_depth(6)
}

type Outcome<T> = (Vec<T>, Result<Vec<u8>, ProtocolError>);

fn run<T>(
    pieces: &[&[u8]],
    mut f: impl FnMut(&mut BytesMut) -> Result<Option<T>, ProtocolError>,
) -> Outcome<T> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            let before = buf.len();
            match f(&mut buf) {
                Ok(Some(v)) => {
                    assert!(buf.len() < before, "a decoded item must consume bytes");
                    out.push(v);
                }
                Ok(None) => {
                    assert_eq!(buf.len(), before, "incomplete input must not be consumed");
                    break;
                }
                Err(e) => return (out, Err(e)),
            }
        }
    }
    (out, Ok(buf.to_vec()))
}

fuzz_target!(|data: &[u8]| {
    let limits = limits();
    let cut = data
        .first()
        .map_or(0, |&b| usize::from(b) % (data.len() + 1));
    let (a, b) = data.split_at(cut);

    let whole: Outcome<Frame> = run(&[data], |buf| decode(buf, &limits));
    let mut dec = Decoder::new(limits.clone());
    let split = run(&[a, b], |buf| dec.decode(buf));
    assert_eq!(whole, split);

    for frame in &whole.0 {
        let mut wire = BytesMut::new();
        encode(frame, &mut wire);
        let again = decode(&mut wire, &Limits::default()).expect("re-encoded frame decodes");
        assert_eq!(again.as_ref(), Some(frame));
        assert!(wire.is_empty());
    }

    let whole_req = run(&[data], |buf| decode_request(buf, &limits));
    let mut dec = Decoder::new(limits.clone());
    let split_req = run(&[a, b], |buf| dec.decode_request(buf));
    assert_eq!(whole_req, split_req);
});
