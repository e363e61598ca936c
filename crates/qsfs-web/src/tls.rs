//! TLS for the web drive (rustls, through axum-server): the configured certificate and key,
//! or a self-signed certificate made once and kept in a folder of the caller's choosing
//! (beside the configuration), whose SHA-256 fingerprint the caller prints so a browser's
//! warning can be checked. With TLS on, session cookies carry `Secure`.
//!
//! Owns: certificate files and the TLS listener. Must not touch: routes, sessions.

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use service_kit::Stop;
use sha2::{Digest, Sha256};

/// A certificate chain and its private key, PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// How long requests in flight may finish at stop.
const GRACE: Duration = Duration::from_secs(10);

/// The self-signed certificate kept in `dir` (`cert.pem`, `key.pem`, 0600), made for
/// `names` (host names or addresses) the first time.
pub fn self_signed(dir: &Path, names: Vec<String>) -> std::io::Result<TlsFiles> {
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    if files.cert.exists() && files.key.exists() {
        return Ok(files);
    }
    let made = rcgen::generate_simple_self_signed(names).map_err(std::io::Error::other)?;
    std::fs::create_dir_all(dir)?;
    let write = |path: &Path, text: &str| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()
    };
    // The key first: a certificate without its key is useless, and is made again.
    write(&files.key, &made.key_pair.serialize_pem())?;
    write(&files.cert, &made.cert.pem())?;
    Ok(files)
}

/// The SHA-256 fingerprint of the first certificate in a PEM file (`AB:CD:…`).
pub fn fingerprint(cert: &Path) -> std::io::Result<String> {
    let der = CertificateDer::from_pem_file(cert).map_err(std::io::Error::other)?;
    let digest = Sha256::digest(der.as_ref());
    Ok(digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":"))
}

/// Serve `app` (the drive's routes) over TLS on `listener` until `stop`.
pub async fn serve(
    listener: std::net::TcpListener,
    files: &TlsFiles,
    app: axum::Router,
    mut stop: Stop,
) -> std::io::Result<()> {
    // One process-wide choice of crypto for rustls (aws-lc-rs); an earlier one stands.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let config =
        axum_server::tls_rustls::RustlsConfig::from_pem_file(&files.cert, &files.key).await?;
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        stop.wait().await;
        stopper.graceful_shutdown(Some(GRACE));
    });
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    axum_server::from_tcp_rustls(listener, config)
        .handle(handle)
        .serve(app)
        .await
}
