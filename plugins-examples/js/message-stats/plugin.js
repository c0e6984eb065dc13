// message-stats: counts sent messages in the plugin's KV store (the twin of
// plugins-examples/rust/message-stats).
//
// - `conversation:<conversation-id>`: messages sent to that conversation;
// - `user:<user-id>`: messages sent by that user (plugin bots included).
//
// After-hooks are delivered *at least once*: an event whose first delivery failed or timed out comes again
// with the same `eventId` and a higher `attempt`. To count each message once, the plugin claims
// `seen:<event-id>` with an atomic compare-and-swap before counting; a delivery that finds the claim taken
// does nothing. When counting fails the claim is released and the hook throws, so the retry counts.
// Once counted, the claim is rewritten with a time to live so old claims leave the store.
//
// Build: `scripts/build-plugins.sh js` at the repository root gives `plugins/js_message_stats.wasm`.
// ../README.md has the commands. Test it with the Rust twin's case file:
// `chathooks test plugins/js_message_stats.wasm plugins-examples/rust/message-stats/cases.json`.

import * as kv from "chathooks:plugin/kv@0.3.0";
import { log } from "chathooks:plugin/log@0.3.0";

// How long a `seen:<event-id>` claim is kept: far longer than the server keeps retrying an event.
const SEEN_TTL_MS = 7 * 24 * 3600 * 1000;

// The value of a claim: the byte `1`, which is also valid JSON.
const CLAIMED = new Uint8Array([0x31]);

// A one-line explanation of a KV failure, for logs and for errors returned from hooks. A KV function that
// fails throws an Error whose `payload` is the WIT `kv.error`: `{tag: "not-a-number"}`, say.
function describe(error) {
  const payload = error && error.payload;
  switch (payload && payload.tag) {
    case "invalid-key":
      return `kv: invalid key: ${payload.val}`;
    case "value-too-large":
      return `kv: value too large (${payload.val} bytes)`;
    case "quota-exceeded":
      return "kv: quota of keys or bytes exceeded";
    case "not-a-number":
      return "kv: increment of a value that is not a decimal integer";
    case "storage":
      return `kv: storage failed: ${payload.val}`;
    default:
      return `kv: ${error}`;
  }
}

// Adds one message to the counters of its conversation and its sender; returns the new totals.
// (With the QuickJS backend, WIT's 64-bit integers are plain JavaScript numbers.)
function count(message) {
  const inConversation = kv.increment(`conversation:${message.conversationId}`, 1);
  const bySender = kv.increment(`user:${message.sender.id}`, 1);
  return [inConversation, bySender];
}

// One exported object per hook interface, named after it in camelCase. Returning means `ok`; throwing a
// string means `err(string)`: the server retries the event later.
export const afterMessageSent = {
  afterMessageSent(context, message, _conversation) {
    const seen = `seen:${context.eventId}`;
    let claimed;
    try {
      claimed = kv.compareAndSwap(seen, undefined, CLAIMED);
    } catch (error) {
      throw describe(error);
    }
    if (!claimed) {
      log("info", `event ${context.eventId} (attempt ${context.attempt}) already counted, skipping`);
      return;
    }
    let totals;
    try {
      totals = count(message);
    } catch (error) {
      // Not counted: release the claim so that the retry counts the message.
      try {
        kv.delete(seen);
      } catch (release) {
        log("warn", `cannot release ${seen}: ${describe(release)}`);
      }
      throw describe(error);
    }
    const [inConversation, bySender] = totals;
    log(
      "info",
      `counted message ${message.id}: conversation ${message.conversationId} has ${inConversation}, ` +
        `user ${message.sender.id} has ${bySender}`,
    );
    // Counted: keep the claim, but only for a while. Failing here is no reason to retry (the claim stays,
    // without a time to live), so it is only logged.
    try {
      kv.set(seen, CLAIMED, SEEN_TTL_MS);
    } catch (error) {
      log("warn", `cannot set the TTL of ${seen}: ${describe(error)}`);
    }
  },
};
