//! Stand-in backends for the embedded default: one real `zdb` server process per backend of
//! the configuration, on its 127.0.0.1 port, with its files in `<standin_dir>/<role>-<i>`.
//!
//! They run as child processes of `qsfs` (the `qsfs standin` sub-command, so the one binary
//! is enough) and die with it (`PR_SET_PDEATHSIG`). Each writes `zdb.pid` and `zdb.log` in
//! its folder, so a drill can stop one the way a remote node would go away. A stand-in that
//! dies is not restarted: the stack must cope with it, as with a real node.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::config::Config;

/// How long a starting stand-in may take to answer PING.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// One backend to stand in for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// `meta-<i>` or `data-<i>`.
    pub label: String,
    pub port: u16,
    pub namespace: String,
    /// Metadata backends are keyed (user mode), data backends sequential.
    pub sequential: bool,
    /// The namespace's password (the backend's `password`).
    pub password: Option<String>,
}

/// Environment variables that hand a stand-in its passwords: the command line is readable by
/// every local user (`/proc/PID/cmdline`), the environment only by the owner.
pub const ADMIN_ENV: &str = "QSFS_STANDIN_ADMIN";
pub const PASSWORD_ENV: &str = "QSFS_STANDIN_PASSWORD";

/// Which stand-ins a configuration needs.
pub fn specs(config: &Config) -> anyhow::Result<Vec<Spec>> {
    let meta = config.zstor.meta.config.backends.iter();
    let data = config.zstor.backends();
    let mut out = Vec::new();
    for (role, list) in [("meta", meta.collect::<Vec<_>>()), ("data", data.collect())] {
        for (i, b) in list.into_iter().enumerate() {
            let addr: std::net::SocketAddr = b
                .address
                .parse()
                .with_context(|| format!("backend address {}", b.address))?;
            if !addr.ip().is_loopback() {
                bail!(
                    "[qsfs].standin_dir is set but backend {} is not on loopback: stand-ins \
                     only replace local backends",
                    b.address
                );
            }
            out.push(Spec {
                label: format!("{role}-{i}"),
                port: addr.port(),
                namespace: b.namespace.clone().unwrap_or_else(|| "default".into()),
                sequential: role == "data",
                password: b.password.clone(),
            });
        }
    }
    Ok(out)
}

/// The running stand-ins; dropping this stops them.
pub struct Standins {
    children: Vec<(Spec, Child)>,
}

impl Standins {
    /// Start one process per spec under `dir` (each `exe standin …`, `exe` being the qsfs
    /// binary) and wait until each answers.
    pub fn start(
        exe: &Path,
        dir: &Path,
        specs: &[Spec],
        admin: Option<&str>,
    ) -> anyhow::Result<Standins> {
        if admin.is_none() {
            tracing::warn!(
                "the stand-in backends have no admin password: any local user can delete \
                 their namespaces; set [qsfs].standin_admin_password and each backend's \
                 password in the configuration (taken at the next start)"
            );
        }
        let mut started = Standins {
            children: Vec::new(),
        };
        for spec in specs {
            let home = dir.join(&spec.label);
            // The stand-ins' shards are ciphertext, but deleting them is enough to do harm.
            zdb_engine::private::private_dir(&home)
                .with_context(|| format!("creating {}", home.display()))?;
            wait_previous_gone(&home, &spec.label)?;
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(home.join("zdb.log"))
                .with_context(|| format!("opening {}/zdb.log", home.display()))?;
            let mut cmd = Command::new(exe);
            cmd.env_remove(ADMIN_ENV).env_remove(PASSWORD_ENV);
            if let Some(a) = admin {
                cmd.env(ADMIN_ENV, a);
            }
            if let Some(p) = &spec.password {
                cmd.env(PASSWORD_ENV, p);
            }
            cmd.arg("standin")
                .arg("--dir")
                .arg(&home)
                .arg("--port")
                .arg(spec.port.to_string())
                .arg("--namespace")
                .arg(&spec.namespace)
                .args(spec.sequential.then_some("--sequential"))
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log);
            // Own process group: a Ctrl-C in the terminal reaches qsfs only, which still
            // needs its backends to offload the last segments while it shuts down. They
            // die with qsfs all the same (parent-death signal).
            // SAFETY: prctl and setpgid are async-signal-safe and touch only this child.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0
                        || libc::setpgid(0, 0) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let child = cmd
                .spawn()
                .with_context(|| format!("starting stand-in {}", spec.label))?;
            std::fs::write(home.join("zdb.pid"), format!("{}\n", child.id()))?;
            started.children.push((spec.clone(), child));
        }
        for (spec, child) in &mut started.children {
            wait_ready(spec, child)?;
        }
        tracing::info!(count = specs.len(), dir = %dir.display(), "stand-in backends up");
        Ok(started)
    }

    /// Stop every stand-in (SIGTERM, then SIGKILL after 10 s).
    pub fn stop(&mut self) {
        for (_, child) in &self.children {
            // SAFETY: plain kill(2) on a pid we spawned and have not reaped.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for (spec, child) in &mut self.children {
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        tracing::warn!(backend = %spec.label, "stand-in did not stop; killing it");
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
        self.children.clear();
    }
}

impl Drop for Standins {
    fn drop(&mut self) {
        self.stop();
    }
}

/// After a crash of qsfs its stand-ins get SIGTERM and finish on their own; a quick restart
/// waits for them to let go of their port and files.
fn wait_previous_gone(home: &Path, label: &str) -> anyhow::Result<()> {
    let Ok(text) = std::fs::read_to_string(home.join("zdb.pid")) else {
        return Ok(());
    };
    let Ok(pid) = text.trim().parse::<u32>() else {
        return Ok(());
    };
    let alive = || {
        std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
            let is_standin = c.split(|&b| b == 0).any(|a| a == b"standin");
            let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z "));
            is_standin && !zombie
        })
    };
    let deadline = Instant::now() + READY_TIMEOUT;
    while alive() {
        if Instant::now() >= deadline {
            bail!("stand-in {label} of a previous run (pid {pid}) is still running");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn wait_ready(spec: &Spec, child: &mut Child) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], spec.port));
    loop {
        if let Some(status) = child.try_wait()? {
            bail!(
                "stand-in {} exited at start ({status}); see its zdb.log",
                spec.label
            );
        }
        if ping(addr) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("stand-in {} not answering on {addr}", spec.label);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A RESP PING over a short-lived connection.
fn ping(addr: std::net::SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 7];
    s.write_all(b"*1\r\n$4\r\nPING\r\n").is_ok()
        && s.read_exact(&mut buf).is_ok()
        && &buf == b"+PONG\r\n"
}

/// Body of `qsfs standin`: serve one zdb on 127.0.0.1:`port` from `dir`, with `namespace`
/// (in sequential mode for data backends), until SIGTERM/SIGINT.
pub fn serve(dir: &Path, port: u16, namespace: &str, sequential: bool) -> anyhow::Result<()> {
    let admin = std::env::var(ADMIN_ENV).ok();
    let password = std::env::var(PASSWORD_ENV).ok();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut config = zdb_server::ServerConfig::new(dir.join("data"), dir.join("index"));
        config.listen = "127.0.0.1".into();
        config.port = port;
        config.admin = admin;
        let server = zdb_server::Server::bind(config)
            .await
            .with_context(|| format!("stand-in on 127.0.0.1:{port}"))?;
        let engine = server.engine().clone();
        let name = namespace.to_string();
        tokio::task::spawn_blocking(move || {
            ensure_namespace(&engine, &name, sequential, password.as_deref())
        })
        .await??;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        server
            .run_until(async move {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            })
            .await?;
        Ok(())
    })
}

/// Create the namespace if missing; give it the password (not public: reading needs it too).
fn ensure_namespace(
    engine: &zdb_engine::Engine,
    name: &str,
    sequential: bool,
    password: Option<&str>,
) -> anyhow::Result<()> {
    use zdb_engine::{Mode, SettingChange};
    if name == zdb_engine::DEFAULT_NAMESPACE {
        return Ok(());
    }
    let ns = match engine.namespace(name) {
        Some(ns) => ns,
        None => engine.create(name)?,
    };
    if sequential && ns.mode() != Mode::Seq && ns.is_empty() {
        ns.change_setting(SettingChange::Mode(Mode::Seq))?;
    }
    if let Some(p) = password {
        let s = ns.settings();
        if s.password.as_deref() != Some(p) {
            ns.change_setting(SettingChange::Password(Some(p.to_string())))?;
        }
        if s.public {
            ns.change_setting(SettingChange::Public(false))?;
        }
    }
    Ok(())
}
