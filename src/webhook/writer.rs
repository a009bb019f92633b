//! Group commit for the request path. Each accepted delivery must be committed
//! before its 202; committing them one by one makes every request wait for its
//! own disk flush. The writer takes whatever arrived while the last commit ran
//! and commits it in one transaction: the same guarantee, far fewer flushes.
//! How a group is committed is the backend's to say (`store/group_commit.rs`):
//! through the store, as many groups at once as the backend says (PostgreSQL:
//! one, `store/postgres.rs` says why), or on a thread of the writer's own (SQLite).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::store::{self, GroupCommit, GroupCommitter, Store, StoreError, StoreResult};

use crate::domain::{InsertOutcome, NewDelivery};

/// Deliveries committed together at most.
const MAX_GROUP: usize = 256;
/// Requests waiting for the writer at most; beyond that, callers wait to enqueue.
const QUEUE: usize = 4096;

type Reply = oneshot::Sender<Result<InsertOutcome, StoreError>>;

#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<(NewDelivery, Reply)>,
    /// Deliveries handed in and not yet committed: GitHub is waiting on these.
    waiting: Arc<AtomicUsize>,
    /// Pack each body on its request's own thread (`submit`).
    pack_here: bool,
}

impl Writer {
    /// Spawns the writer, a task or a thread as the store asks; it ends when
    /// every `Writer` clone is dropped. Call it within the store's runtime.
    pub fn spawn(store: Arc<dyn Store>) -> StoreResult<Self> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let pack_here = match store.group_commit()? {
            GroupCommit::Overlapping(in_flight) => {
                tokio::spawn(run(store, rx, in_flight.max(1)));
                true
            }
            GroupCommit::Dedicated(committer) => {
                std::thread::Builder::new()
                    .name("webhook-writer".into())
                    .spawn(move || run_dedicated(committer, rx))
                    .map_err(|e| StoreError::Unavailable(format!("cannot start the webhook writer: {e}")))?;
                false
            }
        };
        Ok(Self { tx, waiting: Arc::new(AtomicUsize::new(0)), pack_here })
    }

    /// Requests are waiting for their commit right now (the inbox worker
    /// steps aside for them: the request path comes first).
    pub fn is_busy(&self) -> bool {
        self.waiting.load(Ordering::Relaxed) > 0
    }

    /// Resolves once the delivery is committed (or known to be a duplicate).
    pub async fn submit(&self, mut delivery: NewDelivery) -> Result<InsertOutcome, StoreError> {
        // Through the store (PostgreSQL), a group's statement is built by one task that
        // every request of the group waits on, and the server waits on it too: packing a
        // group of ~15 `star`s there was ~10 % of that task's round. Packed here instead,
        // wrk's rate was the same (+0.6 %, 8 runs in ABBA order; the +5-14 % first seen
        // came from running the pairs in one order). SQLite's committer packs on its own
        // thread: packed here, 2-14 % fewer a second (6 pairs).
        if self.pack_here {
            delivery.packed.get_or_insert_with(|| store::pack(&delivery.payload));
        }
        let (reply, answer) = oneshot::channel();
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let sent = self.tx.send((delivery, reply)).await;
        let outcome = match sent {
            Ok(()) => answer.await.map_err(|_| StoreError::Unavailable("the inbox writer has stopped".into())),
            Err(_) => Err(StoreError::Unavailable("the inbox writer has stopped".into())),
        };
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        outcome?
    }
}

async fn run(store: Arc<dyn Store>, mut rx: mpsc::Receiver<(NewDelivery, Reply)>, in_flight: usize) {
    let slots = Arc::new(Semaphore::new(in_flight));
    let mut group = Vec::with_capacity(MAX_GROUP);
    // A free slot first: while every slot is committing, requests gather in the queue and
    // go in together next.
    while let Ok(slot) = slots.clone().acquire_owned().await {
        if rx.recv_many(&mut group, MAX_GROUP).await == 0 {
            break;
        }
        let taken = std::mem::replace(&mut group, Vec::with_capacity(MAX_GROUP));
        if in_flight == 1 {
            commit(&*store, taken).await;
        } else {
            let store = store.clone();
            tokio::spawn(async move {
                commit(&*store, taken).await;
                drop(slot);
            });
        }
    }
}

/// The writer's own thread: group after group while requests keep coming,
/// without handing anything to another thread; the committer pauses (lets the
/// process's other writers in) whenever none is waiting.
fn run_dedicated(mut committer: Box<dyn GroupCommitter>, mut rx: mpsc::Receiver<(NewDelivery, Reply)>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = rx.blocking_recv() {
        group.push(first);
        loop {
            while group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(next) => group.push(next),
                    Err(_) => break,
                }
            }
            if group.is_empty() {
                break;
            }
            let (deliveries, replies): (Vec<NewDelivery>, Vec<Reply>) = group.drain(..).unzip();
            let outcomes = committer.commit(&deliveries);
            if let Some(Err(e)) = outcomes.iter().find(|o| o.as_ref().is_err_and(StoreError::is_ours)) {
                tracing::error!(error.message = %e, count = deliveries.len(), "cannot commit webhook deliveries");
            }
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(outcome);
            }
        }
        committer.pause();
    }
}

/// Commits one group and answers each of its requests.
async fn commit(store: &dyn Store, group: Vec<(NewDelivery, Reply)>) {
    let (deliveries, replies): (Vec<NewDelivery>, Vec<Reply>) = group.into_iter().unzip();
    match store.insert_deliveries(&deliveries).await {
        Ok(outcomes) => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
        }
        // One delivery the database will not hold must not fail the others of its group.
        Err(StoreError::Refused(_)) if deliveries.len() > 1 => {
            for (delivery, reply) in deliveries.iter().zip(replies) {
                let outcome = store.insert_deliveries(std::slice::from_ref(delivery)).await;
                let one = outcome.and_then(|o| o.into_iter().next().ok_or(StoreError::NotFound));
                let _ = reply.send(one);
            }
        }
        Err(e) => {
            tracing::error!(error.message = %e, count = deliveries.len(), "cannot commit webhook deliveries");
            let message = e.to_string();
            for reply in replies {
                let _ = reply.send(Err(StoreError::Unavailable(message.clone())));
            }
        }
    }
}
