//! The event parser and the apply step: a stored body (any bytes, or
//! webhook-shaped JSON) under each event name ghsync sees. Never a panic; a
//! payload that parses is applied against a SQLite store without a store
//! error (a bad payload is the parser's to refuse, not the database's).
//!
//! Input: byte 0 picks the event name, byte 1 picks raw bytes (even) or JSON
//! drawn from the rest (odd); the seeds (`fuzz/seed.sh`) are corpus payloads
//! behind their two bytes.
#![no_main]

use std::sync::Arc;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use arbitrary::Unstructured;
use ghsync::config::DatabaseSettings;
use ghsync::domain::{ClaimedDelivery, DeliveryId, EventName};
use ghsync::inbox::apply;
use ghsync::store::Store;
use ghsync::webhook::parse_event;
use ghsync_fuzz::{EVENTS, json};
use libfuzzer_sys::fuzz_target;
use tokio::sync::Notify;

/// The store is kept between inputs (a user an installation brought in is then
/// there for an event they send), and replaced now and then so it stays small.
const INPUTS_PER_STORE: u64 = 20_000;

static RUNTIME: LazyLock<tokio::runtime::Runtime> =
    LazyLock::new(|| tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap());
static RUNS: AtomicU64 = AtomicU64::new(0);
static STORE: std::sync::Mutex<Option<Arc<dyn Store>>> = std::sync::Mutex::new(None);

/// The store, replaced by a fresh one (a new file on tmpfs, where fsync costs
/// nothing) every `INPUTS_PER_STORE` inputs.
fn store() -> Arc<dyn Store> {
    let mut slot = STORE.lock().unwrap();
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    if run % INPUTS_PER_STORE == 0 {
        slot.take();
        let dir = if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm".into() } else { std::env::temp_dir() };
        let file = |generation: u64| dir.join(format!("ghsync-fuzz-{}-{generation}.db", std::process::id()));
        if let Some(previous) = (run / INPUTS_PER_STORE).checked_sub(1) {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", file(previous).display()));
            }
        }
        let url = format!("sqlite://{}", file(run / INPUTS_PER_STORE).display());
        let settings = DatabaseSettings { url: url.into() };
        *slot = Some(RUNTIME.block_on(ghsync::store::open(&settings)).expect("cannot open the fuzz store"));
    }
    slot.clone().unwrap()
}

fuzz_target!(|data: &[u8]| {
    let [pick, mode, rest @ ..] = data else { return };
    let event = EventName::parse(EVENTS[usize::from(*pick) % EVENTS.len()]).unwrap();
    let payload = if mode % 2 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        let Ok(value) = json(&mut Unstructured::new(rest)) else { return };
        serde_json::to_string(&value).unwrap()
    };
    if parse_event(&event, &payload).is_err() {
        return;
    }
    let delivery = ClaimedDelivery {
        id: DeliveryId::parse("72d3162e-cc78-11e3-81ab-4c9367dc0958").unwrap(),
        event,
        payload,
        attempts: 1,
    };
    let store = store();
    if let Err(e) = RUNTIME.block_on(apply(&store, &Notify::new(), &delivery)) {
        panic!("a {} payload that parses failed to apply: {e:?}", delivery.event);
    }
});
