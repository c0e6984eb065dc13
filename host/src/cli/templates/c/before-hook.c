
void {{fn}}(
    {{params}},
    chathooks_plugin_types_decision_t *ret) {
  check(&draft->body, ret);
{{free}}}
