//! How many connections the server holds and for how long, so that a flood of
//! idle or slow connections cannot use up the process's file descriptors or
//! keep `/healthz` from answering. The open-file limit is raised to the hard
//! limit at start (with libc, already a dependency of tokio and others: two
//! calls do not need a crate of their own), and the connection cap is derived
//! from it with headroom for the database, logs and GitHub.

use std::time::Duration;

/// actix workers (threads accepting and serving connections).
pub const WORKERS: usize = 2;
/// Time for a new connection to send its request head (actix's default, made explicit).
pub const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// An idle keep-alive connection is closed after this long.
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// Time given a client to close its side once we are done with a connection.
pub const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Descriptors kept free for everything that is not an incoming connection.
const FD_HEADROOM: u64 = 1024;
/// Per worker, whatever the limit (actix's own default).
const MOST_PER_WORKER: u64 = 25_000;
/// Per worker, even under a tiny open-file limit.
const FEWEST_PER_WORKER: u64 = 64;
/// Where to stop when the hard limit is "unlimited" (Linux refuses more than `nr_open`).
const UNLIMITED_TARGET: u64 = 1 << 20;

/// Raises the soft open-file limit to the hard one; returns the limit now in force.
pub fn raise_open_file_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own; no other memory is touched.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 1024;
    }
    let target = if limit.rlim_max == libc::RLIM_INFINITY { UNLIMITED_TARGET } else { limit.rlim_max };
    if limit.rlim_cur != libc::RLIM_INFINITY && limit.rlim_cur < target {
        let raised = libc::rlimit { rlim_cur: target, rlim_max: limit.rlim_max };
        // SAFETY: setrlimit only reads the struct; failure leaves the old limit.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return target;
        }
    }
    limit.rlim_cur
}

/// Connections each worker may hold under `open_files` descriptors.
pub fn max_connections_per_worker(open_files: u64) -> usize {
    let share = open_files.saturating_sub(FD_HEADROOM) / WORKERS as u64;
    share.clamp(FEWEST_PER_WORKER, MOST_PER_WORKER) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_leave_headroom_under_the_open_file_limit() {
        assert_eq!(max_connections_per_worker(1024), FEWEST_PER_WORKER as usize);
        assert_eq!(max_connections_per_worker(16_384), (16_384 - 1024) / 2);
        assert_eq!(max_connections_per_worker(1 << 20), 25_000);
    }

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let now = raise_open_file_limit();
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
        assert_eq!(limit.rlim_cur, now);
    }
}
