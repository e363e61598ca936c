//! The `wan-rig` binary's control socket: a unix socket taking one command per line and
//! answering one line, `ok ...` or `error: ...`. Links are named by their index (the order of
//! `--link`), a comma list of indexes, or `all`.
//!
//! ```text
//! partition LINKS | heal LINKS | down LINKS | up LINKS
//! profile LINKS delay=25ms,rate=100mbit,loss=0.1%
//! show            one line: every link as index:listen->upstream[profile,flags,carried]
//! ```

use crate::{Link, Profile};
use std::path::Path;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;

/// Serve commands on `path` until the process ends.
pub async fn serve(path: &Path, links: Vec<Link>) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    loop {
        let (stream, _) = listener.accept().await?;
        let links = links.clone();
        tokio::spawn(async move {
            let (rd, mut wr) = stream.into_split();
            let mut lines = BufReader::new(rd).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let answer = match apply(&line, &links) {
                    Ok(msg) => format!("ok {msg}\n"),
                    Err(e) => format!("error: {e}\n"),
                };
                if wr.write_all(answer.as_bytes()).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// Apply one command line; returns what to say back.
pub fn apply(line: &str, links: &[Link]) -> Result<String, String> {
    let mut words = line.split_whitespace();
    let cmd = words.next().ok_or("empty command")?;
    if cmd == "show" {
        return Ok(show(links));
    }
    let chosen = select(
        words
            .next()
            .ok_or("which links? (all, or indexes like 0,3)")?,
        links,
    )?;
    let profile = match cmd {
        "profile" => Some(
            words
                .next()
                .ok_or("profile needs a spec")?
                .parse::<Profile>()
                .map_err(|e| e.to_string())?,
        ),
        _ => None,
    };
    for l in &chosen {
        match cmd {
            "partition" => l.set_partitioned(true),
            "heal" => l.set_partitioned(false),
            "down" => l.set_down(true),
            "up" => l.set_down(false),
            "profile" => l.set_profile(profile.expect("parsed above")),
            _ => return Err(format!("unknown command {cmd:?}")),
        }
    }
    Ok(format!("{cmd} {} link(s)", chosen.len()))
}

fn select(which: &str, links: &[Link]) -> Result<Vec<Link>, String> {
    if which == "all" {
        return Ok(links.to_vec());
    }
    which
        .split(',')
        .map(|i| {
            let n: usize = i
                .parse()
                .map_err(|_| format!("{i:?} is not a link index"))?;
            links
                .get(n)
                .cloned()
                .ok_or_else(|| format!("no link {n} (there are {})", links.len()))
        })
        .collect()
}

fn show(links: &[Link]) -> String {
    links
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let s = l.state();
            let (up, down) = l.carried();
            format!(
                "{i}:{}->{}[{}{}{},carried={up}/{down}]",
                l.listen(),
                l.upstream(),
                s.profile,
                if s.partitioned { ",partitioned" } else { "" },
                if s.down { ",down" } else { "" },
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}
