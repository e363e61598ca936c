//! Who may reach what over WebDAV, and what a PUT promises: confinement to the caller's
//! folder, app passwords and their revocation, read-only members of a shared folder,
//! quotas, a PUT cut short, Depth: infinity.

mod common;

use std::io::{Read, Write};

use common::{basic, call, Server};

fn propfind(server: &Server, path: &str, auth: &str, depth: &str) -> (u16, String) {
    call(
        "PROPFIND",
        &server.url(path),
        Some(auth),
        &[("Depth", depth)],
        b"",
    )
}

#[test]
fn each_account_sees_its_own_folder_only() {
    let server = Server::start();
    let alice_app = server.account("alice", "alice password 1", None);
    let bob_app = server.account("bob", "bob password 12", None);
    let (alice, bob) = (basic("alice", &alice_app), basic("bob", &bob_app));
    assert_eq!(
        call(
            "PUT",
            &server.url("/dav/secret.txt"),
            Some(&alice),
            &[],
            b"alice's"
        )
        .0,
        201
    );
    assert_eq!(
        std::fs::read(server.home("alice").join("secret.txt")).unwrap(),
        b"alice's"
    );
    // Bob's /dav/ is his own home: alice's file is not there, nor reachable by a path trick.
    assert_eq!(
        call("GET", &server.url("/dav/secret.txt"), Some(&bob), &[], b"").0,
        404
    );
    for trick in [
        "/dav/../alice/secret.txt",
        "/dav/%2e%2e/alice/secret.txt",
        "/dav/..%2falice%2fsecret.txt",
    ] {
        let (status, body) = call("GET", &server.url(trick), Some(&bob), &[], b"");
        assert!(
            status >= 400 && !body.contains("alice's"),
            "{trick}: {status} {body}"
        );
    }
    let (status, listing) = propfind(&server, "/dav/", &bob, "1");
    assert_eq!(status, 207);
    assert!(!listing.contains("secret.txt"), "{listing}");
    // A symbolic link out of the home is not followed.
    std::os::unix::fs::symlink(server.home("alice"), server.home("bob").join("way-out")).unwrap();
    let (status, body) = call(
        "GET",
        &server.url("/dav/way-out/secret.txt"),
        Some(&bob),
        &[],
        b"",
    );
    assert!(
        status >= 400 && !body.contains("alice's"),
        "{status} {body}"
    );
    // The drive's own folder is out of reach even for an admin (the token).
    let admin = basic(qsfs_dav::auth::TOKEN_USER, common::TOKEN);
    let (status, listing) = propfind(&server, "/dav/", &admin, "1");
    assert_eq!(status, 207);
    assert!(
        listing.contains("home") && !listing.contains(".qsfs"),
        "{listing}"
    );
    assert!(
        call(
            "GET",
            &server.url("/dav/.qsfs/users.json"),
            Some(&admin),
            &[],
            b""
        )
        .0 >= 400
    );
    // Depth: infinity is refused (a listing of the whole drive in one answer).
    assert_ne!(propfind(&server, "/dav/", &admin, "infinity").0, 207);
}

#[test]
fn passwords_app_passwords_and_revocation() {
    let server = Server::start();
    let app = server.account("alice", "alice password 1", None);
    let url = server.url("/dav/");
    // No credentials, a wrong password: 401 with a Basic challenge.
    let r = ureq::request("PROPFIND", &url).call();
    match r {
        Err(ureq::Error::Status(401, r)) => {
            assert!(r.header("www-authenticate").unwrap().starts_with("Basic"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        propfind(&server, "/dav/", &basic("alice", "wrong password"), "0").0,
        401
    );
    // The account's own password works from this machine, and so does the app password.
    assert_eq!(
        propfind(&server, "/dav/", &basic("alice", "alice password 1"), "0").0,
        207
    );
    assert_eq!(
        propfind(&server, "/dav/", &basic("alice", &app), "0").0,
        207
    );
    // Revoked: refused at once; a password change ends the remembered own password.
    let user = server.state.users.get("alice").unwrap();
    server
        .state
        .app_passwords
        .revoke(Some(&user), None)
        .unwrap();
    assert_eq!(
        propfind(&server, "/dav/", &basic("alice", &app), "0").0,
        401
    );
    server
        .state
        .users
        .set_password("alice", "alice password 2")
        .unwrap();
    assert_eq!(
        propfind(&server, "/dav/", &basic("alice", "alice password 1"), "0").0,
        401
    );
    assert_eq!(
        propfind(&server, "/dav/", &basic("alice", "alice password 2"), "0").0,
        207
    );
}

#[test]
fn read_only_members_read_and_change_nothing() {
    use qsfs_web::shared::{Access, Member};
    let server = Server::start();
    let w = basic("writer", &server.account("writer", "writer password", None));
    let r = basic("reader", &server.account("reader", "reader password", None));
    let member = |name: &str, access| {
        let u = server.state.users.get(name).unwrap();
        Member {
            name: u.name,
            uid: u.uid,
            access,
        }
    };
    server
        .state
        .shared
        .set(
            "team",
            vec![
                member("writer", Access::Write),
                member("reader", Access::Read),
            ],
        )
        .unwrap();
    let file = server.url("/dav-shared/team/plan.txt");
    assert_eq!(call("PUT", &file, Some(&w), &[], b"v1").0, 201);
    assert_eq!(call("GET", &file, Some(&r), &[], b""), (200, "v1".into()));
    assert_eq!(propfind(&server, "/dav-shared/team/", &r, "1").0, 207);
    for (method, body) in [
        ("PUT", &b"v2"[..]),
        ("DELETE", b""),
        ("MKCOL", b""),
        ("PROPPATCH", b""),
    ] {
        let url = if method == "MKCOL" {
            server.url("/dav-shared/team/new/")
        } else {
            file.clone()
        };
        assert_eq!(call(method, &url, Some(&r), &[], body).0, 403, "{method}");
    }
    assert_eq!(call("GET", &file, Some(&w), &[], b"").1, "v1");
    // Someone who is not a member gets nothing.
    let o = basic("other", &server.account("other", "other password", None));
    assert_eq!(call("GET", &file, Some(&o), &[], b"").0, 403);
}

#[test]
fn quota_refuses_before_keeping_anything() {
    let server = Server::start();
    let alice = basic(
        "alice",
        &server.account("alice", "alice password 1", Some(100_000)),
    );
    let big = vec![7u8; 150_000];
    let put = |path: &str, body: &[u8]| common::put_expecting(server.port, path, &alice, body);
    assert_eq!(put("/dav/big", &big), 507);
    assert_eq!(
        call(
            "PUT",
            &server.url("/dav/small"),
            Some(&alice),
            &[],
            &big[..60_000]
        )
        .0,
        201
    );
    // Replacing a file counts only what it adds.
    assert_eq!(
        call(
            "PUT",
            &server.url("/dav/small"),
            Some(&alice),
            &[],
            &big[..90_000]
        )
        .0,
        204
    );
    assert_eq!(put("/dav/more", &big[..20_000]), 507);
    let names: Vec<String> = std::fs::read_dir(server.home("alice"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["small".to_string()], "nothing else kept");
    // The quota as RFC 4331 properties.
    let body = br#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:quota-available-bytes/><D:quota-used-bytes/></D:prop></D:propfind>"#;
    let (status, text) = call(
        "PROPFIND",
        &server.url("/dav/"),
        Some(&alice),
        &[("Depth", "0")],
        body,
    );
    assert_eq!(status, 207);
    assert!(
        text.contains(">90000<") && text.contains(">10000<"),
        "{text}"
    );
}

#[test]
fn a_put_cut_short_leaves_the_old_file() {
    let server = Server::start();
    let app = server.account("alice", "alice password 1", None);
    let auth = basic("alice", &app);
    assert_eq!(
        call(
            "PUT",
            &server.url("/dav/doc"),
            Some(&auth),
            &[],
            b"old content"
        )
        .0,
        201
    );
    let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    write!(
        s,
        "PUT /dav/doc HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Length: 100000\r\n\r\n"
    )
    .unwrap();
    s.write_all(&[b'n'; 5000]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(!answer.starts_with("HTTP/1.1 2"), "{answer}");
    test_kit::wait::until(
        "the partial body is removed",
        std::time::Duration::from_secs(10),
        || std::fs::read_dir(server.home("alice")).unwrap().count() == 1,
    );
    assert_eq!(
        std::fs::read(server.home("alice").join("doc")).unwrap(),
        b"old content"
    );
}

#[test]
fn a_large_folder_lists_whole() {
    let server = Server::start();
    let alice = basic("alice", &server.account("alice", "alice password 1", None));
    let dir = server.home("alice").join("many");
    std::fs::create_dir(&dir).unwrap();
    const N: usize = 20_000;
    for i in 0..N {
        std::fs::write(dir.join(format!("f{i:06}")), b"").unwrap();
    }
    let (status, listing) = propfind(&server, "/dav/many/", &alice, "1");
    assert_eq!(status, 207);
    let hrefs = listing.matches("<D:href>/dav/many/f").count();
    assert_eq!(hrefs, N, "every entry once");
    assert!(listing.contains("/dav/many/f019999<"));
}

#[test]
fn a_delete_goes_to_the_trash_whole() {
    let server = Server::start();
    let app = server.account("alice", "alice password 1", None);
    let auth = basic("alice", &app);
    let home = server.home("alice");
    std::fs::create_dir_all(home.join("album/inner")).unwrap();
    std::fs::write(home.join("album/inner/photo.jpg"), b"pixels").unwrap();
    std::fs::write(home.join("my note.txt"), b"words").unwrap();
    let url = |p: &str| server.url(&format!("/dav/{p}"));
    assert_eq!(call("DELETE", &url("album/"), Some(&auth), &[], b"").0, 204);
    assert_eq!(
        call("DELETE", &url("my%20note.txt"), Some(&auth), &[], b"").0,
        204
    );
    assert_eq!(
        call("DELETE", &url("never-was"), Some(&auth), &[], b"").0,
        404
    );
    assert!(!home.join("album").exists() && !home.join("my note.txt").exists());
    // Two items, the folder as one, restorable with everything in it.
    let items = server.state.trash.list("alice").unwrap();
    assert_eq!(items.len(), 2, "{items:?}");
    let album = items.iter().find(|i| i.kind == "dir").unwrap();
    let root = cap_std::fs::Dir::open_ambient_dir(&home, cap_std::ambient_authority()).unwrap();
    server
        .state
        .trash
        .restore("alice", &album.id, &root, None)
        .unwrap();
    assert_eq!(
        std::fs::read(home.join("album/inner/photo.jpg")).unwrap(),
        b"pixels"
    );
    // Under a lock, dav-server's checks decide: no token, no delete.
    let lock = br#"<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"#;
    assert_eq!(
        call(
            "LOCK",
            &url("album/inner/photo.jpg"),
            Some(&auth),
            &[],
            lock
        )
        .0,
        200
    );
    assert_eq!(call("DELETE", &url("album/"), Some(&auth), &[], b"").0, 423);
    assert!(home.join("album/inner/photo.jpg").exists());
}

#[test]
fn read_links_serve_their_folder_read_only() {
    use qsfs_web::shares::{NewShare, ShareKind};
    let server = Server::start();
    server.account("alice", "alice password 1", None);
    let home = server.home("alice");
    std::fs::create_dir_all(home.join("album/inner")).unwrap();
    std::fs::write(home.join("album/inner/photo.jpg"), b"pixels").unwrap();
    std::fs::write(home.join("private.txt"), b"not shared").unwrap();
    let uid = server.state.users.get("alice").unwrap().uid;
    let link = |password: Option<&str>, max_uses: Option<u64>| {
        server
            .state
            .shares
            .create(NewShare {
                owner: "alice".into(),
                owner_uid: uid,
                path: "/home/alice/album".into(),
                dir: true,
                kind: ShareKind::Read,
                expires: None,
                password: password.map(Into::into),
                max_uses,
            })
            .unwrap()
            .id
    };
    let open = link(None, None);
    let (status, body) = call(
        "PROPFIND",
        &server.url(&format!("/s/{open}/dav/")),
        None,
        &[("Depth", "1")],
        b"",
    );
    assert_eq!(status, 207, "{body}");
    assert!(
        body.contains("inner/") && !body.contains("private"),
        "{body}"
    );
    let photo = server.url(&format!("/s/{open}/dav/inner/photo.jpg"));
    assert_eq!(call("GET", &photo, None, &[], b""), (200, "pixels".into()));
    // Read-only: nothing written, nothing deleted; nothing past the folder.
    assert_eq!(
        call(
            "PUT",
            &server.url(&format!("/s/{open}/dav/new.txt")),
            None,
            &[],
            b"x"
        )
        .0,
        403
    );
    assert_eq!(call("DELETE", &photo, None, &[], b"").0, 403);
    assert!(!home.join("album/new.txt").exists() && home.join("album/inner/photo.jpg").exists());
    let escape = server.url(&format!("/s/{open}/dav/..%2Fprivate.txt"));
    assert_ne!(call("GET", &escape, None, &[], b"").0, 200);
    // A password link takes its password (any user name), and nothing else.
    let locked = link(Some("link secret 1"), None);
    let url = server.url(&format!("/s/{locked}/dav/"));
    assert_eq!(call("PROPFIND", &url, None, &[("Depth", "0")], b"").0, 401);
    assert_eq!(
        call(
            "PROPFIND",
            &url,
            Some(&basic("x", "wrong")),
            &[("Depth", "0")],
            b""
        )
        .0,
        401
    );
    assert_eq!(
        call(
            "PROPFIND",
            &url,
            Some(&basic("x", "link secret 1")),
            &[("Depth", "0")],
            b""
        )
        .0,
        207
    );
    // A link that counts its uses is left to its page; a revoked one is gone.
    let counted = link(None, Some(3));
    assert_eq!(
        call(
            "PROPFIND",
            &server.url(&format!("/s/{counted}/dav/")),
            None,
            &[("Depth", "0")],
            b""
        )
        .0,
        403
    );
    server.state.shares.revoke(&open, None).unwrap();
    assert_eq!(call("GET", &photo, None, &[], b"").0, 404);
}
