
// Appends `len` bytes at `s` to a growing, malloc'ed string. (The printf family would pull in WASI's
// stdio, and with it imports that need an adapter: see plugins-examples/c/README.md in chathooks.)
static void append(plugin_string_t *out, const void *s, size_t len) {
  out->ptr = realloc(out->ptr, out->len + len + 1);
  memcpy(out->ptr + out->len, s, len);
  out->len += len;
}

// Appends a NUL-terminated C string.
static void append_c(plugin_string_t *out, const char *s) { append(out, s, strlen(s)); }

// Appends an unsigned number in decimal.
static void append_u64(plugin_string_t *out, uint64_t n) {
  char digits[24];
  size_t i = sizeof digits;
  do digits[--i] = (char)('0' + n % 10); while ((n /= 10) != 0);
  append(out, digits + i, sizeof digits - i);
}

// What the after-hooks do: count the events of `hook` in KV, once per event. Events are delivered at least
// once, so a retried event (same `event_id`, higher `attempt`) finds its claim taken and is skipped.
// Returning false with `*err` set makes the server retry the event later.
static bool count(const char *hook, const chathooks_plugin_types_event_context_t *context,
                  plugin_string_t *err) {
  static uint8_t one[] = {'1'};
  plugin_list_u8_t claim = {one, sizeof one};
  chathooks_plugin_kv_error_t error;
  plugin_string_t seen = {NULL, 0}, key = {NULL, 0};
  append_c(&seen, "seen:");
  append_u64(&seen, context->event_id);
  append_c(&key, "events:");
  append_c(&key, hook);

  bool ok = true, fresh = false, existed;
  int64_t total = 0;
  if (!chathooks_plugin_kv_compare_and_swap(&seen, NULL, &claim, &fresh, &error)) {
    chathooks_plugin_kv_error_free(&error);
    plugin_string_dup(err, "kv failed: cannot claim the event");
    ok = false;
  } else if (fresh && !chathooks_plugin_kv_increment(&key, 1, &total, &error)) {
    chathooks_plugin_kv_error_free(&error);
    // Not counted: release the claim so that the retry counts the event.
    if (!chathooks_plugin_kv_delete(&seen, &existed, &error)) chathooks_plugin_kv_error_free(&error);
    plugin_string_dup(err, "kv failed: cannot count the event");
    ok = false;
  } else if (fresh) {
    plugin_string_t line = {NULL, 0};
    append_c(&line, hook);
    append_c(&line, ": event ");
    append_u64(&line, context->event_id);
    append_c(&line, ", ");
    append_u64(&line, (uint64_t)total);
    append_c(&line, " so far");
    chathooks_plugin_log_log(CHATHOOKS_PLUGIN_LOG_LEVEL_INFO, &line);
    plugin_string_free(&line);
  }
  plugin_string_free(&seen);
  plugin_string_free(&key);
  return ok;
}
