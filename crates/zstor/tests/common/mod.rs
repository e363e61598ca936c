//! Helpers shared by the integration tests: in-process zdb servers and configs.

#![allow(dead_code)]

pub mod run;

use std::path::Path;

use zdb_client::{Client, ClientConfig};

pub struct Zdb {
    pub addr: String,
    shutdown: zdb_server::ShutdownHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Zdb {
    /// Start a server on its own runtime and thread.
    pub fn start(dir: &Path) -> Zdb {
        let mut config = zdb_server::ServerConfig::new(dir.join("data"), dir.join("index"));
        config.listen = "127.0.0.1".into();
        config.port = 0;
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            rt.block_on(async move {
                let server = zdb_server::Server::bind(config).await.expect("bind");
                let addr = server.local_addr().expect("tcp address");
                tx.send((addr, server.shutdown_handle())).expect("report");
                server.run().await.expect("serve");
            });
        });
        let (addr, shutdown) = rx.recv().expect("server started");
        Zdb {
            addr: addr.to_string(),
            shutdown,
            thread: Some(thread),
        }
    }

    pub fn stop(&mut self) {
        self.shutdown.shutdown();
        if let Some(t) = self.thread.take() {
            t.join().expect("server thread");
        }
    }
}

impl Drop for Zdb {
    fn drop(&mut self) {
        self.stop();
    }
}

pub async fn make_namespace(addr: &str, name: &str, mode: &str) {
    let c = Client::connect(ClientConfig::new(addr.parse().expect("endpoint")))
        .await
        .expect("connect");
    c.nsnew(name).await.expect("nsnew");
    c.nsset(name, "mode", mode).await.expect("nsset mode");
}

/// `data` data backends (sequential namespace `data`) and 4 metadata backends (user
/// namespace `meta`) started under `dir`, and a config for them with data key `key`.
pub async fn cluster(dir: &Path, data: usize, key: &str) -> (Vec<Zdb>, Vec<Zdb>, String) {
    let data: Vec<Zdb> = (0..data)
        .map(|i| Zdb::start(&dir.join(format!("d{i}"))))
        .collect();
    let meta: Vec<Zdb> = (0..4)
        .map(|i| Zdb::start(&dir.join(format!("m{i}"))))
        .collect();
    for z in &data {
        make_namespace(&z.addr, "data", "seq").await;
    }
    for z in &meta {
        make_namespace(&z.addr, "meta", "user").await;
    }
    let text = config_text(
        &data.iter().collect::<Vec<_>>(),
        &meta.iter().collect::<Vec<_>>(),
        key,
    );
    (data, meta, text)
}

pub fn config_text(data: &[&Zdb], meta: &[&Zdb], key: &str) -> String {
    let mut s = format!(
        "minimal_shards = 4\nexpected_shards = 6\nredundant_groups = 0\nredundant_nodes = 0\n\
         root = \"/virtualroot\"\n\
         [encryption]\nalgorithm = \"AES\"\nkey = \"{key}\"\n\
         [compression]\nalgorithm = \"snappy\"\n\
         [meta]\ntype = \"zdb\"\n[meta.config]\nprefix = \"test\"\n\
         [meta.config.encryption]\nalgorithm = \"AES\"\nkey = \"{}\"\n",
        "11".repeat(32)
    );
    for z in meta {
        s += &format!(
            "[[meta.config.backends]]\naddress = \"{}\"\nnamespace = \"meta\"\n",
            z.addr
        );
    }
    s += "[[groups]]\n";
    for z in data {
        s += &format!(
            "[[groups.backends]]\naddress = \"{}\"\nnamespace = \"data\"\n",
            z.addr
        );
    }
    s
}
