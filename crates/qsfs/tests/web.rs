//! The web drive of a real `qsfs` (embedded default, real FUSE mount) over HTTP: accounts
//! and roles (no one reads another's home, a read-only member of a shared folder cannot
//! write), quotas, 50 wrong passwords (timed), sessions ended by a password change, share
//! links (password, upload-only, revocation), the trash, a tus upload resumed after qsfs
//! restarts in its middle (byte-exact on the mount), a decompression bomb refused.

mod common;

use std::time::Instant;

use base64::Engine as _;
use common::*;

/// One signed-in party (or none): its cookie and CSRF token.
#[derive(Default, Clone)]
struct Web {
    base: String,
    cookie: String,
    csrf: String,
}

/// Status and body of an answer, whatever the status.
struct Answer {
    status: u16,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Web {
    fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
        let mut req = ureq::request(method, &format!("{}{path}", self.base));
        if !self.cookie.is_empty() {
            req = req.set("Cookie", &self.cookie);
        }
        if method != "GET" && method != "HEAD" {
            req = req.set("X-CSRF-Token", &self.csrf);
        }
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let res = match req.send_bytes(body) {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let status = res.status();
        let headers = res
            .headers_names()
            .into_iter()
            .map(|n| {
                let v = res.header(&n).unwrap_or("").to_string();
                (n, v)
            })
            .collect();
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut res.into_reader(), &mut body).unwrap();
        Answer {
            status,
            body,
            headers,
        }
    }

    fn get(&self, path: &str) -> Answer {
        self.send("GET", path, &[], b"")
    }

    fn post(&self, path: &str, json: serde_json::Value) -> Answer {
        self.send(
            "POST",
            path,
            &[("Content-Type", "application/json")],
            json.to_string().as_bytes(),
        )
    }

    fn put(&self, path: &str, body: &[u8]) -> Answer {
        self.send(
            "PUT",
            &format!("/api/file?path={}&parents=1", enc(path)),
            &[],
            body,
        )
    }

    /// Sign in (an account, or the access token with `user` empty); the status.
    fn sign_in(&mut self, user: &str, secret: &str) -> u16 {
        let json = if user.is_empty() {
            serde_json::json!({ "token": secret })
        } else {
            serde_json::json!({ "user": user, "password": secret })
        };
        let a = self.post("/api/login", json);
        if a.status == 200 {
            let set = a.header("set-cookie").unwrap();
            self.cookie = set.split(';').next().unwrap().to_string();
            self.csrf = a.json()["csrf"].as_str().unwrap().to_string();
        }
        a.status
    }
}

/// The web UI's address and access token, from the log line qsfs prints.
fn web_of(q: &Qsfs) -> (String, String) {
    let log = q.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("web UI at"))
        .unwrap_or_else(|| panic!("no web UI line in the log:\n{log}"));
    let url = line
        .split("web UI at ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    let token = line
        .split("access token: ")
        .nth(1)
        .unwrap()
        .trim_end_matches(')');
    (url.trim_end_matches('/').to_string(), token.to_string())
}

fn signed_in(base: &str, user: &str, secret: &str) -> Web {
    let mut w = Web {
        base: base.into(),
        ..Web::default()
    };
    assert_eq!(w.sign_in(user, secret), 200, "{user} signs in");
    w
}

fn tus(w: &Web, method: &str, at: &str, offset: u64, body: &[u8]) -> Answer {
    let off = offset.to_string();
    w.send(
        method,
        at,
        &[
            ("Tus-Resumable", "1.0.0"),
            ("Upload-Offset", &off),
            ("Content-Type", "application/offset+octet-stream"),
        ],
        body,
    )
}

#[test]
fn the_drive_for_several_people_on_a_real_mount() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let args = ["--mountpoint", "mnt", "--segment-mib", "4"];
    let q = Qsfs::start(root, &args, "run1.log");
    let (base, token) = web_of(&q);
    for (name, quota) in [("alice", "100k"), ("bob", "1G"), ("carol", "1G")] {
        qsfs_cmd_with_input(
            root,
            &["user", "add", name, "--quota", quota, "--password-stdin"],
            &format!("{name}'s password\n"),
        );
    }
    let admin = signed_in(&base, "", &token);
    let alice = signed_in(&base, "alice", "alice's password");
    let bob = signed_in(&base, "bob", "bob's password");

    // Homes apart; a read-only member cannot write.
    assert_eq!(alice.put("/private.txt", b"alice only").status, 200);
    assert_eq!(
        std::fs::read(q.mount.join("home/alice/private.txt")).unwrap(),
        b"alice only"
    );
    assert_eq!(
        bob.get("/api/file?path=/home/alice/private.txt").status,
        404
    );
    assert_eq!(
        bob.get(&format!("/api/file?path={}", enc("/../alice/private.txt")))
            .status,
        400
    );
    let team = admin.post(
        "/api/shared",
        serde_json::json!({"name": "team", "members": {"alice": "write", "bob": "read"}}),
    );
    assert_eq!(team.status, 200);
    let plan = alice.send(
        "PUT",
        "/api/file?path=/plan.txt&space=team",
        &[],
        b"the plan",
    );
    assert_eq!(plan.status, 200);
    assert_eq!(
        std::fs::read(q.mount.join("shared/team/plan.txt")).unwrap(),
        b"the plan"
    );
    assert_eq!(
        bob.get("/api/file?path=/plan.txt&space=team").body,
        b"the plan"
    );
    assert_eq!(
        bob.send("PUT", "/api/file?path=/x&space=team", &[], b"x")
            .status,
        403
    );

    // The quota (100 KiB): 507 with the numbers, nothing kept. (Refused before the body is
    // read: a body small enough for the socket's buffers lets this client read the answer.)
    let big = alice.put("/big.bin", &vec![7u8; 300 << 10]);
    assert_eq!(big.status, 507);
    assert!(String::from_utf8_lossy(&big.body).contains("MiB"));
    assert!(!q.mount.join("home/alice/big.bin").exists());

    // A password change ends the account's other sessions.
    let alice_elsewhere = signed_in(&base, "alice", "alice's password");
    let mut alice = alice;
    let changed = alice.post(
        "/api/users/password",
        serde_json::json!({"current": "alice's password", "password": "alice's new one"}),
    );
    assert_eq!(changed.status, 200);
    alice.cookie = changed
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .into();
    alice.csrf = changed.json()["csrf"].as_str().unwrap().into();
    assert_eq!(alice_elsewhere.get("/api/list?path=/").status, 401);
    assert_eq!(alice.get("/api/list?path=/").status, 200);

    // Share links: a password, upload-only, revocation.
    alice.put("/album/a.txt", b"in the album");
    let link = alice.post(
        "/api/shares",
        serde_json::json!({"path": "/album", "password": "open sesame"}),
    );
    let url = link.json()["url"].as_str().unwrap().to_string();
    let mut visitor = Web {
        base: base.clone(),
        ..Web::default()
    };
    assert_eq!(visitor.get(&format!("{url}/api/list?path=/")).status, 401);
    let unlocked = visitor.post(
        &format!("{url}/api/unlock"),
        serde_json::json!({"password": "open sesame"}),
    );
    assert_eq!(unlocked.status, 200);
    visitor.cookie = unlocked
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .into();
    assert_eq!(
        visitor.get(&format!("{url}/api/file?path=/a.txt")).body,
        b"in the album"
    );
    let drop = alice.post(
        "/api/shares",
        serde_json::json!({"path": "/album", "kind": "drop"}),
    );
    let drop_url = drop.json()["url"].as_str().unwrap().to_string();
    let anyone = Web {
        base: base.clone(),
        ..Web::default()
    };
    assert_eq!(
        anyone
            .send(
                "PUT",
                &format!("{drop_url}/api/file?name=gift.txt"),
                &[],
                b"a gift"
            )
            .status,
        200
    );
    assert_eq!(
        std::fs::read(q.mount.join("home/alice/album/gift.txt")).unwrap(),
        b"a gift"
    );
    assert_eq!(
        anyone.get(&format!("{drop_url}/api/list?path=/")).status,
        403
    );
    assert_eq!(
        anyone
            .get(&format!("{drop_url}/api/file?path=/a.txt"))
            .status,
        403
    );
    let id = url.trim_start_matches("/s/");
    assert_eq!(
        alice
            .post("/api/shares/revoke", serde_json::json!({ "id": id }))
            .status,
        200
    );
    assert_eq!(visitor.get(&format!("{url}/api/info")).status, 404);

    // The trash, there and back.
    assert_eq!(
        alice
            .post("/api/delete", serde_json::json!({"path": "/private.txt"}))
            .status,
        200
    );
    assert!(!q.mount.join("home/alice/private.txt").exists());
    let item = alice.get("/api/trash").json()["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        alice
            .post("/api/trash/restore", serde_json::json!({ "id": item }))
            .status,
        200
    );
    assert_eq!(
        std::fs::read(q.mount.join("home/alice/private.txt")).unwrap(),
        b"alice only"
    );

    // A decompression bomb (a PNG header announcing 100,000 x 100,000 pixels) gets no
    // thumbnail.
    let mut bomb = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    bomb.extend_from_slice(&100_000u32.to_be_bytes());
    bomb.extend_from_slice(&100_000u32.to_be_bytes());
    bomb.extend_from_slice(&[8, 6, 0, 0, 0]);
    let crc = crc32fast::hash(&bomb[12..]);
    bomb.extend_from_slice(&crc.to_be_bytes());
    admin.put("/bomb.png", &bomb);
    assert_eq!(admin.get("/api/thumb?path=/bomb.png").status, 413);

    // A tus upload, 60 % in, then qsfs restarts; it resumes and the file is byte-exact.
    let data = content(7).repeat(64);
    let data = &data[..data.len().min(3 << 20)];
    let meta = format!(
        "path {}",
        base64::engine::general_purpose::STANDARD.encode("/resumed.bin")
    );
    let length = data.len().to_string();
    let made = bob.send(
        "POST",
        "/api/tus",
        &[
            ("Tus-Resumable", "1.0.0"),
            ("Upload-Length", &length),
            ("Upload-Metadata", &meta),
        ],
        b"",
    );
    assert_eq!(made.status, 201);
    let at = made.header("location").unwrap().to_string();
    let cut = data.len() * 6 / 10;
    assert_eq!(tus(&bob, "PATCH", &at, 0, &data[..cut]).status, 204);
    q.stop(false);
    let q = Qsfs::start(root, &args, "run2.log");
    let bob = signed_in(&base, "bob", "bob's password");
    let head = bob.send("HEAD", &at, &[("Tus-Resumable", "1.0.0")], b"");
    assert_eq!(head.header("upload-offset"), Some(cut.to_string().as_str()));
    assert!(
        !q.mount.join("home/bob/resumed.bin").exists(),
        "nothing half-written shows"
    );
    assert_eq!(
        tus(&bob, "PATCH", &at, cut as u64, &data[cut..]).status,
        204
    );
    assert_eq!(
        std::fs::read(q.mount.join("home/bob/resumed.bin")).unwrap(),
        data
    );

    // 50 wrong passwords in a row: a handful looked at, the rest wait (last: this address
    // waits now too).
    let started = Instant::now();
    let mut guesser = Web {
        base: base.clone(),
        ..Web::default()
    };
    let statuses: Vec<u16> = (0..50)
        .map(|i| guesser.sign_in("carol", &format!("guess {i}")))
        .collect();
    let looked_at = statuses.iter().filter(|&&s| s == 401).count();
    assert!(
        looked_at <= 5,
        "{looked_at} of 50 tries looked at: {statuses:?}"
    );
    assert!(statuses.iter().all(|&s| s == 401 || s == 429));
    println!(
        "50 wrong passwords: {looked_at} looked at, answered in {:?}",
        started.elapsed()
    );
    q.stop(false);
}

/// WebDAV of a real qsfs: an app password made with `qsfs user app-password`, the litmus
/// suite against `/dav/` on the FUSE mount (zdbfs keeps the dead properties as xattrs),
/// a file put over WebDAV is on the mount, and `qsfs user revoke` cuts the device off.
#[test]
fn webdav_on_a_real_mount() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let q = Qsfs::start(
        root,
        &["--mountpoint", "mnt", "--segment-mib", "4"],
        "dav.log",
    );
    let (base, token) = web_of(&q);
    assert!(
        q.log_text().contains("WebDAV at "),
        "the WebDAV address is printed"
    );
    qsfs_cmd_with_input(
        root,
        &["user", "add", "dave", "--password-stdin"],
        "dave's password\n",
    );
    let made = qsfs_cmd(root, &["user", "app-password", "dave", "litmus"]);
    let password = made
        .lines()
        .find(|l| l.len() == 31 && l.matches('-').count() == 5)
        .unwrap_or_else(|| panic!("no password in {made}"))
        .to_string();
    let out = std::process::Command::new("litmus")
        .arg(format!("{base}/dav/"))
        .args(["dave", &password])
        .current_dir(root)
        .output()
        .expect("litmus (scripts/test installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && !text.contains("FAIL"), "{text}");
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("dave:{password}"))
    );
    let put = ureq::put(&format!("{base}/dav/notes.txt"))
        .set("Authorization", &auth)
        .send_bytes(b"over webdav")
        .unwrap();
    assert_eq!(put.status(), 201);
    assert_eq!(
        std::fs::read(q.mount.join("home/dave/notes.txt")).unwrap(),
        b"over webdav"
    );
    // The token signs in the built-in admin, who sees the whole drive.
    let admin = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("token:{token}"))
    );
    let got = ureq::get(&format!("{base}/dav/home/dave/notes.txt"))
        .set("Authorization", &admin)
        .call()
        .unwrap();
    assert_eq!(got.into_string().unwrap(), "over webdav");
    let listed = qsfs_cmd(root, &["user", "app-passwords", "dave"]);
    let id = listed.split('\t').next().unwrap().trim().to_string();
    assert!(
        listed.contains("litmus") && listed.contains("last used"),
        "{listed}"
    );
    qsfs_cmd(root, &["user", "revoke", "dave", &id]);
    match ureq::get(&format!("{base}/dav/notes.txt"))
        .set("Authorization", &auth)
        .call()
    {
        Err(ureq::Error::Status(401, _)) => {}
        other => panic!("a revoked app password still signs in: {other:?}"),
    }
}

#[test]
fn s3_on_a_real_mount() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let q = Qsfs::start(
        root,
        &["--mountpoint", "mnt", "--segment-mib", "4"],
        "s3.log",
    );
    web_of(&q);
    let log = q.log_text();
    let endpoint = log
        .split("qsfs: S3 at ")
        .nth(1)
        .and_then(|rest| rest.split("/ (").next())
        .unwrap_or_else(|| panic!("no S3 address printed: {log}"))
        .to_string();
    qsfs_cmd_with_input(
        root,
        &["user", "add", "erin", "--password-stdin"],
        "erin's password\n",
    );
    let made = qsfs_cmd(root, &["user", "access-key", "erin", "rclone"]);
    let field = |name: &str| {
        made.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("no {name} in {made}"))
    };
    let (key, secret) = (field("access key id:"), field("secret access key:"));
    let src = root.join("src");
    for i in 0..20 {
        let dir = src.join(format!("d{}", i % 3));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("f{i}.txt")),
            format!("file {i}\n").repeat(i * 100),
        )
        .unwrap();
    }
    let rclone = |args: &[&str]| {
        test_kit::clients::rclone_s3(&endpoint, &key, &secret)
            .args(args)
            .output()
            .expect("rclone (scripts/test installs it)")
    };
    let ok = |out: std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    ok(rclone(&["mkdir", "qs:docs"]));
    ok(rclone(&["copy", src.to_str().unwrap(), "qs:docs/tree"]));
    ok(rclone(&["check", src.to_str().unwrap(), "qs:docs/tree"]));
    // The objects are the account's files on the mount.
    assert_eq!(
        std::fs::read(q.mount.join("home/erin/docs/tree/d1/f4.txt")).unwrap(),
        "file 4\n".repeat(400).as_bytes()
    );
    let listed = qsfs_cmd(root, &["user", "access-keys", "erin"]);
    assert!(
        listed.contains(&key) && listed.contains("last used"),
        "{listed}"
    );
    qsfs_cmd(root, &["user", "revoke-key", "erin", "--all"]);
    let refused = rclone(&["lsd", "qs:"]);
    assert!(
        !refused.status.success(),
        "a revoked key still lists buckets"
    );
}

#[test]
fn an_acknowledged_upload_survives_kill9() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let q = Qsfs::start(root, &["--mountpoint", "mnt"], "run1.log");
    let (base, token) = web_of(&q);
    let admin = signed_in(&base, "", &token);
    let bodies: Vec<Vec<u8>> = (0..5u8).map(|n| vec![n; 70_000]).collect();
    for (n, body) in bodies.iter().enumerate() {
        let a = admin.put(&format!("/kept/f{n}"), body);
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    }
    // At once: nothing but the acknowledgements says the files are there.
    q.kill9();
    let q = Qsfs::start(root, &["--config", "qsfs-data/qsfs.toml"], "run2.log");
    for (n, body) in bodies.iter().enumerate() {
        let path = q.mount.join(format!("kept/f{n}"));
        let got = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(got == *body, "{}: content differs", path.display());
    }
}
