//! Resumable uploads over tus in process over a plain folder: an upload cut at 60 % (a
//! body cut off, then the server opened again as after a restart) resumes from the offset
//! it reported and the file appears whole only at the end; checksums, offsets, quotas,
//! versions, termination and other parties' uploads.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, StatusCode};
use base64::Engine as _;
use common::{client_of, Client, Reply, TOKEN};
use sha1::Digest as _;

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

async fn create(c: &Client, path: &str, length: u64, extra: &[(&str, &str)]) -> Reply {
    let mut b = c
        .req(Method::POST, "/api/tus")
        .header("tus-resumable", "1.0.0")
        .header("upload-length", length.to_string())
        .header("upload-metadata", format!("path {}", b64(path.as_bytes())));
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    c.send(b.body(Body::empty()).unwrap()).await
}

async fn patch(c: &Client, at: &str, offset: u64, body: Body, extra: &[(&str, &str)]) -> Reply {
    let mut b = c
        .req(Method::PATCH, at)
        .header("tus-resumable", "1.0.0")
        .header("upload-offset", offset.to_string())
        .header(header::CONTENT_TYPE, "application/offset+octet-stream");
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    c.send(b.body(body).unwrap()).await
}

async fn offset(c: &Client, at: &str) -> u64 {
    let r = c
        .send(
            c.req(Method::HEAD, at)
                .header("tus-resumable", "1.0.0")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["tus-resumable"], "1.0.0");
    r.headers["upload-offset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn open(dir: &std::path::Path) -> Arc<qsfs_web::WebState> {
    Arc::new(qsfs_web::WebState::open(dir, TOKEN.into(), None).unwrap())
}

#[tokio::test]
async fn an_upload_cut_at_60_percent_resumes_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let st = open(dir.path());
    st.users
        .add("alice", "alice's password", false, None)
        .unwrap();
    let mut c = client_of(Arc::clone(&st));
    assert_eq!(c.sign_in("alice", "alice's password").await, StatusCode::OK);

    let options = c
        .send(
            c.req(Method::OPTIONS, "/api/tus")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(options.status, StatusCode::NO_CONTENT);
    assert!(options.headers["tus-extension"]
        .to_str()
        .unwrap()
        .contains("checksum"));
    let r = create(&c, "/big/file.bin", data.len() as u64, &[]).await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let at = r.headers[header::LOCATION].to_str().unwrap().to_string();

    // 200,000 bytes whole, with a checksum; then a body cut off after 400,000 more.
    let first = &data[..200_000];
    let sum = format!("sha1 {}", b64(&sha1::Sha1::digest(first)));
    let r = patch(
        &c,
        &at,
        0,
        Body::from(first.to_vec()),
        &[("upload-checksum", &sum)],
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.headers["upload-offset"], "200000");
    let cut: Vec<Result<bytes::Bytes, std::io::Error>> = vec![
        Ok(bytes::Bytes::copy_from_slice(&data[200_000..600_000])),
        Err(std::io::Error::other("the link dropped")),
    ];
    let r = patch(
        &c,
        &at,
        200_000,
        Body::from_stream(futures_util::stream::iter(cut)),
        &[],
    )
    .await;
    assert!(r.status.is_client_error(), "{}", r.status);
    assert_eq!(
        offset(&c, &at).await,
        600_000,
        "the bytes that came are kept"
    );
    assert!(
        !dir.path().join("home/alice/big/file.bin").exists(),
        "nothing half-written shows"
    );

    // qsfs restarts (a new server over the same folder; sessions are gone).
    drop(c);
    let st = open(dir.path());
    let mut c = client_of(Arc::clone(&st));
    assert_eq!(c.sign_in("alice", "alice's password").await, StatusCode::OK);
    assert_eq!(offset(&c, &at).await, 600_000);
    // A piece whose checksum does not match is dropped whole.
    let wrong = format!("sha256 {}", b64(&[0u8; 32]));
    let r = patch(
        &c,
        &at,
        600_000,
        Body::from(data[600_000..].to_vec()),
        &[("upload-checksum", &wrong)],
    )
    .await;
    assert_eq!(r.status.as_u16(), 460);
    assert_eq!(offset(&c, &at).await, 600_000);
    // The wrong offset is refused.
    let r = patch(&c, &at, 500_000, Body::from(vec![1u8]), &[]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = patch(&c, &at, 600_000, Body::from(data[600_000..].to_vec()), &[]).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.headers["upload-offset"], "1000000");
    assert_eq!(
        std::fs::read(dir.path().join("home/alice/big/file.bin")).unwrap(),
        data
    );
    let left: Vec<_> = std::fs::read_dir(dir.path().join(".qsfs/uploads/alice"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "the part and its record are gone");
    let r = c
        .send(
            c.req(Method::HEAD, &at)
                .header("tus-resumable", "1.0.0")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn uploads_are_checked_and_belong_to_their_party() {
    let dir = tempfile::tempdir().unwrap();
    let st = open(dir.path());
    st.users
        .add("bob", "bob's password", false, Some(1000))
        .unwrap();
    st.users
        .add("carol", "carol's password", false, None)
        .unwrap();
    let mut bob = client_of(Arc::clone(&st));
    assert_eq!(bob.sign_in("bob", "bob's password").await, StatusCode::OK);
    let mut carol = client_of(Arc::clone(&st));
    assert_eq!(
        carol.sign_in("carol", "carol's password").await,
        StatusCode::OK
    );

    // No version header: 412. Over the quota, with what is pending counted: 507.
    let r = bob
        .send(
            bob.req(Method::POST, "/api/tus")
                .header("upload-length", "10")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(r.headers["tus-resumable"], "1.0.0");
    let r = create(&bob, "/a.bin", 600, &[]).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let at = r.headers[header::LOCATION].to_str().unwrap().to_string();
    let r = create(&bob, "/b.bin", 600, &[]).await;
    assert_eq!(
        r.status,
        StatusCode::INSUFFICIENT_STORAGE,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    // Another party cannot see or write it.
    let r = carol
        .send(
            carol
                .req(Method::HEAD, &at)
                .header("tus-resumable", "1.0.0")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        patch(&carol, &at, 0, Body::from(vec![0u8; 10]), &[])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // More than announced: refused.
    let r = patch(&bob, &at, 0, Body::from(vec![0u8; 700]), &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Termination.
    let r = bob
        .send(
            bob.req(Method::DELETE, &at)
                .header("tus-resumable", "1.0.0")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        create(&bob, "/b.bin", 600, &[]).await.status,
        StatusCode::CREATED
    );
    // overwrite=false refuses an existing file; `..` and the drive's folder are refused.
    bob.put("/exists.txt", b"x", &[]).await;
    let no = format!("overwrite {}", b64(b"false"));
    let r = bob
        .send(
            bob.req(Method::POST, "/api/tus")
                .header("tus-resumable", "1.0.0")
                .header("upload-length", "1")
                .header(
                    "upload-metadata",
                    format!("path {},{no}", b64(b"/exists.txt")),
                )
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    for bad in ["/../x", "/.qsfs/users.json"] {
        assert_eq!(
            create(&bob, bad, 1, &[]).await.status,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    for id in ["../../users.json", "x"] {
        let r = patch(
            &bob,
            &format!("/api/tus/{id}"),
            0,
            Body::from(vec![1u8]),
            &[],
        )
        .await;
        assert!(
            r.status == StatusCode::NOT_FOUND || r.status == StatusCode::BAD_REQUEST,
            "{id}: {}",
            r.status
        );
    }
}
