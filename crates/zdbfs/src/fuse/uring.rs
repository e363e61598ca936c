//! FUSE over io_uring (Linux 6.14+, `fs/fuse/dev_uring.c`): the kernel keeps one request
//! queue per possible CPU and puts each request on the queue of the CPU its caller runs
//! on. Every queue has its workers, each with its own ring holding one registered entry: a
//! request is only ever handed to an idle worker, so a slow one (a fetch from a backend)
//! holds up no other. `threads=N` is spread over the queues, at least two per queue: with
//! one, a request waited behind the one before it (tar -x of /usr/include: 4.0-4.3 s, 1.24 s
//! with two or four). Callers that block in a worker (fsync) need more: four writers of
//! fsync'ed files on two CPUs wrote 688 files/s with two workers per queue, 1,500/s with
//! four (the default of 8 threads on two CPUs).
//!
//! The workers are not pinned to their queue's CPU. Pinned, a caller in another scheduling
//! group (another session's autogroup, another cgroup) did not yield to the worker it
//! woke, slept first, and was then woken on the other, idle CPU for every reply: `tar -x`
//! of /usr/include took 3.0-3.2 s against 2.1 s unpinned and 2.2 s over `/dev/fuse`. In
//! the caller's own group both placements serve the request on the caller's CPU
//! (1.25-1.5 s; unpinned the faster).
//!
//! An entry is a header buffer (`fuse_uring_req_header`: the request or reply header, the
//! fixed argument struct, the entry's commit id and payload size) and a payload buffer (the
//! rest of the request; the whole reply body). The worker registers the entry
//! (FUSE_IO_URING_CMD_REGISTER), then answers each request and fetches the next in one
//! command (COMMIT_AND_FETCH). The kernel uses the rings only once every queue has an
//! entry; FORGET and INTERRUPT still come through `/dev/fuse`. At unmount every entry
//! completes with ENOTCONN and the workers exit.

use super::abi::{self, InHeader, Reply};
use super::ops;
use crate::fs::Fs;
use io_uring::{cqueue, opcode, squeue, types, IoUring};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

const CMD_REGISTER: u32 = 1;
const CMD_COMMIT_AND_FETCH: u32 = 2;

/// `fuse_uring_req_header`: `in_out[128]`, `op_in[128]`, `fuse_uring_ent_in_out` (32).
const HEADER_LEN: usize = 288;
const OP_IN: usize = 128;
const COMMIT_ID: usize = 256 + 8;
const PAYLOAD_SZ: usize = 256 + 16;

/// How long `start` waits for the workers to report their registration.
const REGISTER_WAIT: Duration = Duration::from_secs(10);

/// Start `threads` workers spread over every possible CPU's queue (at least two each);
/// returns once all registered, or the first failure (the kernel then keeps using
/// `/dev/fuse`).
pub fn start(
    fd: &Arc<OwnedFd>,
    fs: &Arc<Fs>,
    threads: usize,
    max_write: usize,
) -> io::Result<Vec<JoinHandle<()>>> {
    let queues = possible_cpus()?;
    let per_queue = threads.div_ceil(queues).max(2);
    let (tx, rx) = mpsc::channel();
    let mut workers = Vec::new();
    for qid in 0..queues {
        for n in 0..per_queue {
            let (fd, fs, tx) = (fd.clone(), fs.clone(), tx.clone());
            workers.push(
                std::thread::Builder::new()
                    .name(format!("zdbfs-ring-{qid}.{n}"))
                    .spawn(move || worker(&fd, &fs, qid, max_write + 4096, &tx))?,
            );
        }
    }
    for _ in 0..queues * per_queue {
        match rx.recv_timeout(REGISTER_WAIT) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(io::Error::other("ring workers did not register in time")),
        }
    }
    tracing::info!(queues, per_queue, "FUSE requests over io_uring");
    Ok(workers)
}

/// `nr_cpu_ids`: one past the highest possible CPU (the kernel's queue count).
fn possible_cpus() -> io::Result<usize> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/possible")?;
    text.trim()
        .rsplit([',', '-'])
        .next()
        .and_then(|n| n.parse::<usize>().ok())
        .map(|n| n + 1)
        .ok_or_else(|| io::Error::other(format!("cannot read possible CPUs from {text:?}")))
}

/// An io_uring command for `/dev/fuse` (`fuse_uring_cmd_req` in the 80-byte command area).
fn command(
    fd: i32,
    cmd: u32,
    qid: u16,
    commit_id: u64,
    iov: Option<*const libc::iovec>,
) -> squeue::Entry128 {
    let mut area = [0u8; 80];
    area[8..16].copy_from_slice(&commit_id.to_ne_bytes());
    area[16..18].copy_from_slice(&qid.to_ne_bytes());
    let mut op = opcode::UringCmd80::new(types::Fd(fd), cmd).cmd(area);
    if let Some(iov) = iov {
        op = op.addr(Some(iov as u64));
    }
    let sqe = op.build();
    if iov.is_none() {
        return sqe;
    }
    // REGISTER passes two iovecs: `sqe->len` = 2, which the crate has no setter for. The
    // entry is the kernel's `struct io_uring_sqe` (128-byte form); `len` is at offset 24.
    const _: () = assert!(std::mem::size_of::<squeue::Entry128>() == 128);
    // SAFETY: Entry128 is repr(C) and exactly the 128 bytes of the kernel's SQE.
    let mut raw: [u8; 128] = unsafe { std::mem::transmute(sqe) };
    raw[24..28].copy_from_slice(&2u32.to_ne_bytes());
    // SAFETY: same layout back.
    unsafe { std::mem::transmute::<[u8; 128], squeue::Entry128>(raw) }
}

/// The header buffer, aligned as the kernel's struct.
#[repr(C, align(64))]
struct Header([u8; HEADER_LEN]);

fn worker(
    fd: &OwnedFd,
    fs: &Fs,
    qid: usize,
    payload_len: usize,
    registered: &mpsc::Sender<io::Result<()>>,
) {
    let fail = |e: io::Error| {
        let _ = registered.send(Err(e));
    };
    let mut ring = match IoUring::<squeue::Entry128, cqueue::Entry>::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(4)
    {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    // The kernel writes into these while the entry is registered: they are freed only once
    // it let go (a refused registration, or the entry's completion at the session's end).
    // A worker leaving otherwise leaks them rather than hand the kernel freed memory.
    let mut header = std::mem::ManuallyDrop::new(Box::new(Header([0; HEADER_LEN])));
    let mut payload = std::mem::ManuallyDrop::new(vec![0u8; payload_len]);
    let release = |header: std::mem::ManuallyDrop<Box<Header>>,
                   payload: std::mem::ManuallyDrop<Vec<u8>>| {
        drop(std::mem::ManuallyDrop::into_inner(header));
        drop(std::mem::ManuallyDrop::into_inner(payload));
    };
    let iov = [
        libc::iovec {
            iov_base: header.0.as_mut_ptr().cast(),
            iov_len: HEADER_LEN,
        },
        libc::iovec {
            iov_base: payload.as_mut_ptr().cast(),
            iov_len: payload_len,
        },
    ];
    let raw_fd = fd.as_raw_fd();
    let qid16 = qid as u16;
    let register = command(raw_fd, CMD_REGISTER, qid16, 0, Some(iov.as_ptr()));
    // SAFETY: the buffers the iovecs name stay allocated while the kernel may use them
    // (see `release`).
    if unsafe { ring.submission().push(&register) }.is_err() {
        release(header, payload);
        return fail(io::Error::other("submission queue full"));
    }
    if let Err(e) = ring.submit() {
        return fail(e);
    }
    // The command is handled at submission: a refusal is already completed; an accepted
    // entry completes only when a request arrives.
    if let Some(cqe) = ring.completion().next() {
        release(header, payload);
        return fail(io::Error::from_raw_os_error(-cqe.result().min(-1)));
    }
    let _ = registered.send(Ok(()));
    // Where the kernel writes requests: the payload buffer must never move.
    let registered = payload.as_ptr();
    let mut out = Reply::default();
    loop {
        match ring.submit_and_wait(1) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) => {
                tracing::error!(qid, error = %e, "ring wait failed; worker stops");
                return;
            }
        }
        let Some(cqe) = ring.completion().next() else {
            continue;
        };
        if cqe.result() < 0 {
            let e = -cqe.result();
            // ENOTCONN / ECONNABORTED: the session ended (unmount). Either way the entry's
            // command completed: the kernel holds the buffers no more.
            if e != libc::ENOTCONN && e != libc::ECONNABORTED {
                tracing::error!(qid, error = %io::Error::from_raw_os_error(e), "ring entry failed");
            }
            release(header, payload);
            return;
        }
        let h = &mut header.0;
        let commit_id = u64::from_ne_bytes(h[COMMIT_ID..COMMIT_ID + 8].try_into().unwrap());
        let request = InHeader::parse(&h[..abi::IN_HEADER_LEN]);
        out.0.clear();
        let mut in_place = false;
        let outcome = match request {
            Some(req) => {
                let fixed_len = abi::fixed_args_len(req.opcode).min(HEADER_LEN - OP_IN);
                let fixed = &h[OP_IN..OP_IN + fixed_len];
                if read_fits(&req, fixed, payload_len) {
                    // A READ brings nothing in the payload buffer and its data is the whole
                    // reply: built there directly, it is not copied once more (1 MiB per
                    // READ of a sequential reader). `out` lends the buffer its place.
                    in_place = true;
                    std::mem::swap(&mut out.0, &mut *payload);
                    out.0.clear();
                    // Taken back even if the handler panics: the buffer then leaks with
                    // `payload` instead of being freed under the kernel.
                    let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        ops::handle(fs, &req, fixed, &[], &mut out)
                    }));
                    std::mem::swap(&mut out.0, &mut *payload);
                    handled.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                } else {
                    let len = u32::from_ne_bytes(h[PAYLOAD_SZ..PAYLOAD_SZ + 4].try_into().unwrap());
                    let rest = &payload[..(len as usize).min(payload_len)];
                    ops::handle(fs, &req, fixed, rest, &mut out)
                }
            }
            None => ops::Outcome::Error(crate::Errno::EIO),
        };
        // The whole reply body goes in the payload buffer. The kernel sends nothing that
        // wants no reply through the ring; an empty one keeps the entry going regardless.
        let (error, body_len) = if in_place {
            if payload.as_ptr() != registered || payload.capacity() < payload_len {
                // It grew past its size, so it was moved: the kernel would write the next
                // request into freed memory. Never happens (a READ's reply is at most its
                // size, checked above); stop before committing if it ever does.
                tracing::error!(qid, "READ reply outgrew the ring's buffer");
                std::process::abort();
            }
            let body_len = payload.len();
            // SAFETY: back to the length it was allocated with; every byte of it was
            // initialised then, and clearing a Vec<u8> leaves its bytes in place.
            unsafe { payload.set_len(payload_len) };
            match outcome.reply(&out) {
                Some((0, _)) => (0, body_len),
                Some((error, _)) => (error, 0),
                None => (0, 0),
            }
        } else {
            let (error, body) = outcome.reply(&out).unwrap_or((0, &[]));
            match payload.get_mut(..body.len()) {
                Some(dst) => {
                    dst.copy_from_slice(body);
                    (error, body.len())
                }
                None => (-libc::EIO, 0),
            }
        };
        let unique = request.map_or(commit_id, |r| r.unique);
        h[..abi::OUT_HEADER_LEN].copy_from_slice(&abi::out_header(unique, error, body_len));
        h[PAYLOAD_SZ..PAYLOAD_SZ + 4].copy_from_slice(&(body_len as u32).to_ne_bytes());
        let commit = command(raw_fd, CMD_COMMIT_AND_FETCH, qid16, commit_id, None);
        // SAFETY: as for REGISTER: the entry's buffers outlive the command.
        if unsafe { ring.submission().push(&commit) }.is_err() {
            tracing::error!(qid, "submission queue full; worker stops");
            return;
        }
    }
}

/// Whether `req` is a READ whose reply fits the payload buffer (`fuse_read_in`: the size
/// is the u32 at byte 16).
fn read_fits(req: &InHeader, fixed: &[u8], payload_len: usize) -> bool {
    req.opcode == abi::op::READ
        && fixed
            .get(16..20)
            .map(|b| u32::from_ne_bytes(b.try_into().unwrap()))
            .is_some_and(|size| size as usize <= payload_len)
}
