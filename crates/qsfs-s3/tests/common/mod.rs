//! A real S3 gateway on loopback over a temporary drive folder, its accounts and keys, and
//! what the client tests share.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

pub struct Server {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub state: Arc<qsfs_web::WebState>,
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let state =
            Arc::new(qsfs_web::WebState::open(dir.path(), "s3-test-token".into(), None).unwrap());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let st = Arc::clone(&state);
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let tasks = service_kit::Tasks::new();
                let stop = tasks.stop_signal();
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = qsfs_s3::router(st);
                let server = tokio::spawn(service_kit::http::serve(listener, app, stop, "S3"));
                let _ = tokio::task::spawn_blocking(move || stop_rx.recv()).await;
                tasks.stop(std::time::Duration::from_secs(5)).await;
                let _ = server.await;
            });
        });
        Server {
            dir,
            port,
            state,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn home(&self, name: &str) -> PathBuf {
        self.dir.path().join(qsfs_web::users::HOMES).join(name)
    }

    /// An account (with `quota`) and an access key of its: (key id, secret).
    pub fn account(&self, name: &str, quota: Option<u64>) -> (String, String) {
        self.state
            .users
            .add(name, &format!("{name} password 1"), false, quota)
            .unwrap();
        let user = self.state.users.get(name).unwrap();
        let (info, secret) = self.state.access_keys.create(&user, "tests").unwrap();
        (info.id, secret)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Run `cmd`; its output, or a panic with what it printed.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (scripts/test installs it)"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A tree worth copying: nested folders, odd names, empty and larger files.
pub fn make_tree(dir: &Path) {
    let mut seed = 11u64;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 33
    };
    for d in 0..5 {
        let sub = dir.join(format!("folder {d}")).join("inner ünïcødé + 100%");
        std::fs::create_dir_all(&sub).unwrap();
        for f in 0..15 {
            let len = (next() % 30_000) as usize;
            let body: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            std::fs::write(sub.join(format!("file {f}.bin")), body).unwrap();
        }
        std::fs::write(dir.join(format!("folder {d}")).join("empty"), b"").unwrap();
    }
    // Above rclone's multipart cutoff with --s3-upload-cutoff 5M.
    let big: Vec<u8> = (0..(13 << 20) + 12345).map(|_| next() as u8).collect();
    std::fs::write(dir.join("big.bin"), big).unwrap();
}

pub fn same_trees(a: &Path, b: &Path) {
    run(Command::new("diff").arg("-r").arg(a).arg(b));
}
