//! Retrieve's downloads: which backends are asked for each chunk's pieces, and when one
//! more is asked because an answer is late.
//!
//! A chunk needs any `k` of its `n` pieces. When the links are the limit (a piece takes
//! [`LINK_BOUND`] times longer to arrive than a chunk to decode), each is asked of the `k`
//! backends with the fewest requests outstanding (data shards first on a tie; a rotation
//! spreads the rest), so the load spreads over all `n` links and a slow backend, whose
//! requests pile up, is asked less. Otherwise (a fast network: the CPU is the limit) the
//! data shards are asked first, which decode without Reed-Solomon work. A backend whose
//! recent pieces took [`SLOW_FACTOR`] times the others' is asked only when the others
//! cannot serve a chunk, until its measurement is [`SLOW_MEMORY`] old (then it is tried
//! again). Before a shard has a piece time, its backend's round trip stands in (a retrieve
//! pings the data backends while it reads the metadata: `Store::probe_data_backends`): one
//! far beyond the others, or not answering yet while `k` others have, is avoided from the
//! first chunk. The chunk being decoded is not held hostage by a late answer: once it has
//! waited twice the recent median piece time since its last request, one more backend is
//! asked ("hedged"), and so on until it decodes; the backends it was waiting on count as
//! late until they answer: avoided like slow ones, and every chunk ahead waiting on them is
//! hedged at once too (a backend that is slow from the first request costs one hedge delay,
//! not one per chunk). A failed, absent or rejected piece is replaced by asking another
//! backend at once. Chunks ahead are fetched while the current one is decoded
//! ([`PREFETCH`]), so memory stays a few chunks of pieces.
//!
//! Owns: that scheduling. Must not touch: decoding (the caller's [`ChunkDecoder`]) or the
//! output file.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::task::JoinSet;

use crate::backend::Backend;
use crate::meta::{ObjectMeta, MISSING_PIECE};
use crate::pipeline::ChunkDecoder;
use crate::Error;

/// Chunks whose pieces download ahead of the one being decoded.
const PREFETCH: u64 = 3;

/// Piece latencies kept for the median.
const LATENCY_SAMPLES: usize = 32;

/// The hedge delay before any piece came back, and its floor.
const HEDGE_UNMEASURED: Duration = Duration::from_millis(500);
const HEDGE_FLOOR: Duration = Duration::from_millis(250);

/// Pieces arriving this many times slower than a chunk decodes: the links are the limit.
const LINK_BOUND: u32 = 8;

/// A backend this many times slower than the median of the others is avoided ...
const SLOW_FACTOR: u32 = 3;
/// ... for this long after its last measurement.
const SLOW_MEMORY: Duration = Duration::from_secs(10);

/// One finished piece request: chunk, shard, what came back, how long it took.
type Answer = (u64, usize, Result<Option<Bytes>, Error>, Duration);

struct ChunkState {
    pieces: Vec<Option<Bytes>>,
    /// Asked (answered or not): never asked again for this chunk.
    asked: Vec<bool>,
    pending: usize,
    last_ask: Instant,
}

impl ChunkState {
    fn have(&self) -> usize {
        self.pieces.iter().filter(|p| p.is_some()).count()
    }
}

/// Fetches the chunks of one object in order.
pub(super) struct Fetcher<'a> {
    meta: &'a ObjectMeta,
    backends: &'a [Backend],
    k: usize,
    /// Requests in flight per shard (each shard of an object is on one backend).
    outstanding: Vec<usize>,
    /// Per shard: a moving average of its piece times, and when it was last updated.
    speed: Vec<Option<(Duration, Instant)>>,
    /// Per shard: a hedge found it late, and it has not answered since.
    late: Vec<bool>,
    tasks: JoinSet<Answer>,
    /// Chunks `first..first + window.len()` being fetched.
    window: VecDeque<ChunkState>,
    first: u64,
    /// The chunk after the last one wanted.
    end: u64,
    latencies: VecDeque<Duration>,
    /// A moving average of the time a chunk takes to decode.
    decode_time: Option<Duration>,
    /// Why the last piece could not be had (for the error when a chunk cannot be read).
    last_failure: Option<String>,
    /// Requests made because an answer was late.
    pub hedged: u64,
}

impl<'a> Fetcher<'a> {
    pub(super) fn new(meta: &'a ObjectMeta, backends: &'a [Backend]) -> Self {
        Self::range(meta, backends, 0..meta.chunk_count())
    }

    /// A fetcher of chunks `chunks` only (in order), asking nothing beyond them.
    pub(super) fn range(
        meta: &'a ObjectMeta,
        backends: &'a [Backend],
        chunks: std::ops::Range<u64>,
    ) -> Self {
        Fetcher {
            meta,
            backends,
            k: meta.k as usize,
            outstanding: vec![0; backends.len()],
            speed: vec![None; backends.len()],
            late: vec![false; backends.len()],
            tasks: JoinSet::new(),
            window: VecDeque::new(),
            first: chunks.start,
            end: chunks.end.min(meta.chunk_count()),
            latencies: VecDeque::with_capacity(LATENCY_SAMPLES),
            decode_time: None,
            last_failure: None,
            hedged: 0,
        }
    }

    /// Fetch chunk `chunk` (the next one: chunks are taken in order) and decode it into
    /// `decoder` (its output holds the chunk after).
    pub(super) async fn decode_next(
        &mut self,
        chunk: u64,
        decoder: &mut ChunkDecoder,
    ) -> Result<(), Error> {
        debug_assert_eq!(chunk, self.first);
        self.fill_window();
        loop {
            let k = self.k;
            let head = &mut self.window[0];
            if head.have() >= k {
                let refs: Vec<Option<&[u8]>> = head.pieces.iter().map(|p| p.as_deref()).collect();
                let start = Instant::now();
                let decoded = decoder.decode(chunk, &refs).map(|_| ());
                let took = start.elapsed();
                self.decode_time = Some(self.decode_time.map_or(took, |avg| (avg * 3 + took) / 4));
                match decoded {
                    Ok(()) => {
                        self.window.pop_front();
                        self.first += 1;
                        return Ok(());
                    }
                    Err(e @ Error::TooFewPieces { .. }) => {
                        let bad = decoder.bad_pieces().to_vec();
                        if bad.is_empty() {
                            return Err(e);
                        }
                        let head = &mut self.window[0];
                        for &i in &bad {
                            tracing::debug!(chunk, shard = i, "piece rejected; asking another");
                            head.pieces[i] = None;
                        }
                        self.last_failure = Some(format!("shard {} failed its checksum", bad[0]));
                    }
                    Err(e) => return Err(e),
                }
            }
            let head = &self.window[0];
            let missing = k.saturating_sub(head.have() + head.pending);
            if missing > 0 && self.ask(0, missing) < missing && self.window[0].pending == 0 {
                return Err(Error::ChunkUnavailable {
                    chunk,
                    available: self.window[0].have(),
                    needed: k,
                    reason: self
                        .last_failure
                        .take()
                        .unwrap_or_else(|| "no backend holds a piece of it".into()),
                });
            }
            if self.window[0].pending == 0 {
                continue;
            }
            let hedge_at = self.window[0].last_ask + self.hedge_delay();
            tokio::select! {
                answer = self.tasks.join_next() => match answer {
                    Some(Ok(answer)) => self.take(answer),
                    Some(Err(e)) => return Err(Error::Internal(format!("download task: {e}"))),
                    None => {}
                },
                () = tokio::time::sleep_until(hedge_at.into()) => {
                    self.mark_late();
                    if self.ask(0, 1) == 1 {
                        self.hedged += 1;
                        tracing::debug!(chunk, "a piece is late; asked one more backend");
                        self.hedge_waiting_on_late();
                    } else {
                        // Everyone is asked: just wait (the stall timeout bounds it).
                        self.window[0].last_ask = Instant::now();
                    }
                }
            }
        }
    }

    /// Start the chunks up to [`PREFETCH`] ahead of the current one.
    fn fill_window(&mut self) {
        while (self.window.len() as u64) <= PREFETCH
            && self.first + (self.window.len() as u64) < self.end
        {
            let n = self.backends.len();
            self.window.push_back(ChunkState {
                pieces: vec![None; n],
                asked: vec![false; n],
                pending: 0,
                last_ask: Instant::now(),
            });
            let at = self.window.len() - 1;
            self.ask(at, self.k);
        }
    }

    /// Ask up to `count` more backends for the chunk at `at` in the window; returns how
    /// many were asked.
    fn ask(&mut self, at: usize, count: usize) -> usize {
        let chunk = self.first + at as u64;
        let n = self.backends.len();
        let mut asked = 0;
        let slow = self.slow_shards();
        let spread = self.link_bound();
        while asked < count {
            let st = &self.window[at];
            let pick = (0..n)
                .filter(|&i| !st.asked[i])
                .filter(|&i| {
                    self.meta.shards[i]
                        .keys
                        .get(chunk as usize)
                        .is_some_and(|&id| id != MISSING_PIECE)
                })
                .min_by_key(|&i| {
                    let parity = i >= self.k;
                    let (first, second) = if spread {
                        (self.outstanding[i], usize::from(parity))
                    } else {
                        (usize::from(parity), self.outstanding[i])
                    };
                    (
                        self.backends[i].liveness().is_down(),
                        slow[i] || self.late[i],
                        first,
                        second,
                        (i + n - (chunk as usize % n)) % n,
                    )
                });
            let Some(i) = pick else { break };
            let id = self.meta.shards[i].keys[chunk as usize];
            let b = self.backends[i].clone();
            let st = &mut self.window[at];
            st.asked[i] = true;
            st.pending += 1;
            st.last_ask = Instant::now();
            self.outstanding[i] += 1;
            self.tasks.spawn(async move {
                let start = Instant::now();
                let got = b.get_piece(id).await;
                (chunk, i, got, start.elapsed())
            });
            asked += 1;
        }
        asked
    }

    /// The backends the current chunk is waiting on are late.
    fn mark_late(&mut self) {
        let head = &self.window[0];
        for i in 0..head.asked.len() {
            if head.asked[i] && head.pieces[i].is_none() && self.outstanding[i] > 0 {
                self.late[i] = true;
            }
        }
    }

    /// Ask one more backend for every chunk ahead that waits on a late one.
    fn hedge_waiting_on_late(&mut self) {
        for at in 1..self.window.len() {
            let st = &self.window[at];
            let waits =
                (0..st.asked.len()).any(|i| self.late[i] && st.asked[i] && st.pieces[i].is_none());
            if waits && self.ask(at, 1) == 1 {
                self.hedged += 1;
            }
        }
    }

    /// Record one answer; a missing piece is replaced by asking another backend.
    fn take(&mut self, (chunk, shard, got, took): Answer) {
        self.outstanding[shard] -= 1;
        self.late[shard] = false;
        // Late answers too: they are what shows a backend is slow.
        if matches!(got, Ok(Some(_))) {
            let avg = match self.speed[shard] {
                Some((avg, _)) => (avg * 3 + took) / 4,
                None => took,
            };
            self.speed[shard] = Some((avg, Instant::now()));
        }
        let Some(at) = chunk
            .checked_sub(self.first)
            .and_then(|a| usize::try_from(a).ok())
            .filter(|&a| a < self.window.len())
        else {
            return; // a chunk already decoded: a late answer to a hedged request
        };
        let st = &mut self.window[at];
        st.pending -= 1;
        match got {
            Ok(Some(piece)) => {
                if self.latencies.len() == LATENCY_SAMPLES {
                    self.latencies.pop_front();
                }
                self.latencies.push_back(took);
                st.pieces[shard] = Some(piece);
            }
            Ok(None) => {
                tracing::debug!(chunk, shard, "piece absent; asking another backend");
                self.last_failure = Some(format!("shard {shard}: piece absent"));
                self.ask(at, 1);
            }
            Err(e) => {
                tracing::debug!(chunk, shard, error = %e, "piece unavailable; asking another backend");
                self.last_failure = Some(e.to_string());
                self.ask(at, 1);
            }
        }
    }

    /// Whether pieces take [`LINK_BOUND`] times longer to arrive than a chunk to decode.
    fn link_bound(&self) -> bool {
        match (self.median_latency(), self.decode_time) {
            (Some(piece), Some(decode)) => piece > decode * LINK_BOUND,
            _ => false,
        }
    }

    fn median_latency(&self) -> Option<Duration> {
        let mut sorted: Vec<Duration> = self.latencies.iter().copied().collect();
        sorted.sort_unstable();
        sorted.get(sorted.len() / 2).copied()
    }

    /// Per shard: whether its recent pieces were much slower than the others'. A shard this
    /// fetch has no piece time for is judged by its backend's round trip: slow when it is
    /// [`SLOW_FACTOR`] times the median, or unknown while `k` others are known (a ping sent
    /// when the retrieve began is still under way on it).
    fn slow_shards(&self) -> Vec<bool> {
        let now = Instant::now();
        let recent: Vec<Option<Duration>> = self
            .speed
            .iter()
            .map(|s| s.filter(|(_, at)| now - *at < SLOW_MEMORY).map(|(d, _)| d))
            .collect();
        let by_pieces = outliers(&recent, 2, false);
        let trips: Vec<Option<Duration>> = self
            .backends
            .iter()
            .map(|b| b.liveness().round_trip())
            .collect();
        let by_trips = outliers(&trips, self.k, true);
        (0..recent.len())
            .map(|i| {
                if recent[i].is_some() {
                    by_pieces[i]
                } else {
                    by_trips[i]
                }
            })
            .collect()
    }

    /// How long the current chunk waits after its last request before one more backend
    /// is asked: twice the recent median piece time.
    fn hedge_delay(&self) -> Duration {
        self.median_latency()
            .map_or(HEDGE_UNMEASURED, |m| (m * 2).max(HEDGE_FLOOR))
    }
}

/// Which of `times` are slow: more than [`SLOW_FACTOR`] times their median (an unknown one
/// counts as `unknown_slow`); none when fewer than `enough` are known.
fn outliers(times: &[Option<Duration>], enough: usize, unknown_slow: bool) -> Vec<bool> {
    let mut known: Vec<Duration> = times.iter().flatten().copied().collect();
    if known.len() < enough.max(1) {
        return vec![false; times.len()];
    }
    known.sort_unstable();
    let median = known[known.len() / 2];
    times
        .iter()
        .map(|t| t.map_or(unknown_slow, |t| t > median * SLOW_FACTOR))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn outliers_are_slow_against_the_median_and_unknowns_as_told() {
        let t = [
            Some(50 * MS),
            Some(60 * MS),
            None,
            Some(500 * MS),
            Some(55 * MS),
        ];
        assert_eq!(outliers(&t, 4, true), [false, false, true, true, false]);
        assert_eq!(outliers(&t, 4, false), [false, false, false, true, false]);
        // Too few known: nobody is judged.
        assert_eq!(outliers(&t, 5, true), [false; 5]);
        assert_eq!(outliers(&[None, None], 1, true), [false, false]);
    }
}
