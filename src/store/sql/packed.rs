//! How a webhook payload is kept: lz4-compressed, with its length in front, in
//! `webhook_payloads.packed` (and '' in `payload`). ~7 KB of JSON becomes
//! ~2 KB: on SQLite one page instead of three, and a WAL a quarter the size;
//! on PostgreSQL a quarter of the bytes on the socket, and no compression on
//! the server. Rows from before the column keep their text in `payload`.

use std::borrow::Cow;

use super::rows::corrupt;
use crate::domain::NewDelivery;
use crate::store::StoreResult;

/// The form a payload is stored in. Public so that the request path can pack
/// each body on its own thread, before its group reaches the one committer
/// every request of the group waits on (`NewDelivery::packed`).
pub fn pack(payload: &str) -> Vec<u8> {
    lz4_flex::compress_prepend_size(payload.as_bytes())
}

/// A new delivery's body as stored: packed already, or packed now.
pub(in crate::store) fn packed(delivery: &NewDelivery) -> Cow<'_, [u8]> {
    match &delivery.packed {
        Some(packed) => Cow::Borrowed(packed),
        None => Cow::Owned(pack(&delivery.payload)),
    }
}

pub(super) fn unpack(packed: &[u8]) -> StoreResult<String> {
    let bytes = lz4_flex::decompress_size_prepended(packed).map_err(|e| corrupt("packed payload", e))?;
    String::from_utf8(bytes).map_err(|e| corrupt("packed payload", e))
}
