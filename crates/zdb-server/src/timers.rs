//! Background timers: `--rotate` (segment jump of old open segments), `--synctime`
//! (periodic fsync) and the release of cached handles of closed segments (so segments offloaded
//! and deleted by a hook free their space and come back through `missing-data`). Each is a
//! named [`service_kit::Tasks`] entry; engine calls run on the blocking pool; all stop at
//! shutdown.

use crate::state::ServerState;
use service_kit::Tasks;
use std::sync::Arc;
use std::time::Duration;

/// How often `--rotate` looks for segments old enough to close.
const ROTATE_TICK: Duration = Duration::from_secs(1);

/// How long a handle on a closed segment may outlive the segment's file.
const RELEASE_TICK: Duration = Duration::from_secs(1);

/// Start the timers the configuration asks for.
pub(crate) fn start(srv: &Arc<ServerState>) -> Tasks {
    let tasks = Tasks::new();
    let s = srv.clone();
    tasks.every_blocking("release", Some(RELEASE_TICK), move || {
        s.engine.release_handles();
        Ok::<(), zdb_engine::Error>(())
    });
    if srv.config.rotate > 0 {
        let age = Duration::from_secs(srv.config.rotate);
        let s = srv.clone();
        tasks.every_blocking("rotate", Some(ROTATE_TICK.min(age)), move || {
            s.engine.rotate_all(age)
        });
    }
    if srv.config.synctime > 0 {
        let tick = Duration::from_secs(srv.config.synctime);
        let s = srv.clone();
        tasks.every_blocking("synctime", Some(tick), move || s.engine.sync_all());
    }
    tasks
}
