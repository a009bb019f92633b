//! The governor's unit tests: budgets, reserve, pauses, concurrency and pacing,
//! without a network.

use super::*;

fn id(n: i64) -> InstallationId {
    InstallationId::new(n).unwrap()
}

fn governor() -> Governor {
    Governor::new(GovernorSettings { reserve_fraction: 0.1, ..GovernorSettings::default() })
}

fn answer(limit: i64, remaining: i64, reset: DateTime<Utc>) -> Observation {
    Observation {
        status: 200,
        limit: Some(limit),
        remaining: Some(remaining),
        reset: Some(reset),
        ..Default::default()
    }
}

#[test]
fn an_unknown_budget_is_probed_by_one_request_at_a_time() {
    let g = governor();
    let now = Utc::now();
    assert!(g.admit(id(1), Resource::Core, 1, Priority::Background, now).is_ok());
    assert_eq!(g.admit(id(1), Resource::Core, 1, Priority::Background, now), Err(Refusal::Probing));
    g.observe(id(1), Resource::Core, 1, Some(&answer(100, 99, now + ChronoDuration::hours(1))), now);
    assert!(g.admit(id(1), Resource::Core, 1, Priority::Background, now).is_ok());
}

#[test]
fn background_work_leaves_the_reserve_for_webhooks() {
    let g = governor();
    let now = Utc::now();
    let reset = now + ChronoDuration::hours(1);
    g.admit(id(1), Resource::Core, 1, Priority::Background, now).unwrap();
    g.observe(id(1), Resource::Core, 1, Some(&answer(100, 12, reset)), now);
    // reserve = 10: two background points left, then only webhooks.
    assert!(g.admit(id(1), Resource::Core, 1, Priority::Background, now).is_ok());
    assert!(g.admit(id(1), Resource::Core, 1, Priority::Background, now).is_ok());
    assert_eq!(g.admit(id(1), Resource::Core, 1, Priority::Background, now), Err(Refusal::Exhausted(reset)));
    assert!(g.admit(id(1), Resource::Core, 1, Priority::Webhook, now).is_ok());
}

#[test]
fn an_exhausted_budget_is_refused_until_its_reset_then_refilled() {
    let g = governor();
    let now = Utc::now();
    let reset = now + ChronoDuration::seconds(30);
    g.admit(id(1), Resource::Graphql, 1, Priority::Webhook, now).unwrap();
    g.observe(id(1), Resource::Graphql, 1, Some(&answer(50, 0, reset)), now);
    assert_eq!(g.admit(id(1), Resource::Graphql, 1, Priority::Webhook, now), Err(Refusal::Exhausted(reset)));
    assert!(g.admit(id(1), Resource::Graphql, 1, Priority::Webhook, reset + ChronoDuration::seconds(1)).is_ok());
    // The other resource and other installations have their own budgets.
    assert!(g.admit(id(2), Resource::Graphql, 1, Priority::Webhook, now).is_ok());
}

#[test]
fn out_of_order_answers_never_raise_the_budget_within_a_window() {
    let g = governor();
    let now = Utc::now();
    let reset = now + ChronoDuration::hours(1);
    g.admit(id(1), Resource::Core, 1, Priority::Webhook, now).unwrap();
    g.observe(id(1), Resource::Core, 1, Some(&answer(100, 40, reset)), now);
    g.observe(id(1), Resource::Core, 1, Some(&answer(100, 45, reset)), now);
    assert_eq!(g.snapshot(now)[0].remaining, 40);
    // A new window replaces the old figure.
    g.observe(id(1), Resource::Core, 1, Some(&answer(100, 99, reset + ChronoDuration::hours(1))), now);
    assert_eq!(g.snapshot(now)[0].remaining, 99);
}

#[test]
fn a_secondary_limit_pauses_the_token_for_retry_after_then_longer() {
    let g = governor();
    let now = Utc::now();
    let hit =
        Observation { status: 403, retry_after: Some(Duration::from_secs(5)), secondary: true, ..Default::default() };
    g.observe(id(1), Resource::Core, 1, Some(&hit), now);
    let Err(Refusal::Paused(until)) = g.admit(id(1), Resource::Graphql, 1, Priority::Webhook, now) else {
        panic!("a paused token must refuse every resource");
    };
    let secs = (until - now).num_milliseconds();
    assert!((5_000..=6_000).contains(&secs), "{secs}");
    g.observe(id(1), Resource::Core, 1, Some(&hit), until);
    let Err(Refusal::Paused(second)) = g.admit(id(1), Resource::Core, 1, Priority::Webhook, until) else { panic!() };
    assert!((second - until).num_milliseconds() >= 10_000, "the second strike waits twice as long");
}

#[test]
fn without_retry_after_a_secondary_limit_waits_at_least_a_minute() {
    let pause = secondary_pause(None, 1);
    assert!(pause >= Duration::from_secs(60) && pause <= Duration::from_secs(72));
    assert!(secondary_pause(None, 30) <= SECONDARY_CAP.mul_f64(1.2));
}

#[test]
fn a_primary_403_empties_the_bucket_without_pausing_the_token() {
    let g = governor();
    let now = Utc::now();
    let reset = now + ChronoDuration::minutes(10);
    let hit =
        Observation { status: 403, limit: Some(5000), remaining: Some(0), reset: Some(reset), ..Default::default() };
    g.admit(id(1), Resource::Core, 1, Priority::Webhook, now).unwrap();
    g.observe(id(1), Resource::Core, 1, Some(&hit), now);
    assert_eq!(g.admit(id(1), Resource::Core, 1, Priority::Webhook, now), Err(Refusal::Exhausted(reset)));
    assert!(g.admit(id(1), Resource::Graphql, 1, Priority::Webhook, now).is_ok());
}

#[test]
fn what_one_process_learned_the_next_one_starts_from() {
    let g = governor();
    let now = Utc::now();
    let reset = now + ChronoDuration::minutes(10);
    g.admit(id(7), Resource::Core, 1, Priority::Webhook, now).unwrap();
    g.observe(id(7), Resource::Core, 1, Some(&answer(5000, 0, reset)), now);
    let saved = g.take_dirty(now);
    assert_eq!(saved.len(), 1);
    assert!(g.take_dirty(now).is_empty(), "nothing changed since");
    let next = governor();
    next.load(&saved);
    assert_eq!(next.admit(id(7), Resource::Core, 1, Priority::Webhook, now), Err(Refusal::Exhausted(reset)));
}

#[test]
fn after_a_window_ends_the_new_budget_is_probed_not_assumed() {
    let g = governor();
    let now = Utc::now();
    let reset = now + ChronoDuration::seconds(2);
    g.admit(id(1), Resource::Core, 1, Priority::Webhook, now).unwrap();
    g.observe(id(1), Resource::Core, 1, Some(&answer(30, 0, reset)), now);
    let later = reset + ChronoDuration::seconds(1);
    assert!(g.admit(id(1), Resource::Core, 1, Priority::Webhook, later).is_ok(), "one request finds out");
    assert_eq!(g.admit(id(1), Resource::Core, 1, Priority::Webhook, later), Err(Refusal::Probing));
}

#[test]
fn a_new_window_counts_the_requests_still_in_flight() {
    let g = governor();
    let now = Utc::now();
    let reset = now + ChronoDuration::seconds(60);
    g.admit(id(1), Resource::Core, 1, Priority::Webhook, now).unwrap();
    g.observe(id(1), Resource::Core, 1, Some(&answer(30, 29, reset)), now);
    for _ in 0..5 {
        g.admit(id(1), Resource::Core, 1, Priority::Webhook, now).unwrap();
    }
    // The window rolls; the first answer of the next one knows of only its own request.
    let next = reset + ChronoDuration::seconds(60);
    g.observe(id(1), Resource::Core, 1, Some(&answer(30, 29, next)), reset);
    assert_eq!(g.snapshot(reset)[0].remaining, 25, "29 less the 4 still on the wire");
}

#[test]
fn a_secondary_limit_halves_a_tokens_concurrency_and_successes_win_it_back() {
    let g = governor();
    let now = Utc::now();
    let max = GovernorSettings::default().max_concurrency_per_token;
    let hit =
        Observation { status: 403, retry_after: Some(Duration::from_secs(1)), secondary: true, ..Default::default() };
    g.observe(id(1), Resource::Core, 0, Some(&hit), now);
    let (allowed, permits) = g.with_slot(id(1), |s| (s.allowed(), s.concurrency.available_permits()));
    assert_eq!(allowed, max / 2);
    assert_eq!(permits, max / 2, "the semaphore follows");
    let ok = answer(5000, 4000, now + ChronoDuration::hours(1));
    for _ in 0..WIDEN_AFTER {
        g.observe(id(1), Resource::Core, 0, Some(&ok), now);
    }
    assert_eq!(g.with_slot(id(1), |s| (s.allowed(), s.concurrency.available_permits())), (max / 2 + 1, max / 2 + 1));
}

#[test]
fn idle_installations_with_nothing_pending_are_forgotten() {
    let g = governor();
    let now = Utc::now();
    // One whose window ended, one still in its window, one paused, one never answered.
    g.observe(id(1), Resource::Core, 1, Some(&answer(5000, 4000, now - ChronoDuration::seconds(1))), now);
    g.observe(id(2), Resource::Core, 1, Some(&answer(5000, 4000, now + ChronoDuration::minutes(30))), now);
    g.observe(
        id(3),
        Resource::Core,
        1,
        Some(&Observation { status: 429, retry_after: Some(Duration::from_secs(60)), ..Default::default() }),
        now,
    );
    g.peek(id(4), Resource::Core, 1, Priority::Background, now).unwrap();
    assert_eq!(g.tracked(), 4);
    assert_eq!(g.evict_idle(Duration::from_secs(3600), now), 0, "nothing is idle for an hour yet");
    assert_eq!(g.evict_idle(Duration::ZERO, now), 2, "the ended window and the unknown one go");
    assert_eq!(g.tracked(), 2, "a running window and a pause are kept");
    assert!(matches!(g.peek(id(3), Resource::Core, 1, Priority::Background, now), Err(Refusal::Paused(_))));
}

#[test]
fn no_minute_paces_more_requests_than_the_per_minute_setting() {
    // Greedy: every request the pacer admits, at every 10 ms of two minutes of a fake clock.
    for per_minute in [800, 1_800, 7] {
        let clock = governor::clock::FakeRelativeClock::default();
        let limiter = governor::RateLimiter::direct_with_clock(slot::pace(per_minute), clock.clone());
        let mut admitted = Vec::new();
        for tick in 0..12_000u64 {
            while limiter.check().is_ok() {
                admitted.push(tick);
            }
            clock.advance(Duration::from_millis(10));
        }
        // Any 60 s window: [start, start + 6,000 ticks).
        let busiest = (0..6_000u64)
            .map(|start| admitted.iter().filter(|&&t| t >= start && t < start + 6_000).count())
            .max()
            .unwrap();
        assert!(busiest <= per_minute as usize, "{per_minute}/min setting: {busiest} in one minute");
        assert!(busiest >= per_minute as usize * 9 / 10, "{per_minute}/min setting: only {busiest}, pacing too hard");
    }
}
