//! What the governor knows, as records: for health and metrics, to save to
//! the database, and to start from what an earlier process saved.

use chrono::{DateTime, Utc};

use super::Governor;
use super::slot::{Booked, Bucket};
use crate::domain::{InstallationId, RateLimitRecord, Resource};

impl Governor {
    /// What we know, for health, metrics and the database.
    pub fn snapshot(&self, now: DateTime<Utc>) -> Vec<RateLimitRecord> {
        let slots = self.slots.lock().expect("governor poisoned");
        let mut out = Vec::new();
        for (id, slot) in slots.iter() {
            for (resource, bucket) in [(Resource::Core, &slot.core), (Resource::Graphql, &slot.graphql)] {
                if !bucket.known {
                    continue;
                }
                let mut b = bucket.clone();
                b.roll(now);
                out.push(RateLimitRecord {
                    installation_id: *id,
                    resource,
                    limit: b.limit,
                    remaining: b.remaining,
                    reset_at: b.reset_at,
                    paused_until: slot.paused_until.filter(|t| *t > now),
                    updated_at: now,
                });
            }
        }
        out.sort_by_key(|r| (r.installation_id, r.resource));
        out
    }

    /// Records changed since the last call (to save them).
    pub fn take_dirty(&self, now: DateTime<Utc>) -> Vec<RateLimitRecord> {
        let dirty: Vec<InstallationId> = {
            let mut slots = self.slots.lock().expect("governor poisoned");
            slots
                .iter_mut()
                .filter(|(_, s)| s.dirty)
                .map(|(id, s)| {
                    s.dirty = false;
                    *id
                })
                .collect()
        };
        self.snapshot(now).into_iter().filter(|r| dirty.contains(&r.installation_id)).collect()
    }

    /// Starts from what an earlier process learned, instead of from ignorance.
    pub fn load(&self, records: &[RateLimitRecord]) {
        for r in records {
            let resource = r.resource;
            self.with_slot(r.installation_id, |slot| {
                let bucket = slot.bucket(resource);
                if bucket.known && bucket.reset_at >= r.reset_at {
                    return;
                }
                *bucket = Bucket {
                    limit: r.limit,
                    remaining: r.remaining,
                    reset_at: r.reset_at,
                    known: true,
                    probing: false,
                    in_flight: 0,
                    booking: Booked::default(),
                };
                if r.paused_until > slot.paused_until {
                    slot.paused_until = r.paused_until;
                }
            });
        }
    }
}
