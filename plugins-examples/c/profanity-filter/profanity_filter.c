// profanity-filter: a before-hook plugin in C (the twin of plugins-examples/rust/profanity-filter).
//
// It looks at every message about to be sent or edited and
// - masks each blocked word with `*`s of the same length (whole words only, case-insensitive:
//   "What the HECK" -> "What the ****", but "heckle" stays);
// - rejects a message made only of blocked words ("damn!") with the reason
//   "message contains only blocked words";
// - allows everything else unchanged (the metadata is never touched).
//
// The bindings (`plugin.h`, `plugin.c`) are generated from wit/world.wit by `wit-bindgen c`.
// Build: `scripts/build-plugins.sh c` at the repository root gives `plugins/c_profanity_filter.wasm`.
// ../README.md has the commands. Test it with the Rust twin's case file:
// `chathooks test plugins/c_profanity_filter.wasm plugins-examples/rust/profanity-filter/cases.json`.

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

#include "plugin.h"

// Blocked words, lower case. A word is a run of letters and digits, so "heck's" contains "heck".
static const char *const BLOCKED_WORDS[] = {"darn", "heck", "damn", "crap", "frak", "bloody"};

// The reason given to the sender of a message with nothing but blocked words.
static const char ONLY_BLOCKED[] = "message contains only blocked words";

// Decodes the UTF-8 code point at the start of `s` (`len` > 0 bytes) into `*c`; returns its length in
// bytes. WIT strings are always valid UTF-8, so this does not check continuation bytes.
static size_t utf8_next(const uint8_t *s, size_t len, uint32_t *c) {
  size_t n = s[0] < 0x80 ? 1 : s[0] < 0xE0 ? 2 : s[0] < 0xF0 ? 3 : 4;
  if (n > len) n = len;
  uint32_t value = n == 1 ? s[0] : s[0] & (0x7F >> n);
  for (size_t i = 1; i < n; i++) value = (value << 6) | (s[i] & 0x3F);
  *c = value;
  return n;
}

// Whether the word `s` (`len` bytes of UTF-8) is on the list, ignoring case.
static bool is_blocked(const uint8_t *s, size_t len) {
  char lower[8];  // longer than any blocked word
  size_t n = 0;
  for (size_t i = 0; i < len;) {
    uint32_t c;
    i += utf8_next(s + i, len - i, &c);
    wint_t l = towlower((wint_t)c);
    if (l > 0x7F || n == sizeof lower - 1) return false;  // not an ASCII word, or too long
    lower[n++] = (char)l;
  }
  lower[n] = '\0';
  for (size_t w = 0; w < sizeof BLOCKED_WORDS / sizeof BLOCKED_WORDS[0]; w++) {
    if (strcmp(lower, BLOCKED_WORDS[w]) == 0) return true;
  }
  return false;
}

// Sets `*ret` to the decision for a message whose text is `body`.
static void decide(const plugin_string_t *body, chathooks_plugin_types_decision_t *ret) {
  // Masking never makes the text longer: each code point of a blocked word becomes one `*`.
  uint8_t *out = malloc(body->len > 0 ? body->len : 1);
  size_t out_len = 0, words = 0, blocked = 0;
  size_t word_start = 0, word_chars = 0;  // the current word: where it starts and its code points
  bool in_word = false;
  for (size_t i = 0; i <= body->len;) {
    uint32_t c = 0;
    size_t n = i < body->len ? utf8_next(body->ptr + i, body->len - i, &c) : 0;
    if (n > 0 && iswalnum((wint_t)c)) {
      if (!in_word) word_start = i, word_chars = 0, in_word = true;
      word_chars++;
      i += n;
      continue;
    }
    if (in_word) {  // a word ended: copy it, masked if it is blocked
      words++;
      if (is_blocked(body->ptr + word_start, i - word_start)) {
        blocked++;
        memset(out + out_len, '*', word_chars);
        out_len += word_chars;
      } else {
        memcpy(out + out_len, body->ptr + word_start, i - word_start);
        out_len += i - word_start;
      }
      in_word = false;
    }
    if (n == 0) break;  // end of the text
    memcpy(out + out_len, body->ptr + i, n);  // a character between words stays as it is
    out_len += n;
    i += n;
  }
  if (blocked == 0) {
    free(out);
    ret->tag = CHATHOOKS_PLUGIN_TYPES_DECISION_ALLOW;
  } else if (blocked == words) {
    free(out);
    ret->tag = CHATHOOKS_PLUGIN_TYPES_DECISION_REJECT;
    plugin_string_dup(&ret->val.reject, ONLY_BLOCKED);  // freed by the bindings after the call
  } else {
    ret->tag = CHATHOOKS_PLUGIN_TYPES_DECISION_MODIFY;
    ret->val.modify.body.is_some = true;
    ret->val.modify.body.val = (plugin_string_t){out, out_len};  // freed by the bindings after the call
    ret->val.modify.metadata.is_some = false;
  }
}

// The arguments of an exported function belong to it: free them before returning.
void exports_chathooks_plugin_before_message_sent_before_message_sent(
    exports_chathooks_plugin_before_message_sent_draft_t *draft,
    exports_chathooks_plugin_before_message_sent_conversation_t *conversation,
    exports_chathooks_plugin_before_message_sent_decision_t *ret) {
  decide(&draft->body, ret);
  chathooks_plugin_types_draft_free(draft);
  chathooks_plugin_types_conversation_free(conversation);
}

void exports_chathooks_plugin_before_message_updated_before_message_updated(
    exports_chathooks_plugin_before_message_updated_message_t *current,
    exports_chathooks_plugin_before_message_updated_draft_t *draft,
    exports_chathooks_plugin_before_message_updated_conversation_t *conversation,
    exports_chathooks_plugin_before_message_updated_decision_t *ret) {
  decide(&draft->body, ret);
  chathooks_plugin_types_message_free(current);
  chathooks_plugin_types_draft_free(draft);
  chathooks_plugin_types_conversation_free(conversation);
}
