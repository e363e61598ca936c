//! Serving an axum router on a listener until stop; requests in flight finish first.

use axum::Router;

use crate::task::Stop;

/// Serve `app` on `listener` until `stop`; `what` names the endpoint in the error log.
/// Handlers may ask for the client's address (`ConnectInfo<SocketAddr>`).
pub async fn serve(listener: tokio::net::TcpListener, app: Router, mut stop: Stop, what: &str) {
    let shutdown = async move { stop.wait().await };
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    // Answers go out as a head and then body pieces: with Nagle's algorithm on, a piece
    // waits for the peer's delayed ACK of the last (40 ms a request over WebDAV).
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY");
        }
    });
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(error = %e, "{what} stopped");
    }
}
