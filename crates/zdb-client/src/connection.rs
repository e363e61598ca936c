//! One buffered connection to a zdb server: endpoints, connect, request, pipeline.

use std::fmt;
use std::io::IoSlice;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use bytes::BytesMut;
use resp::{Decoder, Frame, Limits, Part};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

use crate::{ClientError, DEFAULT_PORT};

/// Initial and minimum free space of the read buffer.
const READ_CHUNK: usize = 64 * 1024;

/// Arguments this large are sent from the caller's memory instead of being copied into
/// the write buffer (values of a megabyte would otherwise cost a copy and a fresh buffer
/// per request).
const SEND_BY_REF: usize = 16 * 1024;

/// Slices per vectored write (far below the kernel's IOV_MAX of 1024).
const MAX_IOV: usize = 64;

/// Where a zdb server listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `host:port` over TCP (the host may be a name, an IPv4 address or `[v6]`).
    Tcp(String),
    /// A unix socket path.
    Unix(PathBuf),
}

impl FromStr for Endpoint {
    type Err = ClientError;

    /// Parses `unix:/path`, `/path` or `./path` as a unix socket; `tcp://host:port`,
    /// `host:port` or `[v6]:port` as TCP; a bare `host` gets the default port 9900.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Some(path) = s.strip_prefix("unix:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(ClientError::InvalidEndpoint(s.to_string()));
            }
            return Ok(Endpoint::Unix(path.into()));
        }
        if s.starts_with('/') || s.starts_with("./") || s.starts_with("../") {
            return Ok(Endpoint::Unix(s.into()));
        }
        let hostport = s.strip_prefix("tcp://").unwrap_or(s);
        if hostport.is_empty() || hostport.contains('/') || hostport.contains(char::is_whitespace) {
            return Err(ClientError::InvalidEndpoint(s.to_string()));
        }
        let has_port = if hostport.starts_with('[') {
            hostport.contains("]:")
        } else {
            hostport.contains(':')
        };
        if has_port {
            Ok(Endpoint::Tcp(hostport.to_string()))
        } else {
            Ok(Endpoint::Tcp(format!("{hostport}:{DEFAULT_PORT}")))
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(addr) => f.write_str(addr),
            Endpoint::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// Settings of a single [`Connection`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionOptions {
    /// Upper bound for establishing the socket. Default: 5 s.
    pub connect_timeout: Duration,
    /// Upper bound for one request or pipeline (write and all replies); `None` waits
    /// forever. Default: 30 s.
    pub request_timeout: Option<Duration>,
    /// Upper bound for a request to make no progress: no byte sent and none received for
    /// this long fails it with [`ClientError::Stalled`] (`None`: only `request_timeout`).
    /// Unlike the request timeout it does not grow with the size of a transfer: a large
    /// value over a slow link keeps going, a silent peer is given up on quickly.
    /// Connecting is bounded by it too. Default: `None`.
    pub stall_timeout: Option<Duration>,
    /// Limits applied to replies. Default: [`Limits::default`].
    pub limits: Limits,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Some(Duration::from_secs(30)),
            stall_timeout: None,
            limits: Limits::default(),
        }
    }
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// One connection to a zdb server.
///
/// Requests are encoded into a write buffer and sent with as few writes as possible;
/// replies are decoded incrementally from a read buffer and returned as zero-copy frames.
/// After any transport failure, timeout, protocol error or a request future dropped
/// mid-flight, the connection reports [`Connection::is_broken`] and refuses further
/// requests with [`ClientError::Broken`]: its reply stream can no longer be trusted.
pub struct Connection {
    stream: Stream,
    endpoint: Endpoint,
    rbuf: BytesMut,
    wbuf: BytesMut,
    decoder: Decoder,
    request_timeout: Option<Duration>,
    stall_timeout: Option<Duration>,
    /// Set on failure; never cleared.
    broken: bool,
    /// Set while a request is on the wire; still set if its future was dropped.
    in_flight: bool,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("endpoint", &self.endpoint)
            .field("broken", &self.is_broken())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects with default [`ConnectionOptions`].
    pub async fn connect(endpoint: &Endpoint) -> Result<Connection, ClientError> {
        Self::connect_with(endpoint, &ConnectionOptions::default()).await
    }

    /// Connects within `opts.connect_timeout`. TCP connections get `TCP_NODELAY`.
    pub async fn connect_with(
        endpoint: &Endpoint,
        opts: &ConnectionOptions,
    ) -> Result<Connection, ClientError> {
        let connecting = async {
            Ok::<_, std::io::Error>(match endpoint {
                Endpoint::Tcp(addr) => {
                    let s = TcpStream::connect(addr.as_str()).await?;
                    s.set_nodelay(true)?;
                    Stream::Tcp(s)
                }
                Endpoint::Unix(path) => Stream::Unix(UnixStream::connect(path).await?),
            })
        };
        let timeout = opts
            .stall_timeout
            .map_or(opts.connect_timeout, |s| s.min(opts.connect_timeout));
        let stream = tokio::time::timeout(timeout, connecting)
            .await
            .map_err(|_| ClientError::ConnectTimeout {
                endpoint: endpoint.to_string(),
                timeout,
            })??;
        tracing::debug!(%endpoint, "connected");
        Ok(Connection {
            stream,
            endpoint: endpoint.clone(),
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            wbuf: BytesMut::with_capacity(READ_CHUNK),
            decoder: Decoder::new(opts.limits.clone()),
            request_timeout: opts.request_timeout,
            stall_timeout: opts.stall_timeout,
            broken: false,
            in_flight: false,
        })
    }

    /// The endpoint this connection was made to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Replaces the per-request timeout (`None`: wait forever).
    pub fn set_request_timeout(&mut self, timeout: Option<Duration>) {
        self.request_timeout = timeout;
    }

    /// Replaces the stall timeout (see [`ConnectionOptions::stall_timeout`]).
    pub fn set_stall_timeout(&mut self, timeout: Option<Duration>) {
        self.stall_timeout = timeout;
    }

    /// True once the connection must not be used any more.
    pub fn is_broken(&self) -> bool {
        self.broken || self.in_flight
    }

    /// Sends one request and returns its reply.
    ///
    /// An error reply from the server is returned as [`ClientError::Server`] (the
    /// connection stays usable); any other failure breaks the connection.
    pub async fn request<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Frame, ClientError> {
        let mut replies = self.pipeline(&[args]).await?;
        match replies.pop() {
            Some(Frame::Error(text)) => Err(ClientError::Server(
                String::from_utf8_lossy(&text).into_owned(),
            )),
            Some(frame) => Ok(frame),
            None => Err(ClientError::unexpected("request", "no reply")),
        }
    }

    /// Sends all `requests` in one write and returns their replies, in order.
    ///
    /// Replies are returned as raw frames, error replies included (as [`Frame::Error`]),
    /// so one failed command does not hide the others; see [`crate::check_reply`].
    /// Replies are read while the requests are still being written, so a large pipeline
    /// cannot deadlock on full socket buffers. The request timeout covers the whole
    /// pipeline; the stall timeout each wait for the socket.
    pub async fn pipeline<R, A>(&mut self, requests: &[R]) -> Result<Vec<Frame>, ClientError>
    where
        R: AsRef<[A]>,
        A: AsRef<[u8]>,
    {
        if self.is_broken() {
            return Err(ClientError::Broken);
        }
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        self.wbuf.clear();
        let mut parts = Vec::new();
        for r in requests {
            resp::write_command_parts(&mut self.wbuf, r.as_ref(), SEND_BY_REF, &mut parts);
        }
        self.in_flight = true;
        let result = match self.request_timeout {
            Some(t) => tokio::time::timeout(t, self.exchange(&parts, requests.len()))
                .await
                .unwrap_or(Err(ClientError::Timeout(t))),
            None => self.exchange(&parts, requests.len()).await,
        };
        self.in_flight = false;
        if let Err(e) = &result {
            tracing::debug!(endpoint = %self.endpoint, error = %e, "connection broken");
            self.broken = true;
        }
        // Do not keep a large request buffer alive between requests.
        if self.wbuf.capacity() > 4 * READ_CHUNK {
            self.wbuf = BytesMut::with_capacity(READ_CHUNK);
        }
        result
    }

    /// True if the idle connection has been closed by the server (or sent unsolicited
    /// data), checked without blocking. Used by the pool before reusing a connection.
    pub(crate) fn is_stale(&self) -> bool {
        if self.is_broken() || !self.rbuf.is_empty() {
            return true;
        }
        let mut probe = [0u8; 1];
        let res = match &self.stream {
            Stream::Tcp(s) => s.try_read(&mut probe),
            Stream::Unix(s) => s.try_read(&mut probe),
        };
        !matches!(res, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }

    async fn exchange(&mut self, parts: &[Part<'_>], n: usize) -> Result<Vec<Frame>, ClientError> {
        let Connection {
            stream,
            rbuf,
            wbuf,
            decoder,
            stall_timeout,
            ..
        } = self;
        let stall = *stall_timeout;
        match stream {
            Stream::Tcp(s) => {
                let (mut r, mut w) = s.split();
                let out = Outgoing::new(wbuf, parts);
                exchange_io(&mut r, &mut w, out, rbuf, decoder, n, stall).await
            }
            Stream::Unix(s) => {
                let (mut r, mut w) = s.split();
                let out = Outgoing::new(wbuf, parts);
                exchange_io(&mut r, &mut w, out, rbuf, decoder, n, stall).await
            }
        }
    }
}

/// The bytes of a pipeline still to send: framing in the connection's write buffer and
/// large arguments where the caller holds them.
struct Outgoing<'a> {
    slices: Vec<&'a [u8]>,
    /// First slice not completely sent, and how much of it is.
    next: usize,
    offset: usize,
}

impl<'a> Outgoing<'a> {
    fn new(wbuf: &'a [u8], parts: &[Part<'a>]) -> Self {
        let slices = parts
            .iter()
            .map(|p| match p {
                Part::Buffered(r) => &wbuf[r.clone()],
                Part::Borrowed(b) => *b,
            })
            .filter(|s| !s.is_empty())
            .collect();
        Outgoing {
            slices,
            next: 0,
            offset: 0,
        }
    }

    fn done(&self) -> bool {
        self.next == self.slices.len()
    }

    /// Up to [`MAX_IOV`] slices from the current position, for one vectored write.
    fn io_slices(&self) -> Vec<IoSlice<'a>> {
        let mut v: Vec<IoSlice<'a>> = self.slices[self.next..]
            .iter()
            .take(MAX_IOV)
            .map(|s| IoSlice::new(s))
            .collect();
        if let Some(first) = v.first_mut() {
            *first = IoSlice::new(&self.slices[self.next][self.offset..]);
        }
        v
    }

    fn advance(&mut self, mut k: usize) {
        while k > 0 && !self.done() {
            let left = self.slices[self.next].len() - self.offset;
            if k < left {
                self.offset += k;
                return;
            }
            k -= left;
            self.next += 1;
            self.offset = 0;
        }
    }
}

/// Sends `out` and reads `n` replies, reading concurrently with writing. Each wait for the
/// socket is bounded by `stall`: it ends with a byte moved or with [`ClientError::Stalled`].
async fn exchange_io<R, W>(
    r: &mut R,
    w: &mut W,
    mut out: Outgoing<'_>,
    rbuf: &mut BytesMut,
    decoder: &mut Decoder,
    n: usize,
    stall: Option<Duration>,
) -> Result<Vec<Frame>, ClientError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut replies = Vec::with_capacity(n.min(4096));
    loop {
        while replies.len() < n {
            match decoder.decode(rbuf)? {
                Some(frame) => replies.push(frame),
                None => break,
            }
        }
        if replies.len() == n {
            if !out.done() {
                return Err(ClientError::unexpected(
                    "pipeline",
                    "server replied before the requests were fully sent",
                ));
            }
            return Ok(replies);
        }
        if rbuf.capacity() - rbuf.len() < READ_CHUNK / 4 {
            rbuf.reserve(READ_CHUNK);
        }
        let step = async {
            if out.done() {
                if r.read_buf(rbuf).await? == 0 {
                    return Err(ClientError::Closed);
                }
                return Ok(());
            }
            let slices = out.io_slices();
            tokio::select! {
                res = w.write_vectored(&slices) => {
                    match res? {
                        0 => return Err(ClientError::Closed),
                        k => out.advance(k),
                    }
                    if out.done() {
                        w.flush().await?;
                    }
                }
                res = r.read_buf(rbuf) => {
                    if res? == 0 {
                        return Err(ClientError::Closed);
                    }
                }
            }
            Ok(())
        };
        match stall {
            Some(t) => tokio::time::timeout(t, step)
                .await
                .unwrap_or(Err(ClientError::Stalled(t)))?,
            None => step.await?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outgoing_resumes_partial_writes_where_they_stopped() {
        let mut wbuf = BytesMut::new();
        let big = vec![7u8; 100_000];
        let args: [&[u8]; 2] = [b"SET", &big];
        let mut parts = Vec::new();
        resp::write_command_parts(&mut wbuf, &args, SEND_BY_REF, &mut parts);
        let mut whole = BytesMut::new();
        resp::write_command(&mut whole, &args);
        // Send in odd-sized steps, as a socket taking partial writes would.
        let mut out = Outgoing::new(&wbuf, &parts);
        let mut sent = Vec::new();
        for step in [1usize, 5, 4093, 17, 60_000, 1, 1_000_000] {
            if out.done() {
                break;
            }
            let mut room = step;
            for s in out.io_slices() {
                let take = s.len().min(room);
                sent.extend_from_slice(&s[..take]);
                room -= take;
            }
            out.advance(step - room);
        }
        assert!(out.done());
        assert_eq!(&sent[..], &whole[..]);
    }

    #[test]
    fn endpoint_parsing() {
        let tcp = |s: &str| Endpoint::Tcp(s.to_string());
        assert_eq!(
            "localhost:9900".parse::<Endpoint>().unwrap(),
            tcp("localhost:9900")
        );
        assert_eq!(
            "127.0.0.1".parse::<Endpoint>().unwrap(),
            tcp("127.0.0.1:9900")
        );
        assert_eq!("tcp://h:1".parse::<Endpoint>().unwrap(), tcp("h:1"));
        assert_eq!("[::1]:7".parse::<Endpoint>().unwrap(), tcp("[::1]:7"));
        assert_eq!("[::1]".parse::<Endpoint>().unwrap(), tcp("[::1]:9900"));
        assert_eq!(
            "/tmp/zdb.sock".parse::<Endpoint>().unwrap(),
            Endpoint::Unix("/tmp/zdb.sock".into())
        );
        assert_eq!(
            "unix:/tmp/zdb.sock".parse::<Endpoint>().unwrap(),
            Endpoint::Unix("/tmp/zdb.sock".into())
        );
        assert_eq!(
            "unix://tmp.sock".parse::<Endpoint>().unwrap(),
            Endpoint::Unix("tmp.sock".into())
        );
        for bad in ["", "unix:", "a b:1", "tcp://"] {
            assert!(bad.parse::<Endpoint>().is_err(), "{bad:?}");
        }
        assert_eq!(Endpoint::Unix("/x".into()).to_string(), "unix:/x");
    }
}
