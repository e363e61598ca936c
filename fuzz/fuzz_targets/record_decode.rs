//! Feeds arbitrary bytes to the zdb on-disk decoders (data record, index entry, segment
//! header). Beyond "never panics": anything accepted must re-encode to exactly the bytes it was
//! decoded from, so recovery can only ever load what the writer itself produced.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zdb_engine::format::{self, FileHeader, FileKind};

fuzz_target!(|data: &[u8]| {
    if let Ok((h, key, payload)) = format::decode_record(data) {
        let mut again = Vec::new();
        format::encode_record(&mut again, &h, key, payload);
        assert_eq!(&again[..], &data[..h.record_len()]);
    }
    if let Ok((e, key, n)) = format::decode_entry(data) {
        let mut again = Vec::new();
        format::encode_entry(&mut again, &e, key);
        assert_eq!(&again[..], &data[..n]);
    }
    for kind in [FileKind::Data, FileKind::Index] {
        if let Some(h) = FileHeader::decode(data, kind) {
            assert_eq!(&h.encode()[..], &data[..format::FILE_HEADER_LEN]);
        }
    }
});
