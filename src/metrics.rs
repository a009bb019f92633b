//! The process's Prometheus metrics, in a registry of its own (not the global
//! one) so that several apps in one test process do not share counters.

use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    /// Webhook deliveries by event and outcome (accepted, duplicate, refused_*, applied, ignored, retried, failed).
    pub deliveries: IntCounterVec,
    /// Requests to GitHub by resource and HTTP status (`error` when none came back).
    pub github_requests: IntCounterVec,
    /// Rate-limit points we spent, by resource.
    pub github_points: IntCounterVec,
    /// Profiles fetched by outcome (changed, unchanged, gone, failed).
    pub profiles: IntCounterVec,
    /// Inbox depth by state, refreshed at scrape time.
    pub inbox: IntGaugeVec,
    /// Users by status, refreshed at scrape time from a cached count.
    pub users: IntGaugeVec,
    /// Aggregates of what the governor knows, by resource (never by installation:
    /// at 1,000,000 users that would be millions of series; `/admin/health` has the detail).
    pub rate_tracked: IntGaugeVec,
    pub rate_paused: IntGaugeVec,
    pub rate_least_remaining: IntGaugeVec,
    /// Reconcile passes by how they ended.
    pub passes: IntCounterVec,
    /// When this process's schedule starts its next pass (Unix seconds): at
    /// start-up, the time it decided to start one, else the next scheduled time.
    /// 0 until the schedule has decided (and with the schedule off).
    pub next_pass: IntGauge,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("metric definitions are static and valid");
    registry.register(Box::new(c.clone())).expect("each metric is registered once");
    c
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("metric definitions are static and valid");
    registry.register(Box::new(g.clone())).expect("each metric is registered once");
    g
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        Self {
            deliveries: counter(
                &registry,
                "ghsync_webhook_deliveries_total",
                "Webhook deliveries by event and outcome",
                &["event", "outcome"],
            ),
            github_requests: counter(
                &registry,
                "ghsync_github_requests_total",
                "Requests to GitHub by resource and status",
                &["resource", "status"],
            ),
            github_points: counter(
                &registry,
                "ghsync_github_points_total",
                "Rate-limit points spent, by resource",
                &["resource"],
            ),
            profiles: counter(&registry, "ghsync_profile_syncs_total", "Profile syncs by outcome", &["outcome"]),
            inbox: gauge(
                &registry,
                "ghsync_inbox_deliveries",
                "Webhook deliveries waiting (pending) or parked (failed)",
                &["state"],
            ),
            users: gauge(&registry, "ghsync_users", "Tracked users by status", &["status"]),
            rate_tracked: gauge(
                &registry,
                "ghsync_rate_limit_installations_tracked",
                "Installations whose budget is known",
                &["resource"],
            ),
            rate_paused: gauge(
                &registry,
                "ghsync_rate_limit_installations_paused",
                "Installations in a secondary-limit pause",
                &["resource"],
            ),
            rate_least_remaining: gauge(
                &registry,
                "ghsync_rate_limit_least_remaining",
                "The least points any installation has left in its window",
                &["resource"],
            ),
            passes: counter(&registry, "ghsync_reconcile_passes_total", "Reconcile passes by result", &["result"]),
            next_pass: {
                let g = IntGauge::new(
                    "ghsync_reconcile_next_pass_timestamp_seconds",
                    "When this process's schedule starts its next pass (Unix seconds)",
                )
                .expect("metric definitions are static and valid");
                registry.register(Box::new(g.clone())).expect("each metric is registered once");
                g
            },
            registry,
        }
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        use prometheus::Encoder;
        let mut out = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding into a Vec cannot fail");
        String::from_utf8(out).expect("prometheus text is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
