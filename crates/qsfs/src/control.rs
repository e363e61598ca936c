//! The control socket (`<cache>/qsfs.sock`, mode 0600, service-kit's framing: one JSON
//! request line, one JSON answer line): its requests and answers, their execution on the
//! [`Stack`] (and the web drive's accounts), and the client side. Used by `qsfs status`,
//! `qsfs rotate`, `qsfs evict`, `qsfs compact` and `qsfs user`.

use std::path::Path;
use std::sync::{Arc, Weak};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use service_kit::control::Service;

use crate::compact::CompactReport;
use crate::evict::EvictReport;
use crate::stack::Stack;
use crate::status::Status;
use qsfs_web::keyring::KeyInfo;
use qsfs_web::users::UserInfo;
use qsfs_web::WebState;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Status,
    /// Close every open segment and wait until everything staged is uploaded.
    Rotate,
    /// Evict every stored segment from the local cache (zdbfs's metadata with `metadata`).
    Evict {
        #[serde(default)]
        metadata: bool,
    },
    /// Compact stored segments at least `dead_percent` dead (the configured value if none),
    /// then rotate and wait until the emptied segments replaced their old copies.
    Compact {
        dead_percent: Option<u8>,
    },
    /// Manage the web drive's accounts.
    User(UserRequest),
}

/// `qsfs user …`: the accounts of the web drive (see `qsfs_web::users`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "user_op", rename_all = "snake_case")]
pub enum UserRequest {
    Add {
        name: String,
        password: String,
        #[serde(default)]
        admin: bool,
        quota: Option<u64>,
    },
    Del {
        name: String,
    },
    Passwd {
        name: String,
        password: String,
    },
    List,
    /// A new key of `kind` for account `name` (an app password for WebDAV and other
    /// programs, an S3 access key).
    NewKey {
        name: String,
        label: String,
        kind: KeyKind,
    },
    /// The keys of `kind` of account `name`.
    Keys {
        name: String,
        kind: KeyKind,
    },
    /// Revoke key `id` of `kind` of account `name`, or all of them.
    Revoke {
        name: String,
        id: Option<String>,
        kind: KeyKind,
    },
}

/// Which of an account's key rings a request is about.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    AppPassword,
    AccessKey,
}

impl KeyKind {
    fn ring(self, web: &WebState) -> &qsfs_web::keyring::KeyRing {
        match self {
            KeyKind::AppPassword => &web.app_passwords,
            KeyKind::AccessKey => &web.access_keys,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    Status(Box<Status>),
    /// After a rotate: whether every staged checkpoint reached the backends.
    Rotated {
        offloaded: bool,
    },
    Evicted(EvictReport),
    Compacted {
        report: CompactReport,
        /// Whether every staged checkpoint (the emptied segments with them) is uploaded.
        offloaded: bool,
    },
    /// The accounts, after `qsfs user list`.
    Users(Vec<UserInfo>),
    /// An account change was stored.
    UserChanged,
    /// A new key and its secret (the app password, the access key's secret): shown this
    /// once.
    KeyMade {
        info: KeyInfo,
        secret: String,
    },
    Keys(Vec<KeyInfo>),
    Revoked(usize),
    Error(String),
}

/// The control socket's service: requests executed on the stack, and on the web drive's
/// accounts while the web UI runs (held weakly: the drive holds the mount's root open,
/// which must go with the web UI before the unmount).
pub struct Control {
    pub stack: Arc<Stack>,
    pub web: Weak<WebState>,
}

impl Service for Control {
    type Request = Request;
    type Answer = Response;

    async fn answer(self: Arc<Self>, request: Request) -> Response {
        match request {
            Request::User(req) => self.user(req).await,
            req => execute(req, &self.stack).await,
        }
    }

    fn refuse(&self, why: String) -> Response {
        Response::Error(format!("bad request: {why}"))
    }
}

impl Control {
    async fn user(&self, req: UserRequest) -> Response {
        let Some(web) = self.web.upgrade() else {
            return Response::Error(
                "accounts belong to the web drive, which is not running ([qsfs] web_listen)".into(),
            );
        };
        // Hashing a password takes a few tens of milliseconds of CPU: not on the runtime.
        let done = tokio::task::spawn_blocking(move || {
            let users = &web.users;
            let account = |name: &str| {
                users
                    .get(name)
                    .ok_or_else(|| qsfs_web::users::UsersError::NoSuchUser(name.into()))
                    .map_err(|e| e.to_string())
            };
            let keys =
                |r: Result<Response, qsfs_web::keyring::KeyRingError>| r.map_err(|e| e.to_string());
            match req {
                UserRequest::List => return Ok(Response::Users(users.list())),
                UserRequest::NewKey { name, label, kind } => {
                    let user = account(&name)?;
                    return keys(
                        kind.ring(&web)
                            .create(&user, &label)
                            .map(|(info, secret)| Response::KeyMade { info, secret }),
                    );
                }
                UserRequest::Keys { name, kind } => {
                    let user = account(&name)?;
                    return Ok(Response::Keys(kind.ring(&web).list(Some(&user))));
                }
                UserRequest::Revoke { name, id, kind } => {
                    let user = account(&name)?;
                    return keys(
                        kind.ring(&web)
                            .revoke(Some(&user), id.as_deref())
                            .map(Response::Revoked),
                    );
                }
                UserRequest::Add {
                    name,
                    password,
                    admin,
                    quota,
                } => users.add(&name, &password, admin, quota),
                UserRequest::Del { name } => users.remove(&name),
                UserRequest::Passwd { name, password } => {
                    users.set_password(&name, &password).map(drop)
                }
            }
            .map_err(|e| e.to_string())
            .map(|()| Response::UserChanged)
        })
        .await;
        match done {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => Response::Error(e),
            Err(e) => Response::Error(e.to_string()),
        }
    }
}

async fn execute(req: Request, stack: &Arc<Stack>) -> Response {
    let answer = match req {
        Request::Status => Ok(Response::Status(Box::new(Status::gather(stack).await))),
        Request::Rotate => match on_blocking(stack, |s| s.rotate()).await {
            Ok(()) => Ok(Response::Rotated {
                offloaded: stack.offloader.upload_pending().await,
            }),
            Err(e) => Err(e),
        },
        Request::Evict { metadata } => on_blocking(stack, move |s| s.evict(true, metadata))
            .await
            .map(Response::Evicted),
        Request::Compact { dead_percent } => {
            let compacted = on_blocking(stack, move |s| {
                let report =
                    s.compact(dead_percent.unwrap_or(s.config.qsfs.compact_dead_percent))?;
                s.rotate()?;
                Ok(report)
            })
            .await;
            match compacted {
                Ok(report) => Ok(Response::Compacted {
                    report,
                    offloaded: stack.offloader.upload_pending().await,
                }),
                Err(e) => Err(e),
            }
        }
        Request::User(_) => Err("account requests are answered by Control::user".into()),
    };
    answer.unwrap_or_else(Response::Error)
}

/// Run `f` on the blocking pool (it touches the engine and the filesystem).
async fn on_blocking<T: Send + 'static>(
    stack: &Arc<Stack>,
    f: impl FnOnce(&Stack) -> anyhow::Result<T> + Send + 'static,
) -> Result<T, String> {
    let s = stack.clone();
    match tokio::task::spawn_blocking(move || f(&s)).await {
        Ok(r) => r.map_err(|e| format!("{e:#}")),
        Err(e) => Err(e.to_string()),
    }
}

/// Send `req` to the qsfs listening on `socket` and wait for the answer.
pub async fn call(socket: &Path, req: &Request) -> anyhow::Result<Response> {
    service_kit::control::call(socket, req)
        .await
        .with_context(|| format!("asking the qsfs on {} (is it running?)", socket.display()))
}
