//! API errors: a status code and a message the page shows as is, as JSON
//! `{"error": "..."}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_path(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// An I/O error on `what` (a path as the API shows it), mapped to the closest status.
    pub fn io(what: &str, e: std::io::Error) -> ApiError {
        use std::io::ErrorKind::*;
        if e.raw_os_error() == Some(libc::ELOOP) {
            return ApiError::bad_path(format!(
                "{what}: too many levels of symbolic links (a link loop)"
            ));
        }
        let status = match e.kind() {
            NotFound => StatusCode::NOT_FOUND,
            AlreadyExists | DirectoryNotEmpty => StatusCode::CONFLICT,
            // cap-std refuses paths that leave the root (symlinks included) this way.
            PermissionDenied => StatusCode::FORBIDDEN,
            NotADirectory | IsADirectory | InvalidInput | InvalidFilename => {
                StatusCode::BAD_REQUEST
            }
            StorageFull | QuotaExceeded => StatusCode::INSUFFICIENT_STORAGE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let reason = match e.kind() {
            NotFound => "no such file or folder".to_string(),
            AlreadyExists => "already exists".to_string(),
            DirectoryNotEmpty => "folder not empty".to_string(),
            PermissionDenied => "not allowed (outside the filesystem root or no permission)".into(),
            _ => e.to_string(),
        };
        ApiError::new(status, format!("{what}: {reason}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message });
        (self.status, axum::Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
