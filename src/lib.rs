//! ghsync as a library: one `pub mod` per room. The binary, the tests and
//! the benchmarks all build on it.

pub mod app;
pub mod cli;
pub mod commands;
pub mod config;
pub mod domain;
pub mod github;
pub mod http;
pub mod inbox;
pub mod metrics;
pub mod shutdown;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod webhook;
