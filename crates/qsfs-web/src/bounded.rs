//! Small shapes several routes share: tables kept bounded in memory, and the
//! `{"id"}`-or-`{"all": true}` body of "end one or all" requests.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Instant;

use serde::Deserialize;

use crate::error::{ApiError, ApiResult};

/// Make room for one more entry in `map`, kept at most `max` long: the entry whose
/// `last_used` is oldest goes.
pub fn make_room<K: Eq + Hash + Clone, V>(
    map: &mut HashMap<K, V>,
    max: usize,
    last_used: impl Fn(&V) -> Instant,
) {
    if map.len() < max {
        return;
    }
    if let Some(oldest) = map
        .iter()
        .min_by_key(|(_, v)| last_used(v))
        .map(|(k, _)| k.clone())
    {
        map.remove(&oldest);
    }
}

/// `{"id"}` of one thing, or `{"all": true}`.
#[derive(Deserialize)]
pub struct OneOrAll {
    id: Option<String>,
    #[serde(default)]
    all: bool,
}

impl OneOrAll {
    /// `Some(id)` for one, `None` for all; 400 for anything else.
    pub fn which(self) -> ApiResult<Option<String>> {
        match (self.id, self.all) {
            (Some(id), false) => Ok(Some(id)),
            (None, true) => Ok(None),
            _ => Err(ApiError::bad_request("send {\"id\"} or {\"all\": true}")),
        }
    }
}
