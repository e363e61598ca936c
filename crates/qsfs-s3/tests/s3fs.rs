//! An s3fs mount of a bucket: a tree copied onto it with its modes and times, unmounted,
//! compared with what landed in the drive, mounted again and read back.

mod common;

use std::path::Path;
use std::process::Command;

use test_kit::clients::{make_tree, run, same_trees};

/// An s3fs mount, unmounted on drop.
struct S3fs<'a> {
    at: &'a Path,
}

impl<'a> S3fs<'a> {
    fn mount(server: &common::Server, bucket: &str, at: &'a Path, passwd: &Path) -> S3fs<'a> {
        std::fs::create_dir_all(at).unwrap();
        run(Command::new("s3fs")
            .arg(bucket)
            .arg(at)
            .args(["-o", &format!("url={}", server.endpoint())])
            .args(["-o", "use_path_request_style"])
            .args(["-o", &format!("passwd_file={}", passwd.display())])
            .args(["-o", "endpoint=us-east-1,sigv4,nonempty"])
            .env_remove("AWS_CA_BUNDLE"));
        // s3fs returns once it forked; the mount is up when it shows in /proc/mounts.
        let shown = at.to_str().unwrap().to_string();
        for _ in 0..500 {
            let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
            if mounts
                .lines()
                .any(|l| l.split(' ').nth(1) == Some(shown.as_str()))
            {
                return S3fs { at };
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("s3fs did not mount {shown}");
    }
}

impl Drop for S3fs<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.at).status();
    }
}

#[test]
fn an_s3fs_mount_round_trips_a_tree() {
    let server = common::Server::start();
    let (key, secret) = server.account("alice", None);
    std::fs::create_dir_all(server.home("alice").join("disk")).unwrap();
    let work = tempfile::tempdir().unwrap();
    let passwd = work.path().join("passwd");
    std::fs::write(&passwd, format!("{key}:{secret}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&passwd, std::fs::Permissions::from_mode(0o600)).unwrap();
    let src = work.path().join("src");
    make_tree(&src, 3 << 20);
    let mnt = work.path().join("mnt");
    {
        let m = S3fs::mount(&server, "disk", &mnt, &passwd);
        run(Command::new("cp")
            .arg("-r")
            .arg(&src)
            .arg(m.at.join("tree")));
        run(&mut Command::new("sync"));
    }
    // Unmounted: everything is in the drive, as files.
    same_trees(&src, &server.home("alice").join("disk/tree"));
    let m = S3fs::mount(&server, "disk", &mnt, &passwd);
    same_trees(&src, &m.at.join("tree"));
    run(Command::new("rm").arg("-r").arg(m.at.join("tree/folder 0")));
    assert!(!server.home("alice").join("disk/tree/folder 0").exists());
}
