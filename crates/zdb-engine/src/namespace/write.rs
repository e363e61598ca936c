//! SET and DEL.
//!
//! A SET whose value equals the stored one writes nothing (0-db replies nil). That check is made
//! first under the shared lock, so identical rewrites run in parallel like reads; only a real
//! change takes the exclusive lock, where the check is redone if the key moved meanwhile.
//! Events raised while writing (segment jumps) are emitted after the lock is released.
//!
//! A key is resolved once per lock hold into a [`Target`], which carries what that mode's index
//! said about it; SET and DEL then write through one path (`put_version`) that needs no further
//! look at the mode.

use super::{seq_id, seq_key, AppendIndex, Keys, Namespace, SeqEntry, SetOutcome, State};
use crate::error::{Error, Result};
use crate::events::Event;
use crate::format::{self, IndexEntry, FLAG_DELETED};
use crate::keymap::Slot;
use crate::Mode;
use parking_lot::RwLockWriteGuard;
use std::sync::atomic::Ordering;

/// What a key names in its namespace, resolved under a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// User mode, with the key's slot if it was ever written.
    User(Option<Slot>),
    /// Sequential mode, empty key: a new id (the namespace's `next_id` when resolved).
    SeqNew(u32),
    /// Sequential mode, an existing live id.
    SeqUpdate(SeqEntry),
}

impl Target {
    /// The version a write supersedes, deleted or not.
    fn current(&self) -> Option<IndexEntry> {
        match self {
            Target::User(s) => s.map(|s| s.entry()),
            Target::SeqNew(_) => None,
            Target::SeqUpdate(e) => Some(e.entry),
        }
    }

    /// The sequential id written, `None` in user mode.
    fn seq_id(&self) -> Option<u32> {
        match self {
            Target::User(_) => None,
            Target::SeqNew(id) => Some(*id),
            Target::SeqUpdate(e) => Some(e.id),
        }
    }
}

pub(super) fn now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0)
}

impl Namespace {
    /// Run `f` under the exclusive lock, write out what it appended, release the lock, then
    /// emit the events it raised. If the write-out fails, `f`'s result is replaced by the error.
    pub(super) fn with_write<T>(&self, f: impl FnOnce(&mut State) -> Result<T>) -> Result<T> {
        let mut st = self.state.write();
        let mut out = f(&mut st);
        if let Err(e) = self.flush_pending(&mut st) {
            tracing::error!(namespace = %self.name, error = %e, "writing appends out failed");
            self.recover_from_write_error(&mut st);
            out = Err(e);
        }
        let events = std::mem::take(&mut st.events);
        RwLockWriteGuard::unlock_fair(st);
        for ev in &events {
            let shipped = self.events.emit(ev).is_ok() && self.events.ships_dirty_index();
            if let (Event::JumpIndex { dirty, .. }, true) = (ev, shipped) {
                self.clear_dirty(dirty);
            }
        }
        out
    }

    fn resolve(&self, st: &State, key: &[u8]) -> Result<Target> {
        match &st.keys {
            Keys::User(m) => {
                if key.is_empty() {
                    return Err(Error::KeyNeeded);
                }
                if key.len() > format::MAX_KEY_LEN {
                    return Err(Error::KeyTooLarge);
                }
                Ok(Target::User(m.get(key).copied()))
            }
            Keys::Seq(s) if key.is_empty() => Ok(Target::SeqNew(s.next_id)),
            Keys::Seq(s) => {
                let id = seq_id(key).map_err(|_| Error::SeqUpdateOnly)?;
                let e = self
                    .seq_entry(st, s, id)?
                    .filter(|e| !e.entry.is_deleted())
                    .ok_or(Error::SeqUpdateOnly)?;
                Ok(Target::SeqUpdate(e))
            }
        }
    }

    /// Store `value` under `key` (seq mode: empty key appends, an existing id updates).
    /// `timestamp` overrides the record time (replication, admin only in the server).
    pub fn set(&self, key: &[u8], value: &[u8], timestamp: Option<u32>) -> Result<SetOutcome> {
        let mut out = self.set_many(&[(key, value)], timestamp);
        out.pop().expect("one result per item")
    }

    /// Store several values in one go, as a pipelined batch: one hold of the exclusive lock and
    /// two system calls for all of them. Results come back in order, one per item; an item's
    /// failure does not stop the others. Durability is the same as for `set`: every `Written`
    /// item is in the page cache (or on disk with `Durability::Always`) when this returns.
    pub fn set_many(
        &self,
        items: &[(&[u8], &[u8])],
        timestamp: Option<u32>,
    ) -> Vec<Result<SetOutcome>> {
        let mut results: Vec<Option<Result<SetOutcome>>> = items.iter().map(|_| None).collect();
        let mut seen: Vec<Option<Target>> = vec![None; items.len()];
        if self.is_deleted() {
            return items.iter().map(|_| Err(Error::NamespaceGone)).collect();
        }
        // Identical values need no write: settle them under the shared lock first. Only a
        // leading run can be settled there: once one item must write, the items after it are
        // judged after that write, as if sent one by one.
        let mut settled = 0;
        {
            let st = self.state.read();
            for (i, &(key, value)) in items.iter().enumerate() {
                match self.check_set(&st, key, value) {
                    Ok(Ok(target)) => {
                        seen[i] = Some(target);
                        break;
                    }
                    Ok(Err(outcome)) => results[i] = Some(Ok(outcome)),
                    Err(e) => results[i] = Some(Err(e)),
                }
                settled = i + 1;
            }
        }
        if settled == items.len() {
            return results
                .into_iter()
                .map(|r| r.expect("all settled"))
                .collect();
        }
        let ts = timestamp.unwrap_or_else(now);
        let batch = self.with_write(|st| {
            let mut wrote = false;
            for (i, &(key, value)) in items.iter().enumerate().skip(settled) {
                let seen = match seen[i] {
                    Some(t) => t,
                    None => match self.check_set(st, key, value) {
                        Ok(Ok(target)) => target,
                        Ok(Err(outcome)) => {
                            results[i] = Some(Ok(outcome));
                            continue;
                        }
                        Err(e) => {
                            results[i] = Some(Err(e));
                            continue;
                        }
                    },
                };
                let r = self.write_one(st, key, value, ts, seen);
                wrote |= matches!(r, Ok(SetOutcome::Written(_)));
                results[i] = Some(r);
            }
            if wrote {
                self.after_write(st)?;
            }
            Ok(())
        });
        let batch = batch.map_err(std::sync::Arc::new);
        results
            .into_iter()
            .map(|r| match (r.expect("every item settled"), &batch) {
                (Ok(SetOutcome::Written(_)), Err(e)) => Err(Error::WriteFailed(e.clone())),
                (r, _) => r,
            })
            .collect()
    }

    /// Checks made before any write: `Ok(Err(outcome))` when the item is settled without
    /// writing (identical value), `Ok(Ok(target))` when it must be written.
    fn check_set(
        &self,
        st: &State,
        key: &[u8],
        value: &[u8],
    ) -> Result<Result<Target, SetOutcome>> {
        if value.len() > format::MAX_PAYLOAD_LEN {
            return Err(Error::PayloadTooLarge);
        }
        Self::check_writable(st)?;
        let target = self.resolve(st, key)?;
        match self.unchanged_or_worm(st, key, value, target.current())? {
            Some(out) => Ok(Err(out)),
            None => Ok(Ok(target)),
        }
    }

    /// One SET under the exclusive lock; `seen` is what the shared-lock check resolved.
    fn write_one(
        &self,
        st: &mut State,
        key: &[u8],
        value: &[u8],
        ts: u32,
        seen: Target,
    ) -> Result<SetOutcome> {
        Self::check_writable(st)?;
        let target = self.resolve(st, key)?;
        if target != seen {
            if let Some(out) = self.unchanged_or_worm(st, key, value, target.current())? {
                return Ok(out);
            }
        }
        let live = target.current().filter(|e| !e.is_deleted());
        st.check_room(value.len(), live.map_or(0, |e| u64::from(e.payload_len)))?;
        let record = (format::RECORD_HEADER_LEN + key.len() + value.len()) as u64;
        self.shared
            .disk
            .admit(record, self.into_reserve.load(Ordering::Relaxed))?;
        let written = self.put_version(st, key, target, value, ts, 0)?;
        Ok(SetOutcome::Written(written))
    }

    /// Append `value` (with record `flags`) as the newest version of what `target` names,
    /// linked to the version it supersedes, and point the index at it. Returns the key as
    /// replied to the client (in sequential mode the id, 8 bytes little-endian).
    fn put_version(
        &self,
        st: &mut State,
        key: &[u8],
        target: Target,
        value: &[u8],
        ts: u32,
        flags: u8,
    ) -> Result<Vec<u8>> {
        let old = target.current();
        let link = old.map(|o| (o.data_seg, o.data_off));
        let id = target.seq_id();
        // Data records of sequential ids carry the 4-byte id as their key.
        let id_bytes = id.map(u32::to_le_bytes);
        let stored_key = id_bytes.as_ref().map_or(key, |b| &b[..]);
        let dest = match &target {
            Target::SeqUpdate(e) => AppendIndex::overwrite(e),
            Target::User(_) | Target::SeqNew(_) => AppendIndex::Append,
        };
        let (new, idx_off) = self.append(st, stored_key, value, ts, flags, link, dest)?;
        st.keys.record(key, old.as_ref(), &new, idx_off);
        if matches!(target, Target::SeqUpdate(_)) && flags & FLAG_DELETED == 0 {
            // An update consumes an id as in 0-db (a DEL does not). After the record, which
            // may have jumped, so the placeholder sits where the open segment's ids continue.
            Self::append_seq_placeholder(st, ts);
        }
        Ok(match id {
            Some(id) => seq_key(id).to_vec(),
            None => key.to_vec(),
        })
    }

    /// Refuse overwrites on `worm`, and detect a value identical to the stored one. A different
    /// length or checksum settles it without reading; otherwise the stored bytes are compared
    /// in full, since a checksum match alone could drop a different value.
    fn unchanged_or_worm(
        &self,
        st: &State,
        key: &[u8],
        value: &[u8],
        prev: Option<IndexEntry>,
    ) -> Result<Option<SetOutcome>> {
        let Some(IndexEntry {
            data_seg: seg,
            data_off: off,
            payload_len: len,
            payload_crc,
            ..
        }) = prev.filter(|e| !e.is_deleted())
        else {
            return Ok(None);
        };
        if st.settings.worm {
            return Err(Error::WormOverwrite);
        }
        if len as usize == value.len() && crc32fast::hash(value) == payload_crc {
            let key_len = if st.mode() == Mode::Seq { 4 } else { key.len() };
            match self.read_record(st, seg, off, key_len, len) {
                Ok((_, stored)) if stored == value => return Ok(Some(SetOutcome::Unchanged)),
                // A damaged stored copy is simply replaced by the new value, and one that is
                // offloaded is not fetched under the write lock just to skip a write.
                Ok(_) | Err(Error::Corrupt { .. } | Error::Offloaded { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Delete `key`: appends a tombstone; the old versions stay reachable through HISTORY.
    pub fn delete(&self, key: &[u8]) -> Result<()> {
        self.delete_at(key, None)
    }

    /// Delete `key` with an explicit tombstone time (replication, admin only in the server).
    pub fn delete_at(&self, key: &[u8], timestamp: Option<u32>) -> Result<()> {
        self.check_alive()?;
        self.with_write(|st| {
            Self::check_writable(st)?;
            let ts = timestamp.unwrap_or_else(now);
            let target = match &st.keys {
                Keys::User(m) => {
                    let slot = m.get(key).copied().filter(|s| !s.is_deleted());
                    Target::User(Some(slot.ok_or(Error::KeyNotFound)?))
                }
                Keys::Seq(s) => {
                    let id = seq_id(key).map_err(|_| Error::KeyNotFound)?;
                    let e = self
                        .seq_entry(st, s, id)?
                        .filter(|e| !e.entry.is_deleted())
                        .ok_or(Error::KeyNotFound)?;
                    Target::SeqUpdate(e)
                }
            };
            if st.settings.worm {
                return Err(Error::WormDelete);
            }
            self.put_version(st, key, target, &[], ts, FLAG_DELETED)?;
            self.after_write(st)
        })
    }
}
