//! A real S3 gateway on loopback over a temporary drive folder, its accounts and keys, and
//! what the client tests share.

#![allow(dead_code)]

use std::path::PathBuf;
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
