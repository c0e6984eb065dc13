
// The decision of the before-hooks for a message whose text is `body`: reject spam, allow the rest.
// (`ret->tag = CHATHOOKS_PLUGIN_TYPES_DECISION_MODIFY` with `ret->val.modify.body` set would store another
// text instead.)
static void check(const plugin_string_t *body, chathooks_plugin_types_decision_t *ret) {
  static const char SPAM[] = "spam";
  const size_t n = sizeof SPAM - 1;
  for (size_t i = 0; i + n <= body->len; i++) {
    size_t j = 0;
    while (j < n && tolower(body->ptr[i + j]) == SPAM[j]) j++;
    if (j == n) {
      ret->tag = CHATHOOKS_PLUGIN_TYPES_DECISION_REJECT;
      plugin_string_dup(&ret->val.reject, "no spam, please");
      return;
    }
  }
  ret->tag = CHATHOOKS_PLUGIN_TYPES_DECISION_ALLOW;
}
