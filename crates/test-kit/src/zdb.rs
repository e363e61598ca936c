//! A real zdb server (the `zdb_server` library, not a double) on 127.0.0.1, on a runtime and
//! thread of its own so that it can be started from sync and async tests alike.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

pub use zdb_engine::Mode;

/// Options of a [`TestZdb`]; [`ZdbOptions::start`] starts it.
#[derive(Debug, Clone, Default)]
pub struct ZdbOptions {
    dir: Option<PathBuf>,
    port: u16,
    admin: Option<String>,
    mode: Option<Mode>,
}

impl ZdbOptions {
    /// Keep `<dir>/data` and `<dir>/index` (default: a fresh temp dir, removed on drop).
    pub fn dir(mut self, dir: &Path) -> Self {
        self.dir = Some(dir.to_path_buf());
        self
    }

    /// Listen on this port (default 0: any free one).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The admin password (`--admin`; default none: every client is admin).
    pub fn admin(mut self, password: &str) -> Self {
        self.admin = Some(password.to_owned());
        self
    }

    /// Force every namespace into `mode` (`--mode`; default: each chooses).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = Some(mode);
        self
    }

    /// Bind and serve; returns once the server accepts connections.
    #[track_caller]
    pub fn start(self) -> TestZdb {
        let tmp = match self.dir {
            Some(_) => None,
            None => Some(tempfile::tempdir().expect("tempdir")),
        };
        let dir = match (&self.dir, &tmp) {
            (Some(d), _) => d.clone(),
            (None, Some(t)) => t.path().to_path_buf(),
            (None, None) => unreachable!("a temp dir was made"),
        };
        let mut config = zdb_server::ServerConfig::new(dir.join("data"), dir.join("index"));
        config.listen = "127.0.0.1".into();
        config.port = self.port;
        config.admin = self.admin;
        config.engine.mode = self.mode;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (kill_tx, kill_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("test-zdb".into())
            .spawn(move || serve(config, ready_tx, kill_rx))
            .expect("spawn the zdb thread");
        let (socket_addr, shutdown) = match ready_rx.recv() {
            Ok(Ok(ready)) => ready,
            Ok(Err(e)) => panic!("zdb on 127.0.0.1:{}: {e}", self.port),
            Err(_) => panic!("the zdb thread ended before it was ready"),
        };
        TestZdb {
            addr: socket_addr.to_string(),
            socket_addr,
            dir,
            shutdown,
            kill: Some(kill_tx),
            thread: Some(thread),
            _tmp: tmp,
        }
    }
}

type Ready = Result<(SocketAddr, zdb_server::ShutdownHandle), String>;

/// The server thread: bind, report, serve until shut down (graceful) or killed (the runtime
/// is dropped at once: every socket closes, nothing drains).
fn serve(
    config: zdb_server::ServerConfig,
    ready: std::sync::mpsc::Sender<Ready>,
    mut kill: tokio::sync::oneshot::Receiver<()>,
) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let server = match rt.block_on(zdb_server::Server::bind(config)) {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(format!("bind: {e}")));
            return;
        }
    };
    let Some(addr) = server.local_addr() else {
        let _ = ready.send(Err("no TCP address".into()));
        return;
    };
    let _ = ready.send(Ok((addr, server.shutdown_handle())));
    let killed = rt.block_on(async move {
        tokio::select! {
            r = server.run() => {
                if let Err(e) = r {
                    eprintln!("zdb server on {addr} ended: {e}");
                }
                false
            }
            Ok(()) = &mut kill => true,
        }
    });
    if killed {
        rt.shutdown_background();
    }
}

/// A running in-process zdb server; stopped (gracefully) on drop.
pub struct TestZdb {
    /// `127.0.0.1:<port>`, as client endpoints and configs spell it.
    pub addr: String,
    socket_addr: SocketAddr,
    dir: PathBuf,
    shutdown: zdb_server::ShutdownHandle,
    kill: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    _tmp: Option<tempfile::TempDir>,
}

impl TestZdb {
    /// Options, to start one with [`ZdbOptions::start`].
    pub fn options() -> ZdbOptions {
        ZdbOptions::default()
    }

    /// A server on a fresh temp dir, any free port, no admin password.
    #[track_caller]
    pub fn start() -> TestZdb {
        Self::options().start()
    }

    /// A server keeping `<dir>/data` and `<dir>/index`, any free port.
    #[track_caller]
    pub fn start_in(dir: &Path) -> TestZdb {
        Self::options().dir(dir).start()
    }

    pub fn socket_addr(&self) -> SocketAddr {
        self.socket_addr
    }

    pub fn port(&self) -> u16 {
        self.socket_addr.port()
    }

    /// The folder holding `data` and `index`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Graceful shutdown, waiting for the server to finish; a no-op once stopped.
    pub fn stop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.shutdown.shutdown();
            t.join().expect("zdb server thread");
        }
    }

    /// Abrupt end, as a crash: the runtime is dropped, every socket closed, nothing drained.
    pub fn kill(&mut self) {
        if let Some(t) = self.thread.take() {
            if let Some(k) = self.kill.take() {
                let _ = k.send(());
            }
            t.join().expect("zdb server thread");
        }
    }
}

impl Drop for TestZdb {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    fn ping(port: u16) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(5)));
        let mut buf = [0u8; 7];
        s.write_all(b"*1\r\n$4\r\nPING\r\n").is_ok()
            && s.read_exact(&mut buf).is_ok()
            && &buf == b"+PONG\r\n"
    }

    #[test]
    fn serves_then_stops_and_restarts_on_the_same_port_and_data() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut z = TestZdb::start_in(tmp.path());
        let port = z.port();
        assert_eq!(z.addr, format!("127.0.0.1:{port}"));
        assert!(ping(port));
        z.stop();
        assert!(!ping(port));
        let mut again = TestZdb::options().dir(tmp.path()).port(port).start();
        assert!(ping(port));
        again.kill();
        assert!(!ping(port));
        assert!(tmp.path().join("data").exists());
    }

    #[test]
    fn options_reach_the_server() {
        let z = TestZdb::options().admin("pw").mode(Mode::Seq).start();
        let mut s = TcpStream::connect(("127.0.0.1", z.port())).expect("connect");
        // Without AUTH, an admin command is refused.
        s.write_all(b"*2\r\n$5\r\nNSNEW\r\n$1\r\nx\r\n")
            .expect("write");
        let mut buf = [0u8; 1];
        s.read_exact(&mut buf).expect("reply");
        assert_eq!(&buf, b"-");
    }
}
