//! [`Store`] on a `zdb` server through `zdb-client`. The client is async; this store bridges it
//! with a small private tokio runtime (`block_on` from the FUSE threads). Every request has a
//! timeout, so a backend that goes away makes calls fail (EIO to the application) in bounded
//! time instead of hanging.

use super::{Ns, Part, Store};
use crate::error::StoreError;
use std::time::Duration;
use zdb_client::{Client, ClientConfig, ClientError, Endpoint};

/// Where one namespace lives on a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteNs {
    pub endpoint: Endpoint,
    pub name: String,
    pub password: Option<String>,
}

/// Remote backends of the three namespaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteConfig {
    /// Meta, data, temp.
    pub namespaces: [RemoteNs; 3],
    /// Create missing namespaces (in sequential mode).
    pub autons: bool,
    /// Upper bound of one request; a dead backend fails calls after this long.
    pub timeout: Duration,
}

/// Three namespaces on zdb servers.
pub struct RemoteStore {
    rt: tokio::runtime::Runtime,
    clients: [Client; 3],
    names: [String; 3],
    timeout: Duration,
}

fn map(ns: Ns, e: ClientError) -> StoreError {
    if let Some(m) = e
        .server_message()
        .filter(|m| m.starts_with("No space left"))
    {
        return StoreError::Full {
            ns: ns.default_name(),
            msg: m.to_string(),
        };
    }
    if e.is_connection_error() || matches!(e, ClientError::Timeout(_)) {
        StoreError::Unavailable {
            ns: ns.default_name(),
            msg: e.to_string(),
        }
    } else {
        StoreError::Backend {
            ns: ns.default_name(),
            msg: e.to_string(),
        }
    }
}

/// `autons`: create namespace `name` and make it sequential. A server started with
/// `--mode seq` creates it sequential already and refuses NSSET mode (one runtime mode), so
/// the mode is set only when NSINFO says it differs (as 0-db-fs does); a `--mode user`
/// server can hold no sequential namespace at all.
async fn create_sequential(
    admin: &Client,
    name: &str,
) -> Result<Result<(), crate::Error>, ClientError> {
    admin.nsnew(name).await?;
    if admin.nsinfo(name).await?.mode() == Some("sequential") {
        return Ok(Ok(()));
    }
    match admin.nsset(name, "mode", "seq").await {
        Ok(()) => Ok(Ok(())),
        Err(ClientError::Server(msg)) => Ok(Err(StoreError::ServerNotSeq {
            ns: name.to_owned(),
            msg,
        }
        .into())),
        Err(e) => Err(e),
    }
}

impl RemoteStore {
    /// Connect, check (or with `autons` create) the namespaces.
    pub fn connect(config: RemoteConfig) -> Result<RemoteStore, crate::Error> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("zdbfs-remote")
            .enable_all()
            .build()?;
        let mut clients = Vec::new();
        for (ns, spec) in Ns::ALL.iter().zip(config.namespaces.iter()) {
            let cfg = ClientConfig::new(spec.endpoint.clone())
                .with_request_timeout(config.timeout)
                .with_connect_timeout(config.timeout);
            let admin = Client::new(cfg.clone()).map_err(|e| map(*ns, e))?;
            let info = rt.block_on(admin.nsinfo(&spec.name));
            match info {
                Ok(info) => {
                    if info.mode() != Some("sequential") {
                        return Err(StoreError::NotSeq(spec.name.clone()).into());
                    }
                }
                Err(ClientError::Server(_)) if config.autons => {
                    rt.block_on(create_sequential(&admin, &spec.name))
                        .map_err(|e| map(*ns, e))??;
                }
                Err(ClientError::Server(_)) => {
                    return Err(StoreError::NoNamespace(spec.name.clone()).into())
                }
                Err(e) => return Err(map(*ns, e).into()),
            }
            let client = Client::new(cfg.with_namespace(spec.name.clone(), spec.password.clone()))
                .map_err(|e| map(*ns, e))?;
            clients.push(client);
        }
        let clients: [Client; 3] = clients
            .try_into()
            .map_err(|_| crate::Error::Corrupt("client count".into()))?;
        Ok(RemoteStore {
            rt,
            clients,
            names: config.namespaces.clone().map(|n| n.name),
            timeout: config.timeout,
        })
    }

    fn run<T>(
        &self,
        ns: Ns,
        f: impl std::future::Future<Output = Result<T, ClientError>>,
    ) -> Result<T, StoreError> {
        let timeout = self.timeout + Duration::from_secs(1);
        self.rt.block_on(async {
            match tokio::time::timeout(timeout, f).await {
                Ok(r) => r.map_err(|e| map(ns, e)),
                Err(_) => Err(map(ns, ClientError::Timeout(timeout))),
            }
        })
    }

    fn client(&self, ns: Ns) -> &Client {
        &self.clients[ns.index()]
    }
}

impl Store for RemoteStore {
    fn append(&self, ns: Ns, value: &[u8]) -> Result<u64, StoreError> {
        self.run(ns, self.client(ns).set_seq(value))
    }

    fn update(&self, ns: Ns, id: u64, value: &[u8]) -> Result<(), StoreError> {
        self.run(ns, self.client(ns).update_seq(id, value))
            .map(|_| ())
    }

    fn get(&self, ns: Ns, id: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(ns, self.client(ns).get(&id.to_le_bytes()))
            .map(|v| v.map(|b| b.to_vec()))
    }

    fn append_parts(&self, ns: Ns, parts: &[Part], out: &mut Vec<u8>) -> Result<usize, StoreError> {
        let keys: Vec<[u8; 8]> = parts.iter().map(|p| p.id.to_le_bytes()).collect();
        let records = self.run(ns, self.client(ns).get_many(&keys))?;
        for (n, (part, record)) in parts.iter().zip(records).enumerate() {
            match record {
                Some(record) => part.append(&record, out),
                None => return Ok(n),
            }
        }
        Ok(parts.len())
    }

    fn delete(&self, ns: Ns, id: u64) -> Result<(), StoreError> {
        match self.run(ns, self.client(ns).del(&id.to_le_bytes())) {
            Err(StoreError::Backend { msg, .. }) if msg.contains("not found") => Ok(()),
            r => r,
        }
    }

    fn ids(&self, ns: Ns) -> Result<Vec<u64>, StoreError> {
        let mut out = Vec::new();
        let mut cursor: Option<Vec<u8>> = None;
        while let Some((next, items)) = self.run(ns, self.client(ns).scan(cursor.as_deref()))? {
            out.extend(items.iter().filter_map(|e| super::engine::parse_id(&e.key)));
            cursor = Some(next.to_vec());
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// The server decides durability (`zdb --sync`); nothing to do from here.
    fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn used_bytes(&self, ns: Ns) -> Result<u64, StoreError> {
        let info = self.run(ns, self.client(ns).nsinfo(&self.names[ns.index()]))?;
        Ok(info.data_size_bytes().unwrap_or(0))
    }
}
