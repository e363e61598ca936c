//! Namespaces, authentication and administration against the real binary.

mod common;
use common::*;
use resp::Frame;
use sha1::{Digest, Sha1};

fn secure(nonce: &str, password: &str) -> String {
    hex::encode(Sha1::digest(format!("{nonce}:{password}").as_bytes()))
}

fn challenge(r: &mut Raw) -> String {
    match r.cmd(&["AUTH", "SECURE", "CHALLENGE"]) {
        Frame::Simple(n) => {
            let n = String::from_utf8(n.to_vec()).unwrap();
            assert_eq!(n.len(), 16);
            assert!(n
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            n
        }
        other => panic!("challenge: {other:?}"),
    }
}

fn names(f: Frame) -> Vec<String> {
    match f {
        Frame::Array(a) => a.iter().map(|x| x.to_text().unwrap()).collect(),
        other => panic!("not an array: {other:?}"),
    }
}

#[test]
fn nsnew_nslist_nsdel_select() {
    let z = Zdb::start(&[]);
    let mut r = z.raw();
    assert_eq!(r.cmd(&["NSNEW", "a"]), ok());
    assert_eq!(
        r.cmd(&["NSNEW", "a"]),
        err("This namespace is not available")
    );
    assert_eq!(
        r.cmd(&["NSNEW", "default"]),
        err("This name is not allowed")
    );
    assert_eq!(
        r.cmd(&["NSNEW", "../../hello"]),
        err("This name is not allowed")
    );
    assert_eq!(r.cmd(&["NSNEW", ".."]), err("This name is not allowed"));
    assert_eq!(
        r.cmd(&["NSNEW", "x".repeat(511).as_str()]),
        err("Namespace too long")
    );
    assert_eq!(r.cmd(&["NSNEW"]), err("Unexpected arguments"));
    assert_eq!(r.cmd(&["NSNEW", ""]), err("Invalid argument"));
    assert_eq!(r.cmd(&["NSNEW", "b"]), ok());
    assert_eq!(names(r.cmd(&["NSLIST"])), vec!["default", "a", "b"]);
    assert_eq!(r.cmd(&["SELECT", "nope"]), err("Namespace not found"));
    assert_eq!(r.cmd(&["SELECT"]), err("Invalid argument"));
    assert_eq!(r.cmd(&["SELECT", "a"]), ok());
    assert_eq!(r.cmd(&["SET", "k", "in-a"]), bulk("k"));
    assert_eq!(r.cmd(&["SELECT", "default"]), ok());
    assert_eq!(r.cmd(&["GET", "k"]), nil(), "namespaces are separate");
    assert_eq!(
        r.cmd(&["NSDEL", "default"]),
        err("Cannot remove default namespace")
    );
    assert_eq!(
        r.cmd(&["NSDEL", "nope"]),
        err("This namespace doesn't exists")
    );
    assert_eq!(r.cmd(&["NSDEL", "a", "extra"]), err("Unexpected arguments"));
    // Another client attached to `a` is told and disconnected on its next command.
    let mut other = z.raw();
    assert_eq!(other.cmd(&["SELECT", "a"]), ok());
    assert_eq!(
        other.cmd(&["NSDEL", "a"]),
        err("Cannot remove namespace you're currently using.")
    );
    assert_eq!(r.cmd(&["NSDEL", "a"]), ok());
    assert_eq!(r.cmd(&["NSDEL", "a"]), err("This namespace doesn't exists"));
    assert_eq!(
        other.cmd(&["GET", "k"]),
        err("Your active namespace is not available anymore (probably removed).")
    );
    assert!(other.closed());
    assert_eq!(names(r.cmd(&["NSLIST"])), vec!["default", "b"]);
    assert!(!z.index_dir().join("a").exists());
    assert!(!z.data_dir().join("a").exists());
}

#[test]
fn nsinfo_fields_in_order() {
    let z = Zdb::start(&["--admin", "pw"]);
    let mut r = z.raw();
    assert_eq!(r.cmd(&["NSINFO", "nope"]), err("Namespace not found"));
    assert_eq!(r.cmd(&["NSINFO"]), err("Unexpected arguments"));
    // Not admin: no paths.
    let info = r.cmd(&["NSINFO", "default"]);
    assert!(field(&info, "data_path").is_none());
    assert_eq!(r.cmd(&["AUTH", "pw"]), ok());
    assert_eq!(r.cmd(&["NSSET", "default", "mode", "user"]), ok());
    let info = r.cmd(&["NSINFO", "default"]);
    let text = info.to_text().unwrap();
    assert!(text.starts_with("# namespace\nname: default\n"), "{text}");
    let keys: Vec<String> = fields(&info).into_iter().map(|(k, _)| k).collect();
    let expected = [
        "name",
        "entries",
        "public",
        "worm",
        "locked",
        "password",
        "data_size_bytes",
        "data_size_mb",
        "data_limits_bytes",
        "index_size_bytes",
        "index_size_kb",
        "next_internal_id",
        "mode",
        "stats_index_io_errors",
        "stats_index_io_error_last",
        "stats_index_faults",
        "stats_data_io_errors",
        "stats_data_io_error_last",
        "stats_data_faults",
        "index_disk_freespace_bytes",
        "index_disk_freespace_mb",
        "data_disk_freespace_bytes",
        "data_disk_freespace_mb",
        "data_path",
        "data_active",
        "index_path",
        "index_active",
        "data_current_id",
        "data_current_offset",
    ];
    assert_eq!(keys, expected);
    assert_eq!(field(&info, "mode").as_deref(), Some("userkey"));
    assert_eq!(
        field(&info, "next_internal_id").as_deref(),
        Some("0x00000000")
    );
    assert_eq!(field(&info, "public").as_deref(), Some("yes"));
    assert_eq!(field(&info, "password").as_deref(), Some("no"));
    let data_path = field(&info, "data_path").unwrap();
    assert_eq!(data_path, format!("{}/default", z.data_dir().display()));
    assert_eq!(
        field(&info, "data_active").unwrap(),
        format!("{data_path}/d0")
    );
}

#[test]
fn nsset_properties() {
    let z = Zdb::start(&[]);
    let mut r = z.raw();
    assert_eq!(r.cmd(&["NSNEW", "n"]), ok());
    assert_eq!(
        r.cmd(&["NSSET", "nope", "public", "0"]),
        err("Namespace not found")
    );
    assert_eq!(
        r.cmd(&["NSSET", "n", "bogus", "1"]),
        err("Invalid property")
    );
    assert_eq!(
        r.cmd(&["NSSET", "n", "maxsize"]),
        err("Unexpected arguments")
    );
    assert_eq!(
        r.cmd(&["NSSET", "n", "maxsize", "1".repeat(119).as_str()]),
        err("Argument too long")
    );
    assert_eq!(
        r.cmd(&["NSSET", "n", "x".repeat(385).as_str(), "1"]),
        err("Argument too long")
    );
    for p in ["public", "maxsize", "password", "worm"] {
        assert_eq!(
            r.cmd(&["NSSET", "default", p, "1"]),
            err("Cannot update default namespace"),
            "{p}"
        );
    }
    assert_eq!(
        r.cmd(&["NSSET", "default", "bogus", "1"]),
        err("Cannot update default namespace")
    );

    // maxsize: 0-db's arithmetic on live payload bytes.
    assert_eq!(r.cmd(&["NSSET", "n", "maxsize", "16"]), ok());
    assert_eq!(r.cmd(&["SELECT", "n"]), ok());
    assert_eq!(r.cmd(&["SET", "a", "0123456789"]), bulk("a"));
    assert_eq!(r.cmd(&["SET", "b", "01234"]), bulk("b"));
    assert_eq!(r.cmd(&["SET", "c", "0"]), bulk("c"));
    assert_eq!(
        r.cmd(&["SET", "d", "0"]),
        err("No space left on this namespace")
    );
    assert_eq!(
        field(&r.cmd(&["NSINFO", "n"]), "data_limits_bytes").as_deref(),
        Some("16")
    );
    assert!(field(&r.cmd(&["NSINFO", "n"]), "space_available").is_some());
    assert_eq!(r.cmd(&["NSSET", "n", "maxsize", "0"]), ok());
    assert_eq!(r.cmd(&["SET", "d", "0"]), bulk("d"));

    // worm: no overwrite, no delete.
    assert_eq!(r.cmd(&["NSSET", "n", "worm", "1"]), ok());
    assert_eq!(
        r.cmd(&["SET", "a", "other"]),
        err("Namespace is protected by worm mode")
    );
    assert_eq!(
        r.cmd(&["SET", "a", "0123456789"]),
        err("Namespace is protected by worm mode")
    );
    assert_eq!(
        r.cmd(&["DEL", "a"]),
        err("Cannot delete a key when namespace is in worm mode")
    );
    assert_eq!(r.cmd(&["SET", "new", "v"]), bulk("new"));
    assert_eq!(
        field(&r.cmd(&["NSINFO", "n"]), "worm").as_deref(),
        Some("yes")
    );
    assert_eq!(r.cmd(&["NSSET", "n", "worm", "0"]), ok());

    // lock: read-only; freeze: nothing at all; they share one state.
    assert_eq!(r.cmd(&["NSSET", "n", "lock", "1"]), ok());
    assert_eq!(
        r.cmd(&["SET", "a", "x"]),
        err("Namespace is temporarily locked (read-only)")
    );
    assert_eq!(
        r.cmd(&["DEL", "a"]),
        err("Namespace is temporarily locked (read-only)")
    );
    assert_eq!(r.cmd(&["GET", "b"]), bulk("01234"));
    assert_eq!(
        field(&r.cmd(&["NSINFO", "n"]), "locked").as_deref(),
        Some("yes")
    );
    assert_eq!(r.cmd(&["NSSET", "n", "freeze", "1"]), ok());
    let frozen = err("Namespace is temporarily frozen (read-write disabled)");
    for c in [
        &["GET", "b"][..],
        &["SET", "a", "x"],
        &["EXISTS", "b"],
        &["SCAN"],
        &["KEYCUR", "b"],
        &["MGET", "b"],
        &["HISTORY", "b"],
    ] {
        assert_eq!(r.cmd(c), frozen, "{c:?}");
    }
    assert_eq!(r.cmd(&["DBSIZE"]), int(5));
    assert_eq!(
        field(&r.cmd(&["NSINFO", "n"]), "locked").as_deref(),
        Some("yes")
    );
    assert_eq!(r.cmd(&["NSSET", "n", "freeze", "0"]), ok());
    assert_eq!(
        r.cmd(&["SET", "a", "x"]),
        bulk("a"),
        "freeze 0 also clears the lock"
    );
    // lock/freeze are allowed on default.
    assert_eq!(r.cmd(&["NSSET", "default", "lock", "1"]), ok());
    assert_eq!(r.cmd(&["NSSET", "default", "lock", "0"]), ok());
}

#[test]
fn passwords_public_private_and_secure_select() {
    let z = Zdb::start(&[]);
    let mut admin = z.raw();
    assert_eq!(admin.cmd(&["NSNEW", "p"]), ok());
    assert_eq!(admin.cmd(&["NSSET", "p", "password", "secret"]), ok());
    assert_eq!(
        field(&admin.cmd(&["NSINFO", "p"]), "password").as_deref(),
        Some("yes")
    );
    admin.cmd(&["SELECT", "p", "secret"]);
    assert_eq!(admin.cmd(&["SET", "k", "v"]), bulk("k"));

    // Public with password, no password given: read-only.
    let mut c = z.raw();
    assert_eq!(c.cmd(&["SELECT", "p"]), ok());
    assert_eq!(c.cmd(&["GET", "k"]), bulk("v"));
    assert_eq!(
        c.cmd(&["SET", "k", "w"]),
        err("Namespace is in read-only mode")
    );
    assert_eq!(c.cmd(&["DEL", "k"]), err("Namespace is in read-only mode"));
    for bad in ["wrong", "secre", "secrett"] {
        assert_eq!(c.cmd(&["SELECT", "p", bad]), err("Access denied"), "{bad}");
    }
    assert_eq!(
        c.cmd(&["SELECT", "p", "x".repeat(511).as_str()]),
        err("Password too long")
    );
    assert_eq!(
        c.cmd(&["SELECT", "p", "a", "b", "c"]),
        err("Too many arguments")
    );
    assert_eq!(c.cmd(&["SELECT", "p", "secret"]), ok());
    assert_eq!(c.cmd(&["SET", "k", "w"]), bulk("k"));

    // SECURE select.
    let mut s = z.raw();
    assert_eq!(
        s.cmd(&["SELECT", "p", "SECURE", "x"]),
        err("No CHALLENGE requested, secure authentication not available")
    );
    let nonce = challenge(&mut s);
    assert_eq!(
        s.cmd(&["SELECT", "p", "BOGUS", "x"]),
        err("Only SECURE extra method supported")
    );
    assert_eq!(
        s.cmd(&["SELECT", "p", "SECURE", "abc"]),
        err("Invalid hash length")
    );
    assert_eq!(
        s.cmd(&["SELECT", "p", "SECURE", "0".repeat(40).as_str()]),
        err("Access denied")
    );
    assert_eq!(
        s.cmd(&["SELECT", "p", "SECURE", &secure(&nonce, "secret")]),
        ok()
    );
    assert_eq!(s.cmd(&["SET", "k2", "v"]), bulk("k2"));

    // Private: no anonymous access.
    assert_eq!(admin.cmd(&["NSSET", "p", "public", "0"]), ok());
    let mut c2 = z.raw();
    assert_eq!(
        c2.cmd(&["SELECT", "p"]),
        err("Namespace protected and private")
    );
    // FLUSH only on private + password.
    assert_eq!(c2.cmd(&["FLUSH"]), err("Flushing public namespace denied"));
    assert_eq!(admin.cmd(&["DBSIZE"]), int(2));
    assert_eq!(admin.cmd(&["FLUSH"]), ok());
    assert_eq!(admin.cmd(&["DBSIZE"]), int(0));
    assert_eq!(admin.cmd(&["GET", "k"]), nil());
    // `*` clears the password.
    assert_eq!(admin.cmd(&["NSSET", "p", "password", "*"]), ok());
    assert_eq!(c2.cmd(&["SELECT", "p"]), ok());
    assert_eq!(c2.cmd(&["SET", "z", "1"]), bulk("z"));
}

#[test]
fn admin_auth_plain_and_secure() {
    let z = Zdb::start(&["--admin", "root"]);
    let mut c = z.raw();
    assert_eq!(c.cmd(&["NSNEW", "x"]), err("Permission denied"));
    assert_eq!(c.cmd(&["HOOKS"]), err("Permission denied"));
    assert_eq!(c.cmd(&["NSJUMP"]), err("Permission denied"));
    assert_eq!(c.cmd(&["SET", "k", "v", "123"]), err("Permission denied"));
    assert_eq!(
        c.cmd(&["SET", "k", "v"]),
        bulk("k"),
        "default stays writable without --protect"
    );
    let info = c.cmd(&["INFO"]);
    let denied: u64 = field(&info, "commands_unauthorized")
        .unwrap()
        .parse()
        .unwrap();
    assert!(denied >= 4, "{denied}");
    assert_eq!(c.cmd(&["AUTH"]), err("Unexpected arguments"));
    assert_eq!(c.cmd(&["AUTH", "a", "b", "c"]), err("Unexpected arguments"));
    assert_eq!(c.cmd(&["AUTH", "wrong"]), err("Access denied"));
    assert_eq!(c.cmd(&["AUTH", "roo"]), err("Access denied"));
    assert_eq!(
        c.cmd(&["AUTH", "x".repeat(511).as_str()]),
        err("Password too long")
    );
    assert_eq!(c.cmd(&["AUTH", ""]), err("Invalid argument"));
    assert_eq!(c.cmd(&["AUTH", "root"]), ok());
    assert_eq!(c.cmd(&["NSNEW", "x"]), ok());

    let mut s = z.raw();
    assert_eq!(
        s.cmd(&["AUTH", "SECURE", "x".repeat(40).as_str()]),
        err("No CHALLENGE requested, secure authentication not available")
    );
    assert_eq!(
        s.cmd(&["AUTH", "OTHER", "CHALLENGE"]),
        err("Only SECURE extra method supported")
    );
    let nonce = challenge(&mut s);
    assert_eq!(
        s.cmd(&["AUTH", "SECURE", "short"]),
        err("Invalid hash length")
    );
    let upper = secure(&nonce, "root").to_uppercase();
    assert_eq!(s.cmd(&["AUTH", "SECURE", &upper]), err("Access denied"));
    // The nonce was consumed by the failed attempt.
    assert_eq!(
        s.cmd(&["AUTH", "SECURE", &secure(&nonce, "root")]),
        err("No CHALLENGE requested, secure authentication not available")
    );
    let nonce = challenge(&mut s);
    assert_eq!(s.cmd(&["AUTH", "SECURE", &secure(&nonce, "root")]), ok());
    assert_eq!(s.cmd(&["NSNEW", "y"]), ok());

    // Without --admin, AUTH is disabled (but everybody is admin).
    let z2 = Zdb::start(&[]);
    let mut c = z2.raw();
    assert_eq!(c.cmd(&["AUTH", "x"]), err("Authentication disabled"));
    challenge(&mut c);
    assert_eq!(
        c.cmd(&["AUTH", "SECURE", &"0".repeat(40)]),
        err("Authentication disabled")
    );
}

#[test]
fn protect_makes_default_read_only() {
    let z = Zdb::start(&["--admin", "root", "--protect"]);
    let mut c = z.raw();
    assert_eq!(
        c.cmd(&["SET", "k", "v"]),
        err("Namespace is in read-only mode")
    );
    assert_eq!(c.cmd(&["AUTH", "root"]), ok());
    assert_eq!(
        c.cmd(&["SET", "k", "v"]),
        err("Namespace is in read-only mode"),
        "AUTH alone does not unlock"
    );
    assert_eq!(
        field(&c.cmd(&["NSINFO", "default"]), "password").as_deref(),
        Some("yes")
    );
    assert_eq!(c.cmd(&["SELECT", "default", "root"]), ok());
    assert_eq!(c.cmd(&["SET", "k", "v"]), bulk("k"));
    let mut other = z.raw();
    assert_eq!(other.cmd(&["GET", "k"]), bulk("v"));
}

#[test]
fn nsjump_index_dirty_data_raw_reload() {
    let z = Zdb::start(&[]);
    let mut r = z.raw();
    assert_eq!(r.cmd(&["SET", "a", "hello"]), bulk("a"));
    let Frame::Array(d) = r.cmd(&["INDEX", "DIRTY"]) else {
        panic!("INDEX DIRTY")
    };
    assert_eq!(d, vec![int(0)]);
    assert_eq!(r.cmd(&["INDEX", "DIRTY", "RESET"]), ok());
    assert_eq!(r.cmd(&["INDEX", "DIRTY"]), Frame::Array(vec![]));
    assert_eq!(r.cmd(&["INDEX"]), err("Missing arguments"));
    assert_eq!(r.cmd(&["INDEX", "NOPE"]), err("Unknown INDEX subcommand"));
    assert_eq!(
        r.cmd(&["INDEX", "DIRTY", "NOPE"]),
        err("Unknown INDEX DIRTY subcommand")
    );

    let info = r.cmd(&["NSINFO", "default"]);
    assert_eq!(field(&info, "data_current_id").as_deref(), Some("0"));
    assert_eq!(r.cmd(&["NSJUMP"]), ok());
    let info = r.cmd(&["NSINFO", "default"]);
    assert_eq!(field(&info, "data_current_id").as_deref(), Some("1"));
    assert!(z.data_dir().join("default/d1").exists());
    assert!(z.index_dir().join("default/i1").exists());
    assert_eq!(
        r.cmd(&["GET", "a"]),
        bulk("hello"),
        "reads from a closed segment"
    );

    // DATA RAW on the first record of d0 (right after the file header).
    assert_eq!(r.cmd(&["DATA"]), err("Missing arguments"));
    assert_eq!(
        r.cmd(&["DATA", "COOKED", "0", "0"]),
        err("Unknown DATA subcommand")
    );
    assert_eq!(r.cmd(&["DATA", "RAW", "0"]), err("Missing arguments"));
    assert_eq!(r.cmd(&["DATA", "RAW", "0", "999999"]), err("EOF"));
    assert_eq!(r.cmd(&["DATA", "RAW", "77", "32"]), err("Invalid Request"));
    match r.cmd(&["DATA", "RAW", "0", "32"]) {
        Frame::Array(a) => {
            assert_eq!(a.len(), 6);
            assert_eq!(a[0], bulk("a"));
            let crc = a[2].as_text().unwrap();
            assert!(crc.starts_with("0x") && crc.len() == 10, "{crc}");
            assert_eq!(a[3], int(0));
            assert_eq!(a[5], bulk("hello"));
        }
        other => panic!("DATA RAW: {other:?}"),
    }

    assert_eq!(r.cmd(&["RELOAD"]), err("Unexpected arguments"));
    assert_eq!(r.cmd(&["RELOAD", "nope"]), err("Namespace not found"));
    assert_eq!(
        r.cmd(&["RELOAD", "x".repeat(199).as_str()]),
        err("Namespace too long")
    );
    assert_eq!(r.cmd(&["RELOAD", "default"]), ok());
    assert_eq!(
        r.cmd(&["GET", "a"]),
        bulk("hello"),
        "data present after RELOAD"
    );
}

#[test]
fn compact_frees_closed_segments_and_keeps_data() {
    let z = Zdb::start(&["--datasize", "512k"]);
    let mut r = z.raw();
    let big = "x".repeat(20_000);
    for round in 0..3 {
        for i in 0..60 {
            let v = format!("{round}{big}");
            assert_eq!(r.cmd(&["SET", &format!("k{i}"), &v]), bulk(format!("k{i}")));
        }
    }
    assert_eq!(r.cmd(&["COMPACT", "2"]), err("Invalid argument"));
    let Frame::Bulk(report) = r.cmd(&["COMPACT", "0.5"]) else {
        panic!("COMPACT reply")
    };
    let report = String::from_utf8(report.to_vec()).unwrap();
    let emptied: u64 = report
        .lines()
        .find_map(|l| l.strip_prefix("segments_emptied: "))
        .and_then(|n| n.parse().ok())
        .expect("segments_emptied line");
    assert!(emptied > 0, "{report}");
    for i in 0..60 {
        assert_eq!(r.cmd(&["GET", &format!("k{i}")]), bulk(format!("2{big}")));
    }
    assert_eq!(r.cmd(&["DBSIZE"]), int(60));
}
