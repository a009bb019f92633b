//! Memory on the webhook path is bounded whatever callers send: 50 unsigned
//! 20 MB bodies at once keep the process under its body budget plus 100 MB,
//! `/healthz` answers throughout, and the memory is given back afterwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::future::join_all;

use super::server::{Attacked, rss_of};
use crate::helpers::{PATIENCE, eventually};

const BODIES: usize = 50;
const BODY_BYTES: usize = 20 * 1000 * 1000;
const BUDGET: u64 = 256 * 1024 * 1024;
const MB: u64 = 1_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_unsigned_20_mb_bodies_at_once_stay_within_the_budget() {
    // Arrange: the default budget (256 MiB), a body of 20 MB that is JSON but unsigned.
    let server = Attacked::start(&[]).await;
    let client = reqwest::Client::builder().timeout(PATIENCE).build().unwrap();
    let mut json = vec![b' '; BODY_BYTES];
    json[0] = b'{';
    json[BODY_BYTES - 1] = b'}';
    let body = bytes::Bytes::from(json);
    let before = server.rss();

    // Act: all at once, while memory is sampled and /healthz is asked, until every sender is done.
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(before));
    let sampler = {
        let (done, peak, pid) = (done.clone(), peak.clone(), server.pid());
        tokio::spawn(async move {
            while !done.load(Ordering::SeqCst) {
                peak.fetch_max(rss_of(pid), Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let health = {
        let (done, client, base) = (done.clone(), client.clone(), server.base.clone());
        tokio::spawn(async move {
            let mut answers = Vec::new();
            while !done.load(Ordering::SeqCst) {
                let r = client.get(format!("{base}/healthz")).send().await;
                answers.push(r.is_ok_and(|r| r.status().is_success()));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            answers
        })
    };
    let answers: Vec<Option<(u16, bool)>> = join_all((0..BODIES).map(|_| {
        let request = server.webhook(&client, body.clone(), None);
        async move {
            let response = request.send().await.ok()?;
            Some((response.status().as_u16(), response.headers().contains_key("retry-after")))
        }
    }))
    .await;
    let statuses: Vec<Option<u16>> = answers.iter().map(|a| a.map(|(status, _)| status)).collect();
    done.store(true, Ordering::SeqCst);
    sampler.await.unwrap();
    let health = health.await.unwrap();

    // Assert: every body refused (401 once read, 503 when the budget was full, or the
    // connection closed early on a 503), and counted; memory within the budget + 100 MB.
    assert!(statuses.iter().all(|s| matches!(s, None | Some(401) | Some(503))), "only refusals: {statuses:?}");
    assert!(
        answers.iter().flatten().all(|(status, retry_after)| *status != 503 || *retry_after),
        "every 503 says when to retry"
    );
    let refused = eventually("every body to be counted as refused", PATIENCE, || async {
        let signature = server
            .metric(&client, "ghsync_webhook_deliveries_total{event=\"unverified\",outcome=\"refused_signature\"}")
            .await;
        let busy = server
            .metric(&client, "ghsync_webhook_deliveries_total{event=\"unverified\",outcome=\"refused_busy\"}")
            .await;
        (signature + busy == BODIES as u64).then_some((signature, busy))
    })
    .await;
    let peak = peak.load(Ordering::SeqCst);
    eprintln!(
        "RSS before {} MB, peak {} MB, statuses {:?} (refused signature/busy {refused:?})",
        before / MB,
        peak / MB,
        count(&statuses)
    );
    assert!(peak < BUDGET + 100 * MB, "peak RSS {} MB is over the budget + 100 MB", peak / MB);
    assert!(!health.is_empty() && health.iter().all(|ok| *ok), "/healthz answered throughout: {health:?}");

    // Assert: the memory is given back once the attack is over.
    let after = eventually("memory to be given back", PATIENCE, || async {
        let rss = server.rss();
        (rss < before + 64 * MB).then_some(rss)
    })
    .await;
    eprintln!("RSS after {} MB", after / MB);
}

fn count(statuses: &[Option<u16>]) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for s in statuses {
        *counts.entry(s.map_or("closed".to_owned(), |s| s.to_string())).or_default() += 1;
    }
    counts
}
