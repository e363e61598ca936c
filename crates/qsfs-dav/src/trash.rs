//! DELETE into the trash: what a WebDAV client deletes (a file, a whole folder) goes to its
//! owner's trash as one item, restorable from the web page for the trash's days, as a
//! deletion there does. dav-server would remove a folder file by file, for good; so a
//! DELETE is answered here unless a lock lies on or under the path (or above it), when
//! dav-server's lock checks decide and delete for good.

use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use dav_server::davpath::DavPath;
use dav_server::ls::DavLockSystem;
use dav_server::memls::MemLs;
use qsfs_web::WebState;

use crate::fs::Access;

/// Answer a DELETE of `uri` by moving its target to the trash; `None` to leave it to
/// dav-server (locks involved).
pub(crate) async fn delete(
    st: &std::sync::Arc<WebState>,
    locks: &MemLs,
    prefix: &str,
    uri: &Uri,
    access: &Access,
) -> Option<Response> {
    let mut path = DavPath::new(uri.path()).ok()?;
    path.set_prefix(prefix).ok()?;
    if locks.check(&path, None, true, true, &[]).await.is_err() {
        return None;
    }
    if !access.writable {
        return Some(StatusCode::FORBIDDEN.into_response());
    }
    let Ok(rel) = crate::fs::rel(&path) else {
        return Some(StatusCode::FORBIDDEN.into_response());
    };
    if rel.is_root() {
        return Some(StatusCode::FORBIDDEN.into_response());
    }
    let me = &access.caller;
    st.usage.forget(&me.name);
    let (st, root, party) = (
        std::sync::Arc::clone(st),
        std::sync::Arc::clone(&me.root),
        me.place(),
    );
    let shown = rel.display();
    let moved = tokio::task::spawn_blocking(move || st.trash.put(&party, &root, &rel)).await;
    Some(match moved {
        Ok(Ok(_)) => StatusCode::NO_CONTENT.into_response(),
        Ok(Err(e)) => {
            if e.status.is_server_error() {
                tracing::warn!(path = %shown, error = %e.message, "WebDAV DELETE into the trash");
            }
            e.status.into_response()
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    })
}
