use super::*;

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH + Duration::seconds(1_800_000_000 + secs)
}

fn ask(want: i64, now: DateTime<Utc>) -> BudgetAsk {
    BudgetAsk {
        installation_id: InstallationId::new(7).unwrap(),
        resource: Resource::Core,
        want,
        need: 1,
        reserve_fraction: 0.1,
        per_minute: 900,
        give_back: None,
        observed: None,
        paused_until: None,
        now,
    }
}

fn known(remaining: i64, reset_at: DateTime<Utc>) -> BudgetRow {
    BudgetRow { remaining, reset_at, limit: 300, ..BudgetRow::unknown(300) }
}

#[test]
fn an_unknown_or_ended_window_is_probed_not_booked() {
    let (row, first) = book(None, &ask(10, t(0)));
    assert_eq!(first, Booking::Probe);
    let (_, second) = book(Some(row), &ask(10, t(1)));
    assert_eq!(second, Booking::Probe, "each process finds out for itself: none waits on another");
    let (_, ended) = book(Some(known(200, t(10))), &ask(10, t(10)));
    assert_eq!(ended, Booking::Probe, "a window that is over is not booked from");
}

#[test]
fn the_probes_answer_opens_the_window_for_everyone() {
    let (row, _) = book(None, &ask(10, t(0)));
    let mut tell = ask(0, t(1));
    tell.observed = Some(Observed { limit: 300, remaining: 299, reset_at: t(3600) });
    let (row, noted) = book(Some(row), &tell);
    assert_eq!(noted, Booking::Noted);
    assert_eq!((row.remaining, row.reset_at), (299, t(3600)));
    let (row, granted) = book(Some(row), &ask(10, t(2)));
    assert_eq!(granted, Booking::Granted { points: 10, reset_at: t(3600) });
    assert_eq!(row.remaining, 289);
}

#[test]
fn bookings_never_reach_into_the_reserve_and_a_short_one_is_partial() {
    // 300 × 0.1 = 30 kept: 35 left means 5 to book.
    let (row, granted) = book(Some(known(35, t(3600))), &ask(10, t(0)));
    assert_eq!(granted, Booking::Granted { points: 5, reset_at: t(3600) });
    let (_, refused) = book(Some(row), &ask(10, t(1)));
    assert_eq!(refused, Booking::Exhausted(t(3600)));
}

#[test]
fn a_webhook_may_spend_the_reserve() {
    let mut urgent = ask(1, t(0));
    urgent.reserve_fraction = 0.0;
    let (_, granted) = book(Some(known(1, t(3600))), &urgent);
    assert_eq!(granted, Booking::Granted { points: 1, reset_at: t(3600) });
}

#[test]
fn answers_only_lower_the_budget_within_a_window_and_replace_it_in_the_next() {
    let mut tell = ask(0, t(0));
    tell.observed = Some(Observed { limit: 300, remaining: 250, reset_at: t(3600) });
    let (row, _) = book(Some(known(200, t(3600))), &tell);
    assert_eq!(row.remaining, 200, "an older answer does not undo later bookings");
    tell.observed = Some(Observed { limit: 300, remaining: 150, reset_at: t(3600) });
    let (row, _) = book(Some(row), &tell);
    assert_eq!(row.remaining, 150);
    tell.observed = Some(Observed { limit: 300, remaining: 290, reset_at: t(7200) });
    let (row, _) = book(Some(row), &tell);
    assert_eq!((row.remaining, row.reset_at), (290, t(7200)));
    tell.observed = Some(Observed { limit: 300, remaining: 10, reset_at: t(3600) });
    let (row, _) = book(Some(row), &tell);
    assert_eq!(row.remaining, 290, "an answer from an earlier window is ignored");
}

#[test]
fn unspent_points_come_back_only_into_their_own_window() {
    let mut back = ask(0, t(0));
    back.give_back = Some((7, t(3600)));
    let (row, _) = book(Some(known(100, t(3600))), &back);
    assert_eq!(row.remaining, 107);
    back.give_back = Some((7, t(0)));
    let (row, _) = book(Some(row), &back);
    assert_eq!(row.remaining, 107, "points of a window that is over are gone");
}

#[test]
fn a_pause_any_process_saw_stops_every_process() {
    let mut told = ask(0, t(0));
    told.paused_until = Some(t(60));
    let (row, _) = book(Some(known(200, t(3600))), &told);
    let (row, refused) = book(Some(row), &ask(1, t(10)));
    assert_eq!(refused, Booking::Paused(t(60)));
    let (_, granted) = book(Some(row), &ask(1, t(61)));
    assert!(matches!(granted, Booking::Granted { points: 1, .. }), "{granted:?}");
}

#[test]
fn all_processes_together_stay_inside_the_per_minute_limit() {
    let mut row = known(5_000, t(3600));
    row.limit = 5_000;
    let mut booked = 0;
    for i in 0..20 {
        let (next, answer) = book(Some(row), &ask(100, t(i)));
        row = next;
        if let Booking::Granted { points, .. } = answer {
            booked += points;
        } else {
            assert_eq!(answer, Booking::Paced(t(60)));
        }
    }
    assert_eq!(booked, 900, "one minute's share and not a point more");
    let (_, granted) = book(Some(row), &ask(100, t(60)));
    assert!(matches!(granted, Booking::Granted { points: 100, .. }), "the next minute: {granted:?}");
}
