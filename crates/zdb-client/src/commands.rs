//! Typed helpers: one method per 0-db command, mapping its reply shape to Rust types.
//!
//! Read-only commands are marked idempotent and retried once on a fresh connection if a
//! reused connection turns out to be dead; commands that change state are not.

use bytes::Bytes;

use crate::reply::{self, HistoryEntry, NsInfo, ScanEntry};
use crate::{Client, ClientError};

/// Server error text meaning a scan reached the end.
const NO_MORE_DATA: &str = "No more data";
/// Server error text meaning a history walk reached the oldest version.
const NO_MORE_HISTORY: &str = "No more history";

/// Maps a specific server error text to `Ok(None)`.
fn none_on<T>(result: Result<T, ClientError>, text: &str) -> Result<Option<T>, ClientError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(ClientError::Server(msg)) if msg == text => Ok(None),
        Err(e) => Err(e),
    }
}

impl Client {
    /// `PING` → `+PONG`.
    pub async fn ping(&self) -> Result<(), ClientError> {
        let frame = self.exec(&[&b"PING"[..]], true).await?;
        reply::ok("PING", frame)
    }

    /// `SET key value`: returns the key, or `None` when the server replied nil because
    /// the stored value is already identical (nothing written).
    pub async fn set(&self, key: &[u8], value: &[u8]) -> Result<Option<Bytes>, ClientError> {
        let frame = self.exec(&[&b"SET"[..], key, value], false).await?;
        reply::opt_bulk("SET", frame)
    }

    /// `SET "" value` in a sequential namespace: appends and returns the new id (sent by
    /// the server as 8 little-endian bytes).
    pub async fn set_seq(&self, value: &[u8]) -> Result<u64, ClientError> {
        let frame = self.exec(&[&b"SET"[..], b"", value], false).await?;
        match reply::opt_bulk("SET", frame)? {
            Some(key) => reply::seq_id("SET", &key),
            None => Err(ClientError::unexpected("SET", "nil reply to an append")),
        }
    }

    /// `SET <id> value` in a sequential namespace: overwrites an existing id. Returns
    /// false when the server replied nil (value unchanged).
    pub async fn update_seq(&self, id: u64, value: &[u8]) -> Result<bool, ClientError> {
        let key = id.to_le_bytes();
        let frame = self.exec(&[&b"SET"[..], &key, value], false).await?;
        Ok(reply::opt_bulk("SET", frame)?.is_some())
    }

    /// `GET key`: the payload, or `None` if absent or deleted.
    pub async fn get(&self, key: &[u8]) -> Result<Option<Bytes>, ClientError> {
        let frame = self.exec(&[&b"GET"[..], key], true).await?;
        reply::opt_bulk("GET", frame)
    }

    /// `GET` of each key, pipelined on one connection: one round trip for all of them, and
    /// served by every zdb (0-db has no `MGET`). One optional payload per key, in order; a
    /// server error for any key fails the whole call. Not retried.
    pub async fn get_many<K: AsRef<[u8]>>(
        &self,
        keys: &[K],
    ) -> Result<Vec<Option<Bytes>>, ClientError> {
        let requests: Vec<[&[u8]; 2]> = keys.iter().map(|k| [&b"GET"[..], k.as_ref()]).collect();
        let frames = self.pipeline(&requests).await?;
        frames
            .into_iter()
            .map(|f| reply::opt_bulk("GET", crate::check_reply(f)?))
            .collect()
    }

    /// `MGET key…`: one optional payload per key, in order. An empty `keys` sends nothing.
    pub async fn mget<K: AsRef<[u8]>>(
        &self,
        keys: &[K],
    ) -> Result<Vec<Option<Bytes>>, ClientError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut args: Vec<&[u8]> = Vec::with_capacity(keys.len() + 1);
        args.push(b"MGET");
        args.extend(keys.iter().map(AsRef::as_ref));
        let items = reply::array("MGET", self.exec(&args, true).await?)?;
        if items.len() != keys.len() {
            return Err(ClientError::unexpected(
                "MGET",
                format!("{} replies for {} keys", items.len(), keys.len()),
            ));
        }
        items
            .into_iter()
            .map(|f| reply::opt_bulk("MGET", f))
            .collect()
    }

    /// `DEL key` (the server errors if the key does not exist).
    pub async fn del(&self, key: &[u8]) -> Result<(), ClientError> {
        let frame = self.exec(&[&b"DEL"[..], key], false).await?;
        reply::ok("DEL", frame)
    }

    /// `EXISTS key`.
    pub async fn exists(&self, key: &[u8]) -> Result<bool, ClientError> {
        let frame = self.exec(&[&b"EXISTS"[..], key], true).await?;
        Ok(reply::uint("EXISTS", frame)? != 0)
    }

    /// `CHECK key`: `Some(true)` if the stored payload's CRC matches, `Some(false)` if
    /// not, `None` if the key is absent.
    pub async fn check(&self, key: &[u8]) -> Result<Option<bool>, ClientError> {
        let frame = self.exec(&[&b"CHECK"[..], key], true).await?;
        Ok(reply::opt_uint("CHECK", frame)?.map(|v| v != 0))
    }

    /// `LENGTH key`: payload length, `None` if absent.
    pub async fn length(&self, key: &[u8]) -> Result<Option<u64>, ClientError> {
        let frame = self.exec(&[&b"LENGTH"[..], key], true).await?;
        reply::opt_uint("LENGTH", frame)
    }

    /// `KEYTIME key`: unix time of the last write, `None` if absent.
    pub async fn keytime(&self, key: &[u8]) -> Result<Option<u64>, ClientError> {
        let frame = self.exec(&[&b"KEYTIME"[..], key], true).await?;
        reply::opt_uint("KEYTIME", frame)
    }

    /// `KEYCUR key`: an opaque cursor positioned at `key`, usable with `SCAN`/`RSCAN`.
    pub async fn keycur(&self, key: &[u8]) -> Result<Bytes, ClientError> {
        let frame = self.exec(&[&b"KEYCUR"[..], key], true).await?;
        reply::bulk("KEYCUR", frame)
    }

    /// `SCAN [cursor]`: the next page oldest→newest as (next cursor, entries), or `None`
    /// at the end (`-No more data`).
    pub async fn scan(
        &self,
        cursor: Option<&[u8]>,
    ) -> Result<Option<(Bytes, Vec<ScanEntry>)>, ClientError> {
        self.scan_cmd("SCAN", cursor).await
    }

    /// `RSCAN [cursor]`: like [`Client::scan`], newest→oldest.
    pub async fn rscan(
        &self,
        cursor: Option<&[u8]>,
    ) -> Result<Option<(Bytes, Vec<ScanEntry>)>, ClientError> {
        self.scan_cmd("RSCAN", cursor).await
    }

    async fn scan_cmd(
        &self,
        command: &'static str,
        cursor: Option<&[u8]>,
    ) -> Result<Option<(Bytes, Vec<ScanEntry>)>, ClientError> {
        let mut args: Vec<&[u8]> = vec![command.as_bytes()];
        args.extend(cursor);
        match none_on(self.exec(&args, true).await, NO_MORE_DATA)? {
            Some(frame) => reply::scan_page(command, frame).map(Some),
            None => Ok(None),
        }
    }

    /// `HISTORY key [cursor]`: the current version of `key` (no cursor) or the version
    /// the cursor points to; follow [`HistoryEntry::previous`] to go back in time.
    /// `None` when the server says there is no more history.
    pub async fn history(
        &self,
        key: &[u8],
        cursor: Option<&[u8]>,
    ) -> Result<Option<HistoryEntry>, ClientError> {
        let mut args: Vec<&[u8]> = vec![b"HISTORY", key];
        args.extend(cursor);
        match none_on(self.exec(&args, true).await, NO_MORE_HISTORY)? {
            Some(frame) => reply::history(frame).map(Some),
            None => Ok(None),
        }
    }

    /// `DBSIZE`: number of entries in the current namespace.
    pub async fn dbsize(&self) -> Result<u64, ClientError> {
        let frame = self.exec(&[&b"DBSIZE"[..]], true).await?;
        reply::uint("DBSIZE", frame)
    }

    /// `TIME`: server time as (unix seconds, microseconds).
    pub async fn time(&self) -> Result<(u64, u64), ClientError> {
        let items = reply::array("TIME", self.exec(&[&b"TIME"[..]], true).await?)?;
        let mut it = items.into_iter();
        match (it.next(), it.next(), it.next()) {
            (Some(s), Some(us), None) => Ok((
                reply::uint_lenient("TIME", s)?,
                reply::uint_lenient("TIME", us)?,
            )),
            _ => Err(ClientError::unexpected("TIME", "expected 2 elements")),
        }
    }

    /// `NSNEW name` (admin).
    pub async fn nsnew(&self, name: &str) -> Result<(), ClientError> {
        let frame = self.exec(&[&b"NSNEW"[..], name.as_bytes()], false).await?;
        reply::ok("NSNEW", frame)
    }

    /// `NSDEL name` (admin; not the namespace this connection is on).
    pub async fn nsdel(&self, name: &str) -> Result<(), ClientError> {
        let frame = self.exec(&[&b"NSDEL"[..], name.as_bytes()], false).await?;
        reply::ok("NSDEL", frame)
    }

    /// `NSLIST`: all namespace names.
    pub async fn nslist(&self) -> Result<Vec<String>, ClientError> {
        let items = reply::array("NSLIST", self.exec(&[&b"NSLIST"[..]], true).await?)?;
        items
            .into_iter()
            .map(|f| reply::text("NSLIST", f))
            .collect()
    }

    /// `NSINFO name`, parsed.
    pub async fn nsinfo(&self, name: &str) -> Result<NsInfo, ClientError> {
        let frame = self.exec(&[&b"NSINFO"[..], name.as_bytes()], true).await?;
        Ok(NsInfo::parse(&reply::text("NSINFO", frame)?))
    }

    /// `NSSET name property value` (admin), e.g. `("ns", "maxsize", "1000000")`.
    pub async fn nsset(&self, name: &str, property: &str, value: &str) -> Result<(), ClientError> {
        let args = [
            &b"NSSET"[..],
            name.as_bytes(),
            property.as_bytes(),
            value.as_bytes(),
        ];
        reply::ok("NSSET", self.exec(&args, false).await?)
    }

    /// `NSJUMP` (admin): close the current segments and start new ones.
    pub async fn nsjump(&self) -> Result<(), ClientError> {
        reply::ok("NSJUMP", self.exec(&[&b"NSJUMP"[..]], false).await?)
    }

    /// `INDEX DIRTY` (admin): ids of index segments modified since the last reset.
    pub async fn index_dirty(&self) -> Result<Vec<u64>, ClientError> {
        let frame = self.exec(&[&b"INDEX"[..], b"DIRTY"], true).await?;
        let items = reply::array("INDEX DIRTY", frame)?;
        items
            .into_iter()
            .map(|f| reply::uint_lenient("INDEX DIRTY", f))
            .collect()
    }

    /// `INDEX DIRTY RESET` (admin).
    pub async fn index_dirty_reset(&self) -> Result<(), ClientError> {
        let frame = self
            .exec(&[&b"INDEX"[..], b"DIRTY", b"RESET"], false)
            .await?;
        reply::ok("INDEX DIRTY RESET", frame)
    }

    /// `FLUSH`: empty the current namespace (only allowed on a private, password-protected
    /// namespace).
    pub async fn flush(&self) -> Result<(), ClientError> {
        reply::ok("FLUSH", self.exec(&[&b"FLUSH"[..]], false).await?)
    }

    /// `INFO`: the server's `key: value` text. Parse it with [`NsInfo::parse`] if needed.
    pub async fn info(&self) -> Result<String, ClientError> {
        reply::text("INFO", self.exec(&[&b"INFO"[..]], true).await?)
    }
}
