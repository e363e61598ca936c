//! GET: the current payload of a key.

use super::args::{exact, read_key};
use super::{CmdResult, Ctx, Flow};
use bytes::{BufMut, Bytes, BytesMut};
use zdb_engine::Append;

/// `GET key` → bulk payload, `$-1` if absent or deleted.
pub fn get(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    exact(args, 2)?;
    let key = read_key(&args[1])?;
    let out = &mut *ctx.out;
    // The payload is checksummed as it is copied into the reply (one pass over it).
    if ctx.sess.ns.get_append(key, &mut Bulk(out))? {
        out.put_slice(b"\r\n");
    } else {
        resp::write_null(out);
    }
    Ok(Flow::Continue)
}

/// The reply buffer as the engine's copy target: the payload lands in it as a bulk string
/// (its header written once the length is known; cut back with it on a bad checksum).
struct Bulk<'a>(&'a mut BytesMut);

impl Append for Bulk<'_> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn begin(&mut self, len: usize) {
        self.0.reserve(len + 24);
        resp::write_bulk_header(self.0, len);
    }
    fn put(&mut self, piece: &[u8]) {
        self.0.put_slice(piece);
    }
    fn tail(&self, from: usize) -> &[u8] {
        &self.0[from..]
    }
    fn truncate(&mut self, len: usize) {
        self.0.truncate(len);
    }
}
