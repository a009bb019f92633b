//! The page's HTML. maud escapes every `(value)` it prints, so stored text
//! (logins, error messages, event names) cannot become markup.

use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};

use super::chart::{Series, bars};
use super::view::{AdminView, PASSES};
use crate::domain::RunRecord;

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem auto;max-width:1200px;color:#222;padding:0 1rem}\
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:1.8rem;border-bottom:1px solid #ddd}\
table{border-collapse:collapse;margin:.5rem 0}th,td{padding:.25rem .6rem;border:1px solid #ddd;text-align:left}\
td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f4f4f4}\
.badge{padding:.1rem .5rem;border-radius:.6rem;color:#fff}.ok{background:#2a7}.bad{background:#c43}\
.charts{display:flex;flex-wrap:wrap;gap:1.5rem}figure.chart{margin:0}figcaption{font-weight:600}\
ul.legend{list-style:none;padding:0;display:flex;gap:1rem;margin:.2rem 0}\
.swatch{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem}.note{color:#666}";

fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (STYLE) }
            }
            body { (body) }
        }
    }
}

pub fn login(error: Option<&str>) -> Markup {
    layout(
        "ghsync admin: sign in",
        html! {
            h1 { "ghsync admin" }
            p { "Enter the admin token (GHSYNC_ADMIN_TOKEN). It is kept in a cookie for this page only." }
            @if let Some(error) = error { p.bad.badge { (error) } }
            form method="post" action="/admin/login" {
                label { "Admin token " input type="password" name="token" autocomplete="off" required; }
                " " button type="submit" { "Sign in" }
            }
        },
    )
}

pub fn refused() -> Markup {
    layout(
        "ghsync admin: refused",
        html! { h1 { "Refused" } p { "This form must be sent from the admin page itself." } },
    )
}

/// A form the page sent could not be carried out: why, and the way back.
pub fn failed(error: &str) -> Markup {
    layout(
        "ghsync admin: not done",
        html! { h1 { "Not done" } p { (error) } p { a href="/admin" { "Back to the admin page" } } },
    )
}

pub fn page(v: &AdminView) -> Markup {
    layout(
        "ghsync admin",
        html! {
            h1 {
                "ghsync admin "
                @if v.degraded { span.badge.bad { "degraded" } } @else { span.badge.ok { "ok" } }
            }
            p.note { "As of " (ts(v.now)) ". " form method="post" action="/admin/logout" style="display:inline" { button { "Sign out" } } }
            (freshness(v))
            (users(v))
            (passes(v))
            (budgets(v))
            (inbox(v))
        },
    )
}

fn freshness(v: &AdminView) -> Markup {
    html! {
        h2 { "Freshness" }
        table id="freshness" {
            tr { th { "Oldest profile" } td { (opt_ts(v.oldest_profile)) @if let Some(t) = v.oldest_profile { " (" (ago(v.now, t)) ")" } } }
            tr { th { "Next pass" } td { (ts(v.next_run_at)) } }
            tr { th { "Pass running" } td { @match v.running { Some(id) => { "pass " (id) }, None => { "none" } } } }
            @if let Some(t) = v.pass_paused_until { tr { th { "Passes paused until" } td { (ts(t)) } } }
        }
    }
}

fn users(v: &AdminView) -> Markup {
    html! {
        h2 { "Users by status" }
        table id="users" {
            tr { th { "Status" } th { "Users" } }
            @for (status, n) in &v.users { tr { td { (status) } td.n { (n) } } }
            tr { th { "Total" } th { (v.users.iter().map(|(_, n)| n).sum::<i64>()) } }
        }
    }
}

fn passes(v: &AdminView) -> Markup {
    // The chart reads left to right, oldest first.
    let chrono: Vec<&RunRecord> = v.runs.iter().rev().collect();
    let labels: Vec<String> = chrono.iter().map(|r| r.id.get().to_string()).collect();
    let col = |f: fn(&RunRecord) -> i64| chrono.iter().map(|r| f(r)).collect::<Vec<_>>();
    html! {
        h2 { "Passes (last " (PASSES) ")" }
        @if v.runs.is_empty() {
            p.note { "No pass has run yet." }
        } @else {
            div.charts id="charts" {
                (bars("Users per pass", &labels, &[
                    Series { name: "checked", color: "#4a7bd0", values: col(|r| r.counts.fetched) },
                    Series { name: "changed", color: "#2a7", values: col(|r| r.counts.changed) },
                    Series { name: "failed", color: "#c43", values: col(|r| r.counts.failed) },
                ]))
                (bars("Rate-limit points per pass", &labels, &[
                    Series { name: "core", color: "#8a5cc2", values: col(|r| r.counts.points_core) },
                    Series { name: "graphql", color: "#e0942a", values: col(|r| r.counts.points_graphql) },
                ]))
            }
            table id="passes" {
                tr { th { "Pass" } th { "Trigger" } th { "State" } th { "Started" } th { "Duration" }
                     th { "Checked" } th { "Changed" } th { "Failed" } th { "Core points" } th { "GraphQL points" } }
                @for r in v.runs.iter().take(10) {
                    tr {
                        td.n { (r.id.get()) } td { (r.trigger) } td { (r.state) } td { (ts(r.started_at)) }
                        td.n { (duration(r, v.now)) }
                        td.n { (r.counts.fetched) } td.n { (r.counts.changed) } td.n { (r.counts.failed) }
                        td.n { (r.counts.points_core) } td.n { (r.counts.points_graphql) }
                    }
                }
            }
        }
    }
}

fn budgets(v: &AdminView) -> Markup {
    html! {
        h2 { "Rate-limit budgets (least left first)" }
        @if v.budgets.is_empty() {
            p.note { "No installation has spent any budget yet." }
        } @else {
            p.note { (v.budgets.len()) " of " (v.budgets_tracked) " budgets tracked." }
            table id="budgets" {
                tr { th { "Installation" } th { "Resource" } th { "Remaining" } th { "Limit" } th { "Resets" } th { "Paused until" } }
                @for b in &v.budgets {
                    tr {
                        td.n { (b.installation_id.get()) } td { (b.resource.as_str()) }
                        td.n { (b.remaining) } td.n { (b.limit) } td { (ts(b.reset_at)) } td { (opt_ts(b.paused_until)) }
                    }
                }
            }
        }
    }
}

fn inbox(v: &AdminView) -> Markup {
    html! {
        h2 { "Webhook inbox" }
        table id="inbox" {
            tr { th { "Pending" } td.n { (v.inbox_pending) } }
            tr { th { "Oldest pending" } td { @match v.oldest_pending_seconds { Some(s) => { (s) " s" }, None => { "none" } } } }
            tr { th { "Parked" } td.n { (v.parked_total) } }
        }
        h3 { "Parked deliveries" }
        @if v.parked.is_empty() {
            p.note { "None: every delivery was applied or is still being retried." }
        } @else {
            p.note { "Retry sends a delivery back to the inbox (fix what made it fail first); the worker applies it within seconds." }
            table id="parked" {
                tr { th { "Delivery" } th { "Event" } th { "Attempts" } th { "Last error" } th {} }
                @for d in &v.parked {
                    tr {
                        td { code { (d.id.as_str()) } }
                        td { (d.event) @if let Some(a) = &d.action { "." (a) } }
                        td.n { (d.attempts) } td { (d.last_error.as_deref().unwrap_or("")) }
                        td {
                            form.retry method="post" action="/admin/retry" {
                                input type="hidden" name="guid" value=(d.id.as_str());
                                button type="submit" { "Retry" }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn opt_ts(t: Option<DateTime<Utc>>) -> String {
    t.map(ts).unwrap_or_else(|| "never".into())
}

fn ago(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let s = (now - t).num_seconds().max(0);
    match s {
        0..120 => format!("{s} s ago"),
        120..7200 => format!("{} min ago", s / 60),
        _ => format!("{} h ago", s / 3600),
    }
}

fn duration(r: &RunRecord, now: DateTime<Utc>) -> String {
    let end = r.finished_at.unwrap_or(now);
    format!("{:.1} s", (end - r.started_at).num_milliseconds() as f64 / 1000.0)
}
