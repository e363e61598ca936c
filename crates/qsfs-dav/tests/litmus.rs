//! The `litmus` WebDAV suite (Debian's package) against `/dav/`: basic, copymove, props,
//! locks and http, signed in with an app password.

mod common;

#[test]
fn litmus_passes_every_suite() {
    let server = common::Server::start();
    let app = server.account("alice", "alice password 1", None);
    let out = std::process::Command::new("litmus")
        .arg(server.url("/dav/"))
        .arg("alice")
        .arg(&app)
        .current_dir(server.root())
        .output()
        .expect("litmus (Debian package litmus) must be installed: scripts/test installs it");
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    assert!(
        out.status.success(),
        "litmus failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for suite in ["basic", "copymove", "props", "locks", "http"] {
        assert!(
            text.lines()
                .any(|l| l.contains(&format!("-> running `{suite}'"))),
            "{suite} did not run:\n{text}"
        );
    }
    assert!(!text.contains("FAIL"), "{text}");
}
