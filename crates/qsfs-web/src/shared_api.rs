//! Shared folders over HTTP: `GET /api/shared` lists them (an admin: every folder with its
//! members; anyone else: the folders it is a member of, with its access); an admin makes
//! one or sets its members with `POST /api/shared {"name","members":{"alice":"write",
//! "bob":"read"}}` and forgets one with `POST /api/shared/delete {"name"}` (its files stay
//! at `shared/NAME`). Members then work in it with `space=NAME` on every request.
//!
//! Owns: these routes. Must not touch: the list's format ([`crate::shared`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::shared::{Access, Member, SharedError};
use crate::WebState;

impl From<SharedError> for ApiError {
    fn from(e: SharedError) -> ApiError {
        let status = match e {
            SharedError::BadName | SharedError::Refused(_) => StatusCode::BAD_REQUEST,
            SharedError::NotFound(_) => StatusCode::NOT_FOUND,
            SharedError::Io(_) | SharedError::List(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

/// `GET /api/shared` → `[{"name","access"}]` of the caller's folders, and for an admin
/// `[{"name","access":"write","members":{"alice":"write"}}]` of every folder.
pub async fn list(
    State(st): State<Arc<WebState>>,
    Extension(me): Extension<Caller>,
) -> Json<Vec<serde_json::Value>> {
    if me.admin {
        return Json(
            st.shared
                .list()
                .into_iter()
                .map(|f| {
                    let members: BTreeMap<String, Access> =
                        f.members.into_iter().map(|m| (m.name, m.access)).collect();
                    serde_json::json!({ "name": f.name, "access": Access::Write, "members": members })
                })
                .collect(),
        );
    }
    let folders = st
        .users
        .get(&me.name)
        .map(|u| st.shared.of(&u))
        .unwrap_or_default();
    Json(
        folders
            .into_iter()
            .map(|(name, access)| serde_json::json!({ "name": name, "access": access }))
            .collect(),
    )
}

#[derive(Deserialize)]
pub struct SetShared {
    name: String,
    #[serde(default)]
    members: BTreeMap<String, Access>,
}

/// `POST /api/shared {"name","members"}` (admins): make the folder or set its members.
pub async fn set(
    State(st): State<Arc<WebState>>,
    Extension(me): Extension<Caller>,
    Json(b): Json<SetShared>,
) -> ApiResult<Json<serde_json::Value>> {
    me.admin_only("shared folders are made by")?;
    let mut members = Vec::new();
    for (name, access) in b.members {
        let user = st
            .users
            .get(&name)
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no user {name}")))?;
        members.push(Member {
            name,
            uid: user.uid,
            access,
        });
    }
    let (st2, name) = (Arc::clone(&st), b.name.clone());
    tokio::task::spawn_blocking(move || st2.shared.set(&name, members))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(Json(serde_json::json!({ "shared": b.name })))
}

#[derive(Deserialize)]
pub struct Named {
    name: String,
}

/// `POST /api/shared/delete {"name"}` (admins): members lose the folder; its files stay.
pub async fn remove(
    State(st): State<Arc<WebState>>,
    Extension(me): Extension<Caller>,
    Json(b): Json<Named>,
) -> ApiResult<Json<serde_json::Value>> {
    me.admin_only("shared folders are made by")?;
    let (st2, name) = (Arc::clone(&st), b.name.clone());
    tokio::task::spawn_blocking(move || st2.shared.remove(&name))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(Json(serde_json::json!({ "removed": b.name })))
}
