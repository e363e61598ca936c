//! One client connection: read buffer, batch execution of pipelined requests, one write per
//! batch, WAIT, and the hostile-input rules (limits, protocol errors, slowloris timeout).
//!
//! Loop: decode every complete request in the read buffer, execute them in order appending
//! replies to one output buffer (flushed early only when it grows large), write it, then read
//! more. Shutdown is only observed between batches, so a batch in flight always completes.

use crate::admission::{Admission, Presence, Slot, TOO_MANY_CLIENTS};
use crate::cmd::{self, Flow, WaitFor};
use crate::session::Session;
use crate::state::ServerState;
use crate::stats::{BatchStats, Stats};
use bytes::{Bytes, BytesMut};
use resp::{Decoder, Limits, ProtocolError};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;
use tracing::Instrument;

/// Replies are written out mid-batch once they exceed this many bytes.
const FLUSH_AT: usize = 1024 * 1024;
/// Buffers that grew past this (a large value) are given back once empty.
const SHRINK_ABOVE: usize = 4 * 1024 * 1024;
/// Read granularity.
const READ_CHUNK: usize = 64 * 1024;
/// Most consecutive SETs handed to the engine as one batch.
const SET_RUN: usize = 256;

const SLOT_TAKEN: &str = "silent too long: its slot went to a new client";

/// Why a connection ends.
#[derive(Debug)]
enum End {
    /// Peer closed, or a reply asked to close.
    Done,
    /// Server shutdown.
    Shutdown,
    /// Socket error or timeout.
    Failed(String),
}

/// Serve one accepted stream until it closes or the server shuts down.
pub(crate) async fn serve<S>(
    stream: S,
    srv: Arc<ServerState>,
    shutdown: watch::Receiver<bool>,
    peer: String,
    slot: &Slot,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let id = slot.id;
    let span = tracing::info_span!("conn", id, %peer);
    async move {
        let Some(ns) = srv.default_namespace() else {
            tracing::error!("default namespace missing");
            return;
        };
        let admin = srv.everyone_admin();
        let sess = Session::new(id, ns, admin, !srv.config.protect);
        let limits = &srv.config.limits;
        let decoder = Decoder::new(
            Limits::default()
                .with_max_bulk_len(limits.max_request_bytes.min(Limits::DEFAULT_MAX_BULK_LEN))
                .with_max_array_len(limits.max_args),
        );
        let blocking = srv.config.sync_writes()
            && tokio::runtime::Handle::current().runtime_flavor()
                == tokio::runtime::RuntimeFlavor::MultiThread;
        let mut conn = Conn {
            stream,
            rbuf: BytesMut::with_capacity(16 * 1024),
            wbuf: BytesMut::with_capacity(16 * 1024),
            decoder,
            srv: srv.clone(),
            sess,
            batch: BatchStats::default(),
            blocking,
            presence: slot.presence.clone(),
            admin_room: slot.admission == Admission::AdminRoom,
        };
        tracing::debug!("connected");
        let end = conn.run(shutdown).await;
        conn.batch.flush(&srv.stats);
        let _ = conn.stream.shutdown().await;
        match end {
            End::Done | End::Shutdown => tracing::debug!(?end, "closed"),
            End::Failed(why) => tracing::debug!(%why, "closed"),
        }
    }
    .instrument(span)
    .await;
}

struct Conn<S> {
    stream: S,
    rbuf: BytesMut,
    wbuf: BytesMut,
    decoder: Decoder,
    srv: Arc<ServerState>,
    sess: Session,
    batch: BatchStats,
    /// Run commands inside `block_in_place` (every write fsyncs).
    blocking: bool,
    presence: Arc<Presence>,
    /// Let in over the client limit: only admin authentication is served until it succeeds.
    admin_room: bool,
}

/// What the synchronous batch core asks of the async shell.
enum Step {
    /// No complete request left: write the replies, read more.
    Drained,
    /// The output buffer is large: write it, then go on.
    Flush,
    /// WAIT: block this connection.
    Wait(WaitFor),
    /// Write the replies and close.
    Close,
    /// Protocol error: reply this text and close.
    Fatal(String),
}

/// The 0-db reply text for a protocol error.
fn protocol_error_text(e: &ProtocolError) -> String {
    match e {
        ProtocolError::BulkTooLarge { .. } => "Payload too big".into(),
        ProtocolError::TooManyElements { .. } => "Too many arguments".into(),
        ProtocolError::ExpectedBulk | ProtocolError::TooDeep { .. } => {
            "Malformed query string".into()
        }
        ProtocolError::InvalidFrameType(_) => "Malformed request, array expected".into(),
        other => format!("Protocol error: {other}"),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    async fn run(&mut self, mut shutdown: watch::Receiver<bool>) -> End {
        let limits = self.srv.config.limits.clone();
        let mut partial_since: Option<Instant> = None;
        loop {
            if let Err(end) = self.process(&mut shutdown).await {
                return end;
            }
            if self.rbuf.is_empty() {
                partial_since = None;
                if self.rbuf.capacity() > SHRINK_ABOVE {
                    self.rbuf = BytesMut::with_capacity(16 * 1024);
                    self.decoder.reset();
                }
            } else {
                if self.rbuf.len() > limits.max_request_bytes {
                    return self.close_with("Request too large").await;
                }
                partial_since.get_or_insert_with(Instant::now);
            }
            if *shutdown.borrow() {
                return End::Shutdown;
            }
            if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 4 {
                self.rbuf.reserve(READ_CHUNK);
            }
            let deadline = partial_since
                .zip(limits.request_timeout)
                .map(|(t, d)| t + d);
            if self.rbuf.is_empty() {
                self.presence.silent(&self.srv.admission);
            }
            let read = async {
                match deadline {
                    Some(d) => tokio::time::timeout_at(d, self.stream.read_buf(&mut self.rbuf))
                        .await
                        .ok(),
                    None => Some(self.stream.read_buf(&mut self.rbuf).await),
                }
            };
            let presence = self.presence.clone();
            let n = tokio::select! {
                r = read => r,
                () = presence.evicted() => return End::Failed(SLOT_TAKEN.into()),
                _ = shutdown.changed() => return End::Shutdown,
            };
            match n {
                None => return End::Failed("partial request timed out".into()),
                Some(Ok(0)) => return End::Done,
                Some(Ok(_)) if !self.presence.busy() => return End::Failed(SLOT_TAKEN.into()),
                Some(Ok(n)) => Stats::add(&self.srv.stats.network_rx, n as u64),
                Some(Err(e)) => return End::Failed(e.to_string()),
            }
        }
    }

    /// Execute every complete request in the read buffer, then write the replies.
    async fn process(&mut self, shutdown: &mut watch::Receiver<bool>) -> Result<(), End> {
        loop {
            let step = if self.blocking {
                tokio::task::block_in_place(|| self.run_batch())
            } else {
                self.run_batch()
            };
            match step {
                Step::Drained => break,
                Step::Flush => self.flush().await?,
                Step::Wait(w) => self.wait(w, shutdown).await?,
                Step::Close => {
                    self.flush().await?;
                    return Err(End::Done);
                }
                Step::Fatal(text) => return Err(self.close_with(&text).await),
            }
        }
        self.batch.flush(&self.srv.stats);
        self.flush().await
    }

    /// The synchronous core: decode and execute requests until the buffer holds no complete
    /// request, or something needs the socket (large output, WAIT, close).
    fn run_batch(&mut self) -> Step {
        let srv = self.srv.clone();
        // Consecutive plain SETs are gathered and handed to the engine as one batch.
        let mut sets: Vec<Vec<Bytes>> = Vec::new();
        loop {
            let is_array = self.rbuf.first() == Some(&b'*');
            let args = match self.decoder.decode_request(&mut self.rbuf) {
                Ok(Some(args)) => args,
                Ok(None) => return self.run_sets(&mut sets).unwrap_or(Step::Drained),
                Err(e) => {
                    tracing::debug!(error = %e, "protocol error");
                    if let Some(step) = self.run_sets(&mut sets) {
                        return step;
                    }
                    return Step::Fatal(protocol_error_text(&e));
                }
            };
            if args.is_empty() {
                if is_array {
                    if let Some(step) = self.run_sets(&mut sets) {
                        return step;
                    }
                    return Step::Fatal("Missing arguments".into());
                }
                continue;
            }
            if self.admin_room && !self.sess.admin && !cmd::is_auth(&args) {
                return Step::Fatal(TOO_MANY_CLIENTS.into());
            }
            if cmd::is_plain_set(&args) {
                sets.push(args);
                if sets.len() < SET_RUN {
                    continue;
                }
                if let Some(step) = self.run_sets(&mut sets) {
                    return step;
                }
                if self.wbuf.len() >= FLUSH_AT {
                    return Step::Flush;
                }
                continue;
            }
            if let Some(step) = self.run_sets(&mut sets) {
                return step;
            }
            if let Some(step) = self.exec(&srv, &args) {
                return step;
            }
        }
    }

    /// Execute one request; `Some(step)` when the async shell must act before going on.
    fn exec(&mut self, srv: &ServerState, args: &[Bytes]) -> Option<Step> {
        match cmd::execute(srv, &mut self.sess, args, &mut self.wbuf, &mut self.batch) {
            Flow::Continue if self.wbuf.len() >= FLUSH_AT => Some(Step::Flush),
            Flow::Continue => None,
            Flow::Close => Some(Step::Close),
            Flow::Wait(w) => Some(Step::Wait(w)),
        }
    }

    /// Execute the gathered SETs, if any; `Some(Step::Close)` when the connection must end.
    fn run_sets(&mut self, sets: &mut Vec<Vec<Bytes>>) -> Option<Step> {
        if sets.is_empty() {
            return None;
        }
        let flow = cmd::set_run(
            &self.srv,
            &mut self.sess,
            sets,
            &mut self.wbuf,
            &mut self.batch,
        );
        sets.clear();
        matches!(flow, Flow::Close).then_some(Step::Close)
    }

    /// WAIT: block until another client of the same namespace runs the command, or timeout.
    async fn wait(&mut self, w: WaitFor, shutdown: &mut watch::Receiver<bool>) -> Result<(), End> {
        let srv = self.srv.clone();
        let mut sub = srv.waiters.subscribe(self.sess.ns.name());
        self.flush().await?;
        let deadline = Instant::now() + w.timeout;
        let me = self.sess.id;
        let got = loop {
            tokio::select! {
                r = sub.rx.recv() => match r {
                    Ok(n) if n.from != me && w.command.is_none_or(|c| c == n.command) => break Some(n.command),
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => break None,
                },
                _ = tokio::time::sleep_until(deadline) => break None,
                _ = shutdown.changed() => return Err(End::Shutdown),
            }
        };
        match got {
            Some(name) => resp::write_simple(&mut self.wbuf, name),
            None => resp::write_error(&mut self.wbuf, "Timeout"),
        }
        Ok(())
    }

    /// Reply `-text`, then end the connection.
    async fn close_with(&mut self, text: &str) -> End {
        resp::write_error(&mut self.wbuf, text);
        match self.flush().await {
            Ok(()) => End::Done,
            Err(end) => end,
        }
    }

    /// Write the output buffer (bounded by the idle timeout).
    async fn flush(&mut self) -> Result<(), End> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let write = self.stream.write_all(&self.wbuf);
        let res = match self.srv.config.limits.request_timeout {
            Some(d) => tokio::time::timeout(d.max(Duration::from_secs(1)), write)
                .await
                .map_err(|_| End::Failed("write timed out".into()))?,
            None => write.await,
        };
        res.map_err(|e| End::Failed(e.to_string()))?;
        Stats::add(&self.srv.stats.network_tx, self.wbuf.len() as u64);
        self.wbuf.clear();
        if self.wbuf.capacity() > SHRINK_ABOVE {
            self.wbuf = BytesMut::with_capacity(16 * 1024);
        }
        Ok(())
    }
}
