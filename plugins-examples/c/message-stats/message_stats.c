// message-stats: counts sent messages in the plugin's KV store (the twin of
// plugins-examples/rust/message-stats).
//
// - `conversation:<conversation-id>`: messages sent to that conversation;
// - `user:<user-id>`: messages sent by that user (plugin bots included).
//
// After-hooks are delivered *at least once*: an event whose first delivery failed or timed out comes again
// with the same `event_id` and a higher `attempt`. To count each message once, the plugin claims
// `seen:<event-id>` with an atomic compare-and-swap before counting; a delivery that finds the claim taken
// does nothing. When counting fails the claim is released and the hook returns an error, so the retry
// counts. Once counted, the claim is rewritten with a time to live so old claims leave the store.
//
// The bindings (`plugin.h`, `plugin.c`) are generated from wit/world.wit by `wit-bindgen c`.
// Build: `scripts/build-plugins.sh c` at the repository root gives `plugins/c_message_stats.wasm`.
// ../README.md has the commands. Test it with the Rust twin's case file:
// `chathooks test plugins/c_message_stats.wasm plugins-examples/rust/message-stats/cases.json`.

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plugin.h"

// How long a `seen:<event-id>` claim is kept: far longer than the server keeps retrying an event.
static const uint64_t SEEN_TTL_MS = 7ull * 24 * 3600 * 1000;

// The value of a claim. Stored as `1`, which is also valid JSON.
static uint8_t CLAIMED[] = {'1'};

// Building strings. The printf family is avoided on purpose: it pulls in WASI's stdio, which would make the
// component import WASI interfaces and need the preview1 adapter (see the README). These few helpers
// append to a component-model string that grows as needed; the result is `malloc`ed, so it can be passed
// to the host, returned as an error (the bindings free it) or freed with `plugin_string_free`.

// Appends `len` bytes at `s`.
static void append(plugin_string_t *out, const void *s, size_t len) {
  out->ptr = realloc(out->ptr, out->len + len + 1);
  memcpy(out->ptr + out->len, s, len);
  out->len += len;
}

// Appends a NUL-terminated C string.
static void append_c(plugin_string_t *out, const char *s) { append(out, s, strlen(s)); }

// Appends a component-model string (which is not NUL-terminated).
static void append_s(plugin_string_t *out, const plugin_string_t *s) { append(out, s->ptr, s->len); }

// Appends a number in decimal.
static void append_i64(plugin_string_t *out, int64_t n) {
  char digits[24];
  size_t i = sizeof digits;
  uint64_t v = n < 0 ? 0 - (uint64_t)n : (uint64_t)n;
  do digits[--i] = (char)('0' + v % 10); while ((v /= 10) != 0);
  if (n < 0) digits[--i] = '-';
  append(out, digits + i, sizeof digits - i);
}

// Appends an unsigned number in decimal.
static void append_u64(plugin_string_t *out, uint64_t n) {
  char digits[24];
  size_t i = sizeof digits;
  do digits[--i] = (char)('0' + n % 10); while ((n /= 10) != 0);
  append(out, digits + i, sizeof digits - i);
}

// A new empty string to append to.
static plugin_string_t empty(void) { return (plugin_string_t){NULL, 0}; }

// Writes `line` to the server's log at `level`, then frees it.
static void log_line(chathooks_plugin_log_level_t level, plugin_string_t *line) {
  chathooks_plugin_log_log(level, line);
  plugin_string_free(line);
}

// A one-line explanation of a KV error, for logs and for error returns from hooks. Frees `error`.
static plugin_string_t describe(chathooks_plugin_kv_error_t *error) {
  plugin_string_t out = empty();
  switch (error->tag) {
    case CHATHOOKS_PLUGIN_KV_ERROR_INVALID_KEY:
      append_c(&out, "kv: invalid key: ");
      append_s(&out, &error->val.invalid_key);
      break;
    case CHATHOOKS_PLUGIN_KV_ERROR_VALUE_TOO_LARGE:
      append_c(&out, "kv: value too large (");
      append_u64(&out, error->val.value_too_large);
      append_c(&out, " bytes)");
      break;
    case CHATHOOKS_PLUGIN_KV_ERROR_QUOTA_EXCEEDED:
      append_c(&out, "kv: quota of keys or bytes exceeded");
      break;
    case CHATHOOKS_PLUGIN_KV_ERROR_NOT_A_NUMBER:
      append_c(&out, "kv: increment of a value that is not a decimal integer");
      break;
    default:
      append_c(&out, "kv: storage failed: ");
      append_s(&out, &error->val.storage);
      break;
  }
  chathooks_plugin_kv_error_free(error);
  return out;
}

// Adds `delta` to the counter `<prefix><id>`, setting its new value. Returns false (with `*error` set)
// when the store refuses.
static bool add(const char *prefix, const plugin_string_t *id, int64_t *total,
                chathooks_plugin_kv_error_t *error) {
  plugin_string_t key = empty();
  append_c(&key, prefix);
  append_s(&key, id);
  bool ok = chathooks_plugin_kv_increment(&key, 1, total, error);
  plugin_string_free(&key);
  return ok;
}

// Logs a warning that `what` failed for `key`, with the reason. Frees `error`.
static void warn(const char *what, const plugin_string_t *key, chathooks_plugin_kv_error_t *error) {
  plugin_string_t why = describe(error);
  plugin_string_t line = empty();
  append_c(&line, what);
  append_s(&line, key);
  append_c(&line, ": ");
  append_s(&line, &why);
  plugin_string_free(&why);
  log_line(CHATHOOKS_PLUGIN_LOG_LEVEL_WARN, &line);
}

// Handles one event; returns false with `*err` set to have it retried.
static bool handle(const chathooks_plugin_types_event_context_t *context,
                   const chathooks_plugin_types_message_t *message, plugin_string_t *err) {
  chathooks_plugin_kv_error_t error;
  plugin_list_u8_t claimed = {CLAIMED, sizeof CLAIMED};
  plugin_string_t seen = empty();
  append_c(&seen, "seen:");
  append_u64(&seen, context->event_id);

  bool fresh;
  if (!chathooks_plugin_kv_compare_and_swap(&seen, NULL, &claimed, &fresh, &error)) {
    *err = describe(&error);
    plugin_string_free(&seen);
    return false;
  }
  if (!fresh) {
    plugin_string_t line = empty();
    append_c(&line, "event ");
    append_u64(&line, context->event_id);
    append_c(&line, " (attempt ");
    append_u64(&line, context->attempt);
    append_c(&line, ") already counted, skipping");
    log_line(CHATHOOKS_PLUGIN_LOG_LEVEL_INFO, &line);
    plugin_string_free(&seen);
    return true;
  }

  int64_t in_conversation = 0, by_sender = 0;
  if (!add("conversation:", &message->conversation_id, &in_conversation, &error) ||
      !add("user:", &message->sender.id, &by_sender, &error)) {
    *err = describe(&error);
    // Not counted: release the claim so that the retry counts the message.
    bool existed;
    if (!chathooks_plugin_kv_delete(&seen, &existed, &error)) warn("cannot release ", &seen, &error);
    plugin_string_free(&seen);
    return false;
  }
  plugin_string_t line = empty();
  append_c(&line, "counted message ");
  append_s(&line, &message->id);
  append_c(&line, ": conversation ");
  append_s(&line, &message->conversation_id);
  append_c(&line, " has ");
  append_i64(&line, in_conversation);
  append_c(&line, ", user ");
  append_s(&line, &message->sender.id);
  append_c(&line, " has ");
  append_i64(&line, by_sender);
  log_line(CHATHOOKS_PLUGIN_LOG_LEVEL_INFO, &line);
  // Counted: keep the claim, but only for a while. Failing here is no reason to retry (the claim stays,
  // without a time to live), so it is only logged.
  uint64_t ttl = SEEN_TTL_MS;
  if (!chathooks_plugin_kv_set(&seen, &claimed, &ttl, &error)) warn("cannot set the TTL of ", &seen, &error);
  plugin_string_free(&seen);
  return true;
}

// The arguments of an exported function belong to it: free them before returning. An error string set in
// `*err` is freed by the bindings after the call.
bool exports_chathooks_plugin_after_message_sent_after_message_sent(
    exports_chathooks_plugin_after_message_sent_event_context_t *context,
    exports_chathooks_plugin_after_message_sent_message_t *message,
    exports_chathooks_plugin_after_message_sent_conversation_t *conversation, plugin_string_t *err) {
  bool ok = handle(context, message, err);
  chathooks_plugin_types_message_free(message);
  chathooks_plugin_types_conversation_free(conversation);
  return ok;
}
