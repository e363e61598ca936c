//! The drive over TLS: a self-signed certificate made once and kept, a real rustls client
//! trusting only it, and session cookies marked `Secure`.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

#[tokio::test]
async fn the_drive_answers_over_tls_with_secure_cookies() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let files =
        qsfs_web::tls::self_signed(&tmp.path().join("web-tls"), vec!["localhost".into()]).unwrap();
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&files.key).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the key is the owner's only");
    let fingerprint = qsfs_web::tls::fingerprint(&files.cert).unwrap();
    assert_eq!(fingerprint.len(), 32 * 3 - 1, "{fingerprint}");
    let again = qsfs_web::tls::self_signed(&tmp.path().join("web-tls"), vec!["x".into()]).unwrap();
    assert_eq!(
        qsfs_web::tls::fingerprint(&again.cert).unwrap(),
        fingerprint,
        "kept, not remade"
    );

    let mut state = qsfs_web::WebState::open(&root, TOKEN.into(), None).unwrap();
    state.secure_cookies = true;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let tasks = service_kit::Tasks::new();
    let stop = tasks.stop_signal();
    let server = tokio::spawn(qsfs_web::serve(
        qsfs_web::Listener::Tls(listener, files.clone()),
        Arc::new(state),
        axum::Router::new(),
        stop,
    ));

    // A client that trusts this certificate alone.
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(&files.cert).unwrap();
    use rustls::pki_types::pem::PemObject;
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(&pem).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let body = format!(r#"{{"token":"{TOKEN}"}}"#);
    let request = format!(
        "POST /api/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    // The listener is bound already: the connection waits in its backlog until served.
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tls.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let cookie = answer
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_default();
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    tasks.stop(std::time::Duration::from_secs(5)).await;
    tokio::time::timeout(std::time::Duration::from_secs(30), server)
        .await
        .expect("the server stops")
        .unwrap();
}
