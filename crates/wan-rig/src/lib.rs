//! An emulated wide-area network for tests and benchmarks (dev-only; this kernel has no
//! `netem`). Each backend sits behind its own [`Link`]: a loopback TCP listener that forwards
//! to the backend through a userspace delay line per direction, with a one-way delay, a
//! bandwidth cap shared by the link's connections, packet loss (as the stall TCP pays for it),
//! a partition switch that silently holds everything, and a down switch that resets.
//!
//! Bytes leave a link `delay` after they were serialised at its rate, not `delay` after the
//! previous chunk, so throughput is capped by the rate and the bytes in flight, never by the
//! delay alone: exactly what a client must fill with pipelined requests.
//!
//! Owns: the link model ([`profile`], [`line`]), the proxies, the test handle [`Rig`] and the
//! `wan-rig` binary's control socket ([`control`]).
//!
//! Must not touch: any crate of the stack. The stack is only ever configured to talk to the
//! rig's listen addresses.

#![forbid(unsafe_code)]

pub mod control;
pub mod line;
pub mod profile;
mod proxy;

pub use profile::Profile;
pub use proxy::{Link, LinkState};

use std::io;
use std::net::SocketAddr;

/// Links on their own runtime, for tests of any kind (sync or async): each upstream gets a
/// link listening on a free loopback port. Dropping the rig closes every link.
pub struct Rig {
    runtime: Option<tokio::runtime::Runtime>,
    links: Vec<Link>,
}

impl Rig {
    /// One link per upstream, all with `profile`.
    pub fn start(upstreams: &[SocketAddr], profile: Profile) -> io::Result<Rig> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("wan-rig")
            .enable_all()
            .build()?;
        // No `block_on`: the rig may be started from inside an async test.
        let links = {
            let _in_runtime = runtime.enter();
            upstreams
                .iter()
                .map(|&up| {
                    let l = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
                    l.set_nonblocking(true)?;
                    Link::serve(tokio::net::TcpListener::from_std(l)?, up, profile)
                })
                .collect::<io::Result<Vec<Link>>>()?
        };
        Ok(Rig {
            runtime: Some(runtime),
            links,
        })
    }

    pub fn links(&self) -> &[Link] {
        &self.links
    }

    pub fn link(&self, i: usize) -> &Link {
        &self.links[i]
    }

    /// The listen addresses, in the order of the upstreams given.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.links.iter().map(Link::listen).collect()
    }

    pub fn set_profile(&self, profile: Profile) {
        self.links.iter().for_each(|l| l.set_profile(profile));
    }

    pub fn set_partitioned(&self, partitioned: bool) {
        self.links
            .iter()
            .for_each(|l| l.set_partitioned(partitioned));
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        // Not `drop(runtime)`: that panics inside an async test.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
