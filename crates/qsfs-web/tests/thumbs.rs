//! Thumbnails over the API: made on first view and kept, a new one when the picture
//! changes, revalidation, refusals of what is no picture.

mod common;

use axum::body::Body;
use axum::http::{header, Method, StatusCode};
use common::client;

fn png(w: u32, h: u32, shade: u8) -> Vec<u8> {
    let picture = image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
        w,
        h,
        image::Rgb([shade, 10, 10]),
    ));
    let mut out = std::io::Cursor::new(Vec::new());
    picture.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[tokio::test]
async fn thumbnails_are_made_once_and_follow_the_picture() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = client(dir.path());
    c.login().await;
    c.put("/pics/a.png", &png(800, 600, 200), &[]).await;
    let r = c.get("/api/thumb?path=/pics/a.png").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers[header::CONTENT_TYPE], "image/jpeg");
    let t = image::load_from_memory(&r.body).unwrap();
    assert_eq!((t.width(), t.height()), (256, 192));
    let kept = std::fs::read_dir(dir.path().join(".qsfs/thumbs"))
        .unwrap()
        .count();
    assert_eq!(kept, 1);
    let tag = r.headers[header::ETAG].to_str().unwrap().to_string();
    let again = c
        .send(
            c.req(Method::GET, "/api/thumb?path=/pics/a.png")
                .header(header::IF_NONE_MATCH, &tag)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    // Changed: a new thumbnail under a new tag.
    c.put("/pics/a.png", &png(100, 400, 20), &[]).await;
    let r = c.get("/api/thumb?path=/pics/a.png").await;
    assert_ne!(r.headers[header::ETAG].to_str().unwrap(), tag);
    let t = image::load_from_memory(&r.body).unwrap();
    assert_eq!((t.width(), t.height()), (64, 256));
    c.put("/pics/notes.txt", b"hello", &[]).await;
    assert_eq!(
        c.get("/api/thumb?path=/pics/notes.txt").await.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    c.put("/pics/fake.jpg", b"hello", &[]).await;
    assert_eq!(
        c.get("/api/thumb?path=/pics/fake.jpg").await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        c.get("/api/thumb?path=/pics/none.png").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        c.get("/api/thumb?path=/.qsfs/thumbs").await.status,
        StatusCode::BAD_REQUEST
    );
}
