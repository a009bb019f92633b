//! One test binary (Z2P's tests/api, crates.io's [[test]]): every test drives
//! the real ghsync over HTTP against the in-repo fake GitHub, on SQLite and on
//! PostgreSQL (`TEST_DATABASE_URL`).

mod helpers;

mod admin;
mod admin_page;
mod attack;
mod bounded;
mod clock_skew;
mod corpus;
mod crash;
mod demo;
mod fake_github;
mod graphql_refused;
mod group_commit;
mod inbox;
mod inbox_rounds;
mod installations;
mod leases;
mod lifecycle;
mod logs;
mod manifest;
mod openapi;
mod outage;
mod pass_outcomes;
mod postgres_tls;
mod reconcile;
mod redeliver;
mod register;
mod replicas;
mod setup;
mod shared_budget;
mod staleness;
mod store_contract;
mod store_relisting;
mod users;
mod webhook_ingest;
