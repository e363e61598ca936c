//! Background timers: `--rotate` (segment jump of old open segments), `--synctime`
//! (periodic fsync) and the release of cached handles of closed segments (so segments offloaded
//! and deleted by a hook free their space and come back through `missing-data`). Engine calls
//! run on the blocking pool; all stop at shutdown.

use crate::state::ServerState;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often `--rotate` looks for segments old enough to close.
const ROTATE_TICK: Duration = Duration::from_secs(1);

/// How long a handle on a closed segment may outlive the segment's file.
const RELEASE_TICK: Duration = Duration::from_secs(1);

/// Spawn the timers the configuration asks for.
pub(crate) fn spawn(srv: &Arc<ServerState>, shutdown: &watch::Receiver<bool>) {
    every(
        srv.clone(),
        shutdown.clone(),
        RELEASE_TICK,
        "release",
        |s| {
            s.engine.release_handles();
            Ok(())
        },
    );
    if srv.config.rotate > 0 {
        let age = Duration::from_secs(srv.config.rotate);
        let tick = ROTATE_TICK.min(age);
        every(srv.clone(), shutdown.clone(), tick, "rotate", move |s| {
            s.engine.rotate_all(age)
        });
    }
    if srv.config.synctime > 0 {
        let tick = Duration::from_secs(srv.config.synctime);
        every(srv.clone(), shutdown.clone(), tick, "synctime", |s| {
            s.engine.sync_all()
        });
    }
}

fn every<F>(
    srv: Arc<ServerState>,
    mut shutdown: watch::Receiver<bool>,
    tick: Duration,
    name: &'static str,
    f: F,
) where
    F: Fn(&ServerState) -> zdb_engine::Result<()> + Send + Sync + Copy + 'static,
{
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval.tick().await;
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = shutdown.changed() => return,
            }
            let s = srv.clone();
            match tokio::task::spawn_blocking(move || f(&s)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(timer = name, error = %e, "timer task failed"),
                Err(e) => tracing::error!(timer = name, error = %e, "timer task panicked"),
            }
        }
    });
}
