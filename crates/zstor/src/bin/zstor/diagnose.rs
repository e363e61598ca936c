//! The checks behind `zstor test`: every backend answers in the right namespace mode, all 4
//! metadata backends are writable, and a valid shard placement exists over the data backends
//! that answered. The config itself was validated when it was loaded.

use zstor::config::Config;
use zstor::placement;
use zstor::probe::{status, BackendStatus, Status};

/// What `test` found.
#[derive(Debug, Clone)]
pub struct Diagnosis {
    /// Every backend's state.
    pub status: Status,
    /// Reasons the setup cannot store files as configured (empty: all good).
    pub problems: Vec<String>,
    /// Data backends that answered, and how many are configured.
    pub data_reachable: (usize, usize),
}

impl Diagnosis {
    /// Nothing wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

fn check_backend(field: String, b: &BackendStatus, mode: &str, problems: &mut Vec<String>) {
    let label = format!("{field} ({}/{})", b.address, b.namespace);
    if !b.reachable {
        problems.push(format!(
            "{label}: unreachable: {}",
            b.error.as_deref().unwrap_or("no answer")
        ));
    } else if let Some(m) = b.mode.as_deref().filter(|m| *m != mode) {
        problems.push(format!(
            "{label}: namespace is in {m} mode, {mode} is needed"
        ));
    }
}

/// Contact every backend of `config` and check it can store files.
pub async fn diagnose(config: &Config) -> Diagnosis {
    let status = status(config).await;
    let mut problems = Vec::new();
    for (i, b) in status.meta.iter().enumerate() {
        check_backend(
            format!("meta.config.backends[{i}]"),
            b,
            "userkey",
            &mut problems,
        );
    }
    for (g, group) in status.groups.iter().enumerate() {
        for (i, b) in group.iter().enumerate() {
            check_backend(
                format!("groups[{g}].backends[{i}]"),
                b,
                "sequential",
                &mut problems,
            );
        }
    }
    let sizes: Vec<usize> = status
        .groups
        .iter()
        .map(|g| g.iter().filter(|b| b.reachable).count())
        .collect();
    let reachable: usize = sizes.iter().sum();
    let total: usize = status.groups.iter().map(Vec::len).sum();
    let rules = config.rules();
    if let Err(e) = placement::plan(&sizes, &rules) {
        problems.push(match e {
            placement::PlacementError::TooFewBackends { n, available } => {
                format!("too few data backends: {available} reachable, {n} needed")
            }
            other => {
                format!("no valid placement over the {reachable} reachable data backends: {other}")
            }
        });
    }
    Diagnosis {
        status,
        problems,
        data_reachable: (reachable, total),
    }
}
