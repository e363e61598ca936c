//! SET and DEL.
//!
//! A SET whose value equals the stored one writes nothing (0-db replies nil). That check is made
//! first under the shared lock, so identical rewrites run in parallel like reads; only a real
//! change takes the exclusive lock, where the check is redone if the key moved meanwhile.
//! Events raised while writing (segment jumps) are emitted after the lock is released.

use super::{seq_id, seq_key, AppendIndex, Keys, Namespace, SetOutcome, State};
use crate::error::{Error, Result};
use crate::events::Event;
use crate::format::{self, IndexEntry, FLAG_DELETED};
use crate::keymap::{Placement, Slot};
use crate::Mode;
use parking_lot::RwLockWriteGuard;

/// What a key names in its namespace, resolved under a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// User mode, with the key's slot if it was ever written.
    User(Option<Slot>),
    /// Sequential mode, empty key: a new id.
    SeqNew,
    /// Sequential mode, an existing live id.
    SeqUpdate(u32, IndexEntry),
}

/// Where the current version lives and what it holds.
#[derive(Debug, Clone, Copy)]
struct Version {
    seg: u32,
    off: u32,
    payload_len: u32,
    payload_crc: u32,
    deleted: bool,
}

impl Target {
    fn version(&self) -> Option<Version> {
        match self {
            Target::User(s) => s.map(|s| Version {
                seg: s.seg,
                off: s.data_off,
                payload_len: s.payload_len,
                payload_crc: s.payload_crc,
                deleted: s.is_deleted(),
            }),
            Target::SeqNew => None,
            Target::SeqUpdate(_, e) => Some(Version {
                seg: e.data_seg,
                off: e.data_off,
                payload_len: e.payload_len,
                payload_crc: e.payload_crc,
                deleted: e.is_deleted(),
            }),
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
            Keys::Seq(_) if key.is_empty() => Ok(Target::SeqNew),
            Keys::Seq(_) => {
                let id = seq_id(key).map_err(|_| Error::SeqUpdateOnly)?;
                let e = self
                    .seq_entry(st, id)?
                    .filter(|e| !e.is_deleted())
                    .ok_or(Error::SeqUpdateOnly)?;
                Ok(Target::SeqUpdate(id, e))
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
        match self.unchanged_or_worm(st, key, value, target.version())? {
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
            if let Some(out) = self.unchanged_or_worm(st, key, value, target.version())? {
                return Ok(out);
            }
        }
        let written = match target {
            Target::User(prev) => {
                let live = prev.filter(|s| !s.is_deleted());
                st.check_room(value.len(), live.map_or(0, |s| s.payload_len as u64))?;
                let link = prev.map(|s| (s.seg, s.data_off));
                let (e, idx_off) = self.append(st, key, value, ts, 0, link, AppendIndex::Append)?;
                let Keys::User(m) = &mut st.keys else {
                    unreachable!()
                };
                m.put(key, Placement::of(&e, idx_off));
                key.to_vec()
            }
            Target::SeqNew | Target::SeqUpdate(..) => {
                let (id, existing, dest) = match target {
                    Target::SeqUpdate(id, e) => (id, Some(e), AppendIndex::Overwrite(id)),
                    _ => (self.seq(st).next_id, None, AppendIndex::Append),
                };
                st.check_room(value.len(), existing.map_or(0, |e| e.payload_len as u64))?;
                let link = existing.map(|e| (e.data_seg, e.data_off));
                let (new, _) = self.append(st, &id.to_le_bytes(), value, ts, 0, link, dest)?;
                let Keys::Seq(s) = &mut st.keys else {
                    unreachable!()
                };
                if existing.is_none() {
                    s.next_id += 1;
                }
                s.account(existing.as_ref(), Some(&new));
                seq_key(id).to_vec()
            }
        };
        Ok(SetOutcome::Written(written))
    }

    /// Refuse overwrites on `worm`, and detect a value identical to the stored one. A different
    /// length or checksum settles it without reading; otherwise the stored bytes are compared
    /// in full, since a checksum match alone could drop a different value.
    fn unchanged_or_worm(
        &self,
        st: &State,
        key: &[u8],
        value: &[u8],
        prev: Option<Version>,
    ) -> Result<Option<SetOutcome>> {
        let Some(Version {
            seg,
            off,
            payload_len: len,
            payload_crc,
            deleted,
        }) = prev
        else {
            return Ok(None);
        };
        if deleted {
            return Ok(None);
        }
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
            match st.mode() {
                Mode::User => {
                    let Keys::User(m) = &st.keys else {
                        unreachable!()
                    };
                    let slot = m
                        .get(key)
                        .copied()
                        .filter(|s| !s.is_deleted())
                        .ok_or(Error::KeyNotFound)?;
                    if st.settings.worm {
                        return Err(Error::WormDelete);
                    }
                    let link = Some((slot.seg, slot.data_off));
                    let (tomb, idx_off) =
                        self.append(st, key, &[], ts, FLAG_DELETED, link, AppendIndex::Append)?;
                    let Keys::User(m) = &mut st.keys else {
                        unreachable!()
                    };
                    m.put(key, Placement::of(&tomb, idx_off));
                }
                Mode::Seq => {
                    let id = seq_id(key).map_err(|_| Error::KeyNotFound)?;
                    let e = self
                        .seq_entry(st, id)?
                        .filter(|e| !e.is_deleted())
                        .ok_or(Error::KeyNotFound)?;
                    if st.settings.worm {
                        return Err(Error::WormDelete);
                    }
                    let link = Some((e.data_seg, e.data_off));
                    let dest = AppendIndex::Overwrite(id);
                    let (tomb, _) =
                        self.append(st, &id.to_le_bytes(), &[], ts, FLAG_DELETED, link, dest)?;
                    let Keys::Seq(s) = &mut st.keys else {
                        unreachable!()
                    };
                    s.account(Some(&e), Some(&tomb));
                }
            }
            self.after_write(st)
        })
    }
}
