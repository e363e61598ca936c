//! The links themselves: a TCP listener per link on loopback that forwards each accepted
//! connection to its upstream through two delay lines (one per direction).
//!
//! Partition: bytes stop coming out of the link in both directions and nothing is reset, as
//! when packets are dropped on the way; what was sent meanwhile comes out after the heal (TCP
//! would have retransmitted it). A connection made during a partition is accepted (the kernel
//! answers the handshake of a loopback listener) but carries nothing until the heal.
//! Down: every connection of the link is reset and new ones are reset at once, as a host that
//! is up with its server gone.

use crate::line::{loses_a_packet, Line};
use crate::profile::Profile;
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

/// Bytes read from a socket at a time: 1 ms of a 100 Mbit/s link, fine enough for the timing.
const CHUNK: usize = 16 * 1024;

/// The switches of one link.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct LinkState {
    pub profile: Profile,
    /// Silently drop everything (no reset), both directions.
    pub partitioned: bool,
    /// Reset every connection and refuse new ones.
    pub down: bool,
}

/// One emulated link; cheap to clone (a handle).
#[derive(Clone)]
pub struct Link(Arc<Shared>);

struct Shared {
    listen: SocketAddr,
    upstream: SocketAddr,
    state: watch::Sender<LinkState>,
    /// [to the upstream, back to the client]
    lines: [Mutex<Line>; 2],
    carried: [AtomicU64; 2],
}

/// Which way bytes travel on a link.
#[derive(Clone, Copy)]
enum Way {
    ToUpstream = 0,
    ToClient = 1,
}

impl Link {
    /// Listen on `listen` (port 0 for any) and forward to `upstream`; spawns on the current
    /// tokio runtime.
    pub async fn bind(
        listen: SocketAddr,
        upstream: SocketAddr,
        profile: Profile,
    ) -> io::Result<Link> {
        Link::serve(TcpListener::bind(listen).await?, upstream, profile)
    }

    /// Forward what `listener` accepts to `upstream`; spawns on the current tokio runtime.
    pub fn serve(
        listener: TcpListener,
        upstream: SocketAddr,
        profile: Profile,
    ) -> io::Result<Link> {
        let now = Instant::now();
        let link = Link(Arc::new(Shared {
            listen: listener.local_addr()?,
            upstream,
            state: watch::Sender::new(LinkState {
                profile,
                ..LinkState::default()
            }),
            lines: [Mutex::new(Line::new(now)), Mutex::new(Line::new(now))],
            carried: [AtomicU64::new(0), AtomicU64::new(0)],
        }));
        tokio::spawn(accept_loop(listener, link.clone()));
        Ok(link)
    }

    /// Where clients connect.
    pub fn listen(&self) -> SocketAddr {
        self.0.listen
    }

    pub fn upstream(&self) -> SocketAddr {
        self.0.upstream
    }

    pub fn state(&self) -> LinkState {
        *self.0.state.borrow()
    }

    /// Change the link; applies to bytes put on it from now on.
    pub fn set_profile(&self, profile: Profile) {
        self.0.state.send_modify(|s| s.profile = profile);
    }

    pub fn set_partitioned(&self, partitioned: bool) {
        self.0.state.send_modify(|s| s.partitioned = partitioned);
    }

    pub fn set_down(&self, down: bool) {
        self.0.state.send_modify(|s| s.down = down);
    }

    /// Bytes delivered so far: (to the upstream, back to clients).
    pub fn carried(&self) -> (u64, u64) {
        (
            self.0.carried[0].load(Ordering::Relaxed),
            self.0.carried[1].load(Ordering::Relaxed),
        )
    }
}

async fn accept_loop(listener: TcpListener, link: Link) {
    loop {
        match listener.accept().await {
            Ok((client, _)) => {
                tokio::spawn(serve_connection(client, link.clone()));
            }
            // Out of descriptors and the like: wait a moment rather than spin.
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    }
}

async fn serve_connection(mut client: TcpStream, link: Link) {
    let mut state = link.0.state.subscribe();
    if state.borrow().down {
        return reset(&client);
    }
    let Ok(mut upstream) = TcpStream::connect(link.0.upstream).await else {
        return reset(&client);
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    {
        let (client_rd, client_wr) = client.split();
        let (up_rd, up_wr) = upstream.split();
        let both = async {
            tokio::join!(
                pump(client_rd, up_wr, &link, Way::ToUpstream),
                pump(up_rd, client_wr, &link, Way::ToClient),
            )
        };
        tokio::select! {
            _ = both => return,
            _ = state.wait_for(|s| s.down) => {}
        }
    }
    reset(&client);
    reset(&upstream);
}

/// Close with a reset (SO_LINGER 0) when the socket is dropped.
fn reset(s: &TcpStream) {
    let _ = s.set_zero_linger();
}

/// Carry one direction: the reader puts chunks on the line as they arrive (stamped with when
/// they leave it), the writer lets each out at its time, in order. The queue between them is
/// bounded (what the link holds plus its buffer), so a fast sender is held back as TCP would.
async fn pump(
    mut from: tokio::net::tcp::ReadHalf<'_>,
    mut to: tokio::net::tcp::WriteHalf<'_>,
    link: &Link,
    way: Way,
) {
    let profile = link.state().profile;
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(queue_chunks(&profile));
    let reader = async move {
        let mut rng = StdRng::from_entropy();
        loop {
            let mut buf = vec![0u8; CHUNK];
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            buf.truncate(n);
            let p = link.state().profile;
            let mut at = link.0.lines[way as usize]
                .lock()
                .schedule(Instant::now(), n, &p);
            if loses_a_packet(n, &p, &mut rng) {
                at += p.loss_penalty();
            }
            if tx.send((at, buf)).await.is_err() {
                break;
            }
        }
    };
    let writer = async {
        let mut state = link.0.state.subscribe();
        while let Some((at, buf)) = rx.recv().await {
            tokio::time::sleep_until(at.into()).await;
            if state.borrow_and_update().partitioned {
                if state.wait_for(|s| !s.partitioned).await.is_err() {
                    return;
                }
                // What was held crosses the link once more after the heal.
                tokio::time::sleep(link.state().profile.delay).await;
            }
            if to.write_all(&buf).await.is_err() {
                return;
            }
            link.0.carried[way as usize].fetch_add(buf.len() as u64, Ordering::Relaxed);
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

/// Chunks one direction of one connection may hold: two bandwidth-delay products plus 50 ms
/// of buffer at the link's rate (1 GB/s when uncapped), at least 64 (1 MiB).
fn queue_chunks(p: &Profile) -> usize {
    let rate = p.rate.unwrap_or(1_000_000_000) as f64;
    let secs = p.rtt().as_secs_f64() * 2.0 + 0.05;
    ((rate * secs) as usize / CHUNK).max(64)
}
