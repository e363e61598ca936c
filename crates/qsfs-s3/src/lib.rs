//! # qsfs-s3: the web drive over the S3 API
//!
//! Tools that speak S3 (rclone, restic, backup programs, boto3 and the AWS SDKs, s3fs) reach
//! the drive on its own listener (`[qsfs] s3_listen`), signed with an account's access keys
//! ([`qsfs_web::keyring`]; made with `qsfs user access-key` or in the web page). A bucket is
//! a top folder of what the account sees (its home folder; an admin's, the whole drive), an
//! object a file under it, its key the file's path: no copy, no second namespace, the same
//! files the mount, the web page and WebDAV show. Keys that are no valid path are refused
//! with S3's error, never mangled ([`names`]).
//!
//! Durability, as the web API's: an object written (PUT, copy, completed multipart upload)
//! is acknowledged after it is fsync'ed beside its target and renamed over it, so a reader
//! sees the old object or the new one; an acknowledged part is fsync'ed with the record of
//! its upload ([`multipart`]).
//!
//! The protocol (SigV4 and SigV2 in headers or the query, aws-chunked bodies, XML, errors) is
//! the `s3s` crate's; what it works on is [`Gateway`].
//!
//! Owns: the S3 listener's service, objects' metadata ([`meta`]), listings ([`listing`]),
//! multipart uploads. Must not touch: anything past the caller's folder (every path goes
//! through its `cap_std` folder), accounts' files (`qsfs_web` keeps them).

#![forbid(unsafe_code)]

pub mod listing;
pub mod meta;
pub mod multipart;
pub mod names;
pub mod objects;

use std::io;
use std::sync::Arc;

use axum::error_handling::HandleError;
use axum::http::StatusCode;
use axum::Router;
use qsfs_web::auth::Caller;
use qsfs_web::WebState;
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::path::S3Path;
use s3s::service::S3ServiceBuilder;
use s3s::{s3_error, S3Error, S3ErrorCode, S3Request, S3Result};

/// The S3 service: every request signed by an access key, run as the key's account.
pub struct Gateway {
    st: Arc<WebState>,
    uploads: multipart::Uploads,
    /// Callers rooted lately, per access key: a request need not open the account's
    /// folder again (the key and its account are still checked on every request).
    callers: std::sync::Mutex<std::collections::HashMap<String, (Caller, std::time::Instant)>>,
}

/// How long a rooted caller is reused.
const CALLER_FRESH: std::time::Duration = std::time::Duration::from_secs(5);
/// Most callers kept.
const MAX_CALLERS: usize = 1024;

/// The S3 routes, to serve on their own listener.
pub fn router(st: Arc<WebState>) -> Router {
    let traffic = Arc::clone(&st.traffic);
    let gateway = Gateway {
        st: Arc::clone(&st),
        uploads: multipart::Uploads::default(),
        callers: std::sync::Mutex::default(),
    };
    let mut builder = S3ServiceBuilder::new(gateway);
    builder.set_auth(Keys {
        st: Arc::clone(&st),
    });
    builder.set_access(Confined { st });
    builder.set_validation(names::FolderNames);
    let service = HandleError::new(builder.build(), |e: s3s::HttpError| async move {
        tracing::warn!(error = ?e, "S3 request failed below the protocol");
        (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
    });
    let routes = Router::new().fallback_service(service);
    qsfs_web::traffic::counted(routes, &traffic, qsfs_web::traffic::Protocol::S3)
}

/// Secrets of access keys whose account still exists.
struct Keys {
    st: Arc<WebState>,
}

impl Keys {
    /// The account an access key belongs to, and the key's secret.
    fn owner_and_secret(
        st: &WebState,
        access_key: &str,
    ) -> S3Result<(qsfs_web::users::User, String)> {
        let unknown = || s3_error!(InvalidAccessKeyId, "no such access key (revoked?)");
        let owner = st.access_keys.secret_of(access_key).ok_or_else(unknown)?;
        // The uid: a later account of the same name does not inherit the key.
        let user = st
            .users
            .get(&owner.user)
            .filter(|u| u.uid == owner.uid)
            .ok_or_else(unknown)?;
        Ok((user, owner.secret))
    }

    fn owner(st: &WebState, access_key: &str) -> S3Result<qsfs_web::users::User> {
        Self::owner_and_secret(st, access_key).map(|(user, _)| user)
    }
}

#[async_trait::async_trait]
impl S3Auth for Keys {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        let (_, secret) = Keys::owner_and_secret(&self.st, access_key)?;
        Ok(SecretKey::from(secret))
    }
}

/// Who may do what: signed requests only; a bucket another account has is refused with
/// 403 (as S3 answers for a bucket of someone else) rather than looked for in the caller's
/// folder.
struct Confined {
    st: Arc<WebState>,
}

#[async_trait::async_trait]
impl S3Access for Confined {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let Some(credentials) = cx.credentials() else {
            return Err(s3_error!(
                AccessDenied,
                "sign the request with an access key"
            ));
        };
        let user = Keys::owner(&self.st, &credentials.access_key)?;
        let bucket = match cx.s3_path() {
            S3Path::Root => return Ok(()),
            S3Path::Bucket { bucket } | S3Path::Object { bucket, .. } => bucket.to_string(),
        };
        if user.admin || !names::valid_bucket(&bucket) {
            return Ok(());
        }
        let st = Arc::clone(&self.st);
        let foreign = tokio::task::spawn_blocking(move || {
            let has = |name: &str| {
                st.root
                    .metadata(format!("{}/{name}/{bucket}", qsfs_web::users::HOMES))
                    .is_ok_and(|m| m.is_dir())
            };
            !has(&user.name)
                && st
                    .users
                    .list()
                    .iter()
                    .any(|u| u.name != user.name && has(&u.name))
        })
        .await
        .map_err(join_error)?;
        if foreign {
            return Err(s3_error!(AccessDenied, "the bucket is another account's"));
        }
        Ok(())
    }
}

impl Gateway {
    /// `NoSuchBucket` unless the caller has bucket `bucket` (HeadBucket, GetBucketLocation).
    async fn bucket_exists<T>(&self, req: &S3Request<T>, bucket: String) -> S3Result<()> {
        let me = self.caller(req).await?;
        on_root(&me, move |root| {
            objects::need_bucket(root, &bucket).map(drop)
        })
        .await
    }

    /// The account a (verified) request runs as, rooted at its folder.
    async fn caller<T>(&self, req: &S3Request<T>) -> S3Result<Caller> {
        let Some(credentials) = &req.credentials else {
            return Err(s3_error!(
                AccessDenied,
                "sign the request with an access key"
            ));
        };
        let user = Keys::owner(&self.st, &credentials.access_key)?;
        let quota = user.quota.filter(|_| !user.admin);
        let same = |c: &Caller| c.name == user.name && c.admin == user.admin && c.quota == quota;
        {
            let map = self.callers.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((c, at)) = map.get(&credentials.access_key) {
                if at.elapsed() < CALLER_FRESH && same(c) {
                    return Ok(c.clone());
                }
            }
        }
        let caller = Caller::signed_in(
            &self.st,
            user.name.clone(),
            user.admin,
            quota,
            None,
            &req.method,
            String::new(),
        )
        .await
        .map_err(|e| S3Error::with_message(S3ErrorCode::AccessDenied, e.message))?;
        let mut map = self.callers.lock().unwrap_or_else(|p| p.into_inner());
        qsfs_web::bounded::make_room(&mut map, MAX_CALLERS, |(_, at)| *at);
        map.insert(
            credentials.access_key.clone(),
            (caller.clone(), std::time::Instant::now()),
        );
        Ok(caller)
    }
}

/// An S3 error of code `code` (one S3 does not define) with HTTP status `status`.
pub(crate) fn custom_error(code: &'static str, status: StatusCode, message: String) -> S3Error {
    let mut e = S3Error::with_message(S3ErrorCode::Custom(code.into()), message);
    e.set_status_code(status);
    e
}

/// The S3 error for a filesystem error on `what` (a bucket, a key).
pub(crate) fn io_error(what: &str, e: &io::Error) -> S3Error {
    match e.raw_os_error() {
        Some(libc::ENOSPC | libc::EDQUOT) => custom_error(
            "StorageFull",
            StatusCode::INSUFFICIENT_STORAGE,
            format!("{what}: the drive is full"),
        ),
        Some(libc::ENOTDIR | libc::EISDIR | libc::EEXIST) => custom_error(
            "PathConflict",
            StatusCode::CONFLICT,
            format!(
                "{what}: a file and a folder would share a path (keys are file paths here: \
                 `a` and `a/b` cannot both be objects)"
            ),
        ),
        Some(libc::ENAMETOOLONG) => s3_error!(KeyTooLongError, "{what}: name too long"),
        _ => match e.kind() {
            io::ErrorKind::NotFound => s3_error!(NoSuchKey, "{what}: no such object"),
            io::ErrorKind::PermissionDenied => s3_error!(AccessDenied, "{what}: {e}"),
            _ => {
                tracing::warn!(what, error = %e, "S3 request failed");
                s3_error!(InternalError, "{what}: {e}")
            }
        },
    }
}

/// The error of a blocking task that did not finish (it panicked).
pub(crate) fn join_error(e: tokio::task::JoinError) -> S3Error {
    s3_error!(InternalError, "{e}")
}

/// Run a blocking filesystem operation on the caller's folder.
pub(crate) async fn on_root<T: Send + 'static>(
    me: &Caller,
    f: impl FnOnce(&cap_std::fs::Dir) -> S3Result<T> + Send + 'static,
) -> S3Result<T> {
    let root = Arc::clone(&me.root);
    tokio::task::spawn_blocking(move || f(&root))
        .await
        .map_err(join_error)?
}

mod service;
