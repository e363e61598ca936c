//! Permission checks for a user other than root (the mount is shared with every user, and
//! the kernel checks mode bits): reads, writes, creation, removal, chmod, sticky folders and
//! access(2), each answered with the right errno.

mod common;

use std::os::unix::fs::{chown, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use common::TestMount;

const NOBODY: u32 = 65534;

/// Run `script` with `sh` as uid/gid 65534 (no supplementary groups); returns its stdout.
fn as_nobody(script: &str) -> String {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(NOBODY) != 0
                || libc::setuid(NOBODY) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().expect("sh as nobody");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn mode(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

#[test]
fn other_users_get_eacces_and_eperm_where_due() {
    let t = TestMount::new();
    // The temp dir above the mount is 0700: let others reach the mount.
    mode(t.mnt.parent().unwrap(), 0o755);
    let m = |rel: &str| t.p(rel).display().to_string();

    std::fs::write(t.p("secret"), b"root only").unwrap();
    mode(&t.p("secret"), 0o600);
    std::fs::write(t.p("public"), b"everyone reads").unwrap();
    mode(&t.p("public"), 0o644);
    std::fs::create_dir(t.p("rootdir")).unwrap();
    mode(&t.p("rootdir"), 0o755);
    std::fs::create_dir(t.p("shared")).unwrap();
    mode(&t.p("shared"), 0o1777);
    std::fs::write(t.p("shared/roots"), b"x").unwrap();
    std::fs::create_dir(t.p("mine")).unwrap();
    chown(t.p("mine"), Some(NOBODY), Some(NOBODY)).unwrap();

    // Each line: what was tried, then the shell's verdict.
    let script = format!(
        "r() {{ if \"$@\" >/dev/null 2>&1; then echo ok; else echo refused; fi; }}
         echo read-secret $(r cat {secret})
         echo read-public $(r cat {public})
         echo write-public $(r sh -c 'echo x >> {public}')
         echo create-in-rootdir $(r touch {rootdir}/new)
         echo chmod-public $(r chmod 666 {public})
         echo create-in-shared $(r touch {shared}/nobodys)
         echo delete-roots-in-sticky $(r rm -f {shared}/roots)
         echo delete-own-in-sticky $(r rm -f {shared}/nobodys)
         echo create-in-own $(r sh -c 'echo hi > {mine}/f && chmod 600 {mine}/f && cat {mine}/f')
         echo access-r-secret $(r test -r {secret})
         echo access-w-public $(r test -w {public})
         echo access-r-public $(r test -r {public})",
        secret = m("secret"),
        public = m("public"),
        rootdir = m("rootdir"),
        shared = m("shared"),
        mine = m("mine"),
    );
    let got = as_nobody(&script);
    let expect = [
        ("read-secret", "refused"),
        ("read-public", "ok"),
        ("write-public", "refused"),
        ("create-in-rootdir", "refused"),
        ("chmod-public", "refused"),
        ("create-in-shared", "ok"),
        ("delete-roots-in-sticky", "refused"),
        ("delete-own-in-sticky", "ok"),
        ("create-in-own", "ok"),
        ("access-r-secret", "refused"),
        ("access-w-public", "refused"),
        ("access-r-public", "ok"),
    ];
    for (what, verdict) in expect {
        let line = format!("{what} {verdict}");
        assert!(got.lines().any(|l| l == line), "{line} expected in:\n{got}");
    }
    assert!(t.p("shared/roots").exists(), "sticky bit kept root's file");
    assert_eq!(std::fs::read(t.p("public")).unwrap(), b"everyone reads");

    // The exact errnos, seen from a process of our own as that user.
    let errnos = as_nobody(&format!(
        "cat {} 2>&1; chmod 666 {} 2>&1",
        m("secret"),
        m("public")
    ));
    assert!(errnos.contains("Permission denied"), "EACCES: {errnos}");
    assert!(
        errnos.contains("Operation not permitted"),
        "EPERM: {errnos}"
    );
}
