//! What a steady run's slow answers came from, as far as the machine can
//! tell (`benches/ingest.rs`). On a shared 2-core VM the same build's steady
//! p99 went from 6 ms to 117 ms between runs minutes apart, on both backends:
//! the runs with the long tails were those where the hypervisor took a third
//! of the CPU (steal). So each run says what the machine did meanwhile.

use std::time::Duration;

/// A steady run's slow answers and the machine's doings while it ran.
pub struct Tail {
    /// Answers slower than `SLOW`.
    slow: usize,
    /// The `WINDOW`s of the run they were sent in: a stall makes them cluster, a cost spreads them.
    windows: usize,
    /// Requests this process sent over 5 ms late: its own stall, not the server's.
    late: usize,
    /// CPU time the hypervisor took from this machine, and the share of all its cores' time.
    stolen: Duration,
    stolen_share: f64,
    /// PostgreSQL checkpoints begun.
    checkpoints: i64,
}

impl Tail {
    const SLOW: Duration = Duration::from_millis(10);
    const WINDOW: Duration = Duration::from_millis(100);
    /// Above this share stolen, the run measured the machine's neighbours, not ghsync.
    const BUSY: f64 = 0.02;

    /// `sent`: each request's send time from the run's start and its answer time, in the order sent.
    pub fn of(sent: &[(Duration, Duration)], period: Duration, steal_ticks: u64, checkpoints: i64) -> Self {
        let late = (sent.iter().enumerate())
            .filter(|(i, (at, _))| at.saturating_sub(period * *i as u32) > Duration::from_millis(5))
            .count();
        let slow: Vec<u128> = (sent.iter())
            .filter(|(_, took)| *took > Self::SLOW)
            .map(|(at, _)| at.as_millis() / Self::WINDOW.as_millis())
            .collect();
        let windows = slow.iter().collect::<std::collections::HashSet<_>>().len();
        // /proc/stat counts in USER_HZ ticks, 100 a second on Linux.
        let stolen = Duration::from_millis(steal_ticks * 10);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let lasted = sent.iter().map(|(at, took)| *at + *took).max().unwrap_or_default();
        let stolen_share = stolen.as_secs_f64() / (lasted.as_secs_f64() * cores).max(f64::EPSILON);
        Self { slow: slow.len(), windows, late, stolen, stolen_share, checkpoints }
    }
}

impl std::fmt::Display for Tail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} answers over 10 ms, sent in {} of the run's 100 ms windows; {} sent over 5 ms late; \
             CPU stolen by the hypervisor {} ms ({:.1} %); checkpoints begun {}",
            self.slow,
            self.windows,
            self.late,
            self.stolen.as_millis(),
            self.stolen_share * 100.0,
            self.checkpoints,
        )?;
        if self.stolen_share > Self::BUSY {
            write!(f, " (a busy machine: this run's tail is its neighbours', run again)")?;
        }
        Ok(())
    }
}

/// The machine's CPU time stolen by the hypervisor so far, in ticks (Linux's `/proc/stat`; 0 elsewhere).
pub fn steal_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    stat.lines().next().and_then(|cpu| cpu.split_whitespace().nth(8)).and_then(|t| t.parse().ok()).unwrap_or(0)
}
