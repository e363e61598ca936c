//! Client error type.

use std::time::Duration;

use thiserror::Error;

/// Everything that can go wrong talking to a zdb server.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The server answered with an error reply; the text is the server's, without the
    /// leading `-` (e.g. `"No more data"`, `"Permission denied"`).
    #[error("server error: {0}")]
    Server(String),
    /// A socket operation failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The server sent bytes that are not valid RESP2 or exceed the client's limits.
    #[error("protocol error: {0}")]
    Protocol(#[from] resp::ProtocolError),
    /// The server closed the connection before replying.
    #[error("connection closed by server")]
    Closed,
    /// Connecting (TCP or unix socket) did not finish in time.
    #[error("timed out connecting to {endpoint} after {timeout:?}")]
    ConnectTimeout {
        /// Where we tried to connect.
        endpoint: String,
        /// The configured connect timeout.
        timeout: Duration,
    },
    /// A request did not complete in time; the connection is discarded.
    #[error("request timed out after {0:?}")]
    Timeout(Duration),
    /// Nothing moved on the connection (no byte sent, none received) for this long while
    /// a request waited: the peer or the path to it went silent. The connection is
    /// discarded.
    #[error("no answer: nothing moved on the connection for {0:?}")]
    Stalled(Duration),
    /// The connection was left unusable by an earlier failure or cancelled request.
    #[error("connection is broken by an earlier failure")]
    Broken,
    /// The reply has a type or shape the command does not produce.
    #[error("unexpected reply to {command}: {detail}")]
    UnexpectedReply {
        /// The command that was sent.
        command: &'static str,
        /// What was wrong with the reply.
        detail: String,
    },
    /// An endpoint string could not be understood.
    #[error("invalid endpoint {0:?}")]
    InvalidEndpoint(String),
    /// A configuration value is not usable (e.g. a pool size of zero).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
}

impl ClientError {
    /// The server's error text, if this is a server error reply.
    pub fn server_message(&self) -> Option<&str> {
        match self {
            ClientError::Server(msg) => Some(msg),
            _ => None,
        }
    }

    /// True if the connection that produced this error cannot be used again (as opposed
    /// to a server error reply or an unexpected reply shape, after which the connection
    /// is still in sync).
    pub fn is_connection_error(&self) -> bool {
        matches!(
            self,
            ClientError::Io(_)
                | ClientError::Protocol(_)
                | ClientError::Closed
                | ClientError::ConnectTimeout { .. }
                | ClientError::Timeout(_)
                | ClientError::Stalled(_)
                | ClientError::Broken
        )
    }

    pub(crate) fn unexpected(command: &'static str, detail: impl Into<String>) -> Self {
        ClientError::UnexpectedReply {
            command,
            detail: detail.into(),
        }
    }
}
