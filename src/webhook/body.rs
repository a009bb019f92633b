//! Reading a webhook body without letting callers decide how much memory or
//! time we spend on it. The body must be read whole before its signature can
//! be checked, so anyone can send one: every byte held is counted against one
//! budget shared by all requests (`GHSYNC_WEBHOOK_MEMORY`), the buffer grows
//! only as data arrives (never sized from `Content-Length` alone), and a body
//! that arrives slower than GitHub sends is cut off.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use futures_util::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::ingest::{IngestError, MAX_BODY_BYTES};
use crate::config::{BodyLimits, READ_TIME_PER_MIB};

/// The first allocation for a body of unknown or large size; it doubles from there.
const FIRST_BUFFER: usize = 16 * 1024;
const MIB: f64 = 1024.0 * 1024.0;

/// The shared budget of body bytes; registered once as app data.
pub struct BodyGate {
    budget: Arc<Semaphore>,
    limits: BodyLimits,
}

/// A body read whole, and its share of the budget, given back when dropped.
pub struct Body {
    pub bytes: Vec<u8>,
    pub held: Held,
}

/// Budget held for bytes that are still in memory; released on drop.
#[derive(Default)]
pub struct Held(Option<OwnedSemaphorePermit>);

impl Held {
    fn add(&mut self, permit: OwnedSemaphorePermit) {
        match &mut self.0 {
            Some(held) => held.merge(permit),
            None => self.0 = Some(permit),
        }
    }
}

impl BodyGate {
    pub fn new(limits: &BodyLimits) -> Self {
        Self { budget: Arc::new(Semaphore::new(limits.memory)), limits: limits.clone() }
    }

    /// Bytes of the budget not held by any request right now.
    pub fn available(&self) -> usize {
        self.budget.available_permits()
    }

    /// How long the body may have taken once `received` bytes are in.
    fn allowance(&self, received: usize) -> Duration {
        self.limits.read_timeout + READ_TIME_PER_MIB.mul_f64(received as f64 / MIB)
    }

    /// Reads the body: 413 past 25 MB, 503 when the budget cannot hold it
    /// (at once when `Content-Length` already says so), 408 when too slow.
    pub async fn read(&self, declared: Option<usize>, mut payload: web::Payload) -> Result<Body, IngestError> {
        if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
            return Err(IngestError::TooLarge);
        }
        if declared.is_some_and(|n| n > self.available()) {
            return Err(IngestError::Busy);
        }
        let started = Instant::now();
        let mut body = Body { bytes: Vec::new(), held: Held::default() };
        loop {
            let deadline = started + self.allowance(body.bytes.len());
            let next = tokio::time::timeout_at(deadline, payload.next()).await.map_err(|_| IngestError::TooSlow)?;
            let Some(chunk) = next else { break };
            let chunk = chunk.map_err(|e| IngestError::Body(e.to_string()))?;
            let needed = body.bytes.len() + chunk.len();
            if needed > MAX_BODY_BYTES {
                return Err(IngestError::TooLarge);
            }
            if needed > body.bytes.capacity() {
                self.grow(&mut body, needed, declared)?;
            }
            body.bytes.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Doubles the buffer (to at least `needed`, at most the declared size or
    /// the cap), first taking the new bytes from the budget.
    fn grow(&self, body: &mut Body, needed: usize, declared: Option<usize>) -> Result<(), IngestError> {
        let current = body.bytes.capacity();
        let ceiling = declared.unwrap_or(MAX_BODY_BYTES).clamp(needed, MAX_BODY_BYTES);
        let target = (current * 2).max(FIRST_BUFFER).min(ceiling).max(needed);
        let more = u32::try_from(target - current).expect("a body is at most 25 MB");
        let permit = self.budget.clone().try_acquire_many_owned(more).map_err(|_| IngestError::Busy)?;
        body.held.add(permit);
        body.bytes.reserve_exact(target - body.bytes.len());
        Ok(())
    }
}

/// glibc serves an allocation above its mmap threshold with its own mapping, given back to the
/// kernel on free, but it raises that threshold (up to 32 MiB) each time such a block is freed.
/// After one attack, 20 MB bodies would then come from the heap, where freed memory stays in the
/// process and fragments, and RSS would wander past the body budget. Pinning the threshold keeps
/// every body buffer in a mapping of its own: memory goes back when the request ends.
pub fn return_body_buffers_to_the_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called once at start-up.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

/// Hands freed heap memory back to the kernel. Small buffers (a connection's
/// read buffer, a body's first 16 KiB) come from glibc's heap and arenas, where
/// freed memory stays in the process: after tens of thousands of half-sent
/// bodies that is hundreds of MB kept for good. Called after a period with
/// refusals (an attack), at most once per `refusals::SUMMARY_PERIOD`.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages to the kernel; it takes glibc's own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(memory: usize) -> BodyGate {
        BodyGate::new(&BodyLimits { memory, read_timeout: Duration::from_secs(1) })
    }

    #[test]
    fn the_buffer_doubles_within_the_declared_size_and_holds_what_it_allocates() {
        let gate = gate(64 << 20);
        let mut body = Body { bytes: Vec::new(), held: Held::default() };
        gate.grow(&mut body, 10, Some(100_000)).unwrap();
        assert_eq!(body.bytes.capacity(), FIRST_BUFFER);
        gate.grow(&mut body, FIRST_BUFFER + 1, Some(100_000)).unwrap();
        assert_eq!(body.bytes.capacity(), 2 * FIRST_BUFFER);
        gate.grow(&mut body, 2 * FIRST_BUFFER + 1, Some(100_000)).unwrap();
        assert_eq!(body.bytes.capacity(), 4 * FIRST_BUFFER);
        gate.grow(&mut body, 4 * FIRST_BUFFER + 1, Some(100_000)).unwrap();
        assert_eq!(body.bytes.capacity(), 100_000, "never past the declared size");
        assert_eq!(gate.available(), (64 << 20) - 100_000);
        drop(body);
        assert_eq!(gate.available(), 64 << 20, "given back when the body is dropped");
    }

    #[test]
    fn a_full_budget_refuses_instead_of_allocating() {
        let gate = gate(FIRST_BUFFER);
        let mut first = Body { bytes: Vec::new(), held: Held::default() };
        gate.grow(&mut first, 1, None).unwrap();
        let mut second = Body { bytes: Vec::new(), held: Held::default() };
        assert!(matches!(gate.grow(&mut second, 1, None), Err(IngestError::Busy)));
        assert_eq!(second.bytes.capacity(), 0);
    }

    #[test]
    fn slow_senders_get_a_little_more_time_per_mib_received() {
        let gate = gate(64 << 20);
        assert_eq!(gate.allowance(0), Duration::from_secs(1));
        assert_eq!(gate.allowance(1 << 20), Duration::from_secs(1) + READ_TIME_PER_MIB);
    }
}
