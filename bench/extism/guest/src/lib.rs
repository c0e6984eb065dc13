//! The Extism guest of the dispatch benchmark: `before_message_sent` masks blocked words,
//! `after_message_sent` bumps a KV counter through the host function `kv_increment`. The work is
//! `bench/src/logic.rs` and the event `bench/src/payload.rs`, as in every other variant.

#[path = "../../../src/logic.rs"]
mod logic;
#[path = "../../../src/payload.rs"]
#[allow(dead_code)]
mod payload;

use extism_pdk::*;
use payload::{AfterMessageSent, BeforeMessageSent, Decision, Done};

#[host_fn]
extern "ExtismHost" {
    fn kv_increment(key: String) -> i64;
}

#[plugin_fn]
pub fn before_message_sent(Json(event): Json<BeforeMessageSent>) -> FnResult<Json<Decision>> {
    Ok(Json(match logic::mask(&event.draft.body) {
        Some(body) => Decision::Modify { body },
        None => Decision::Allow,
    }))
}

#[plugin_fn]
pub fn after_message_sent(Json(event): Json<AfterMessageSent>) -> FnResult<Json<Done>> {
    let key = logic::counter_key(&event.message.conversation_id);
    // SAFETY: a host function the benchmark's host registers with this exact signature.
    unsafe { kv_increment(key)? };
    Ok(Json(Done { ok: true }))
}
