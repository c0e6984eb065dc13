
bool {{fn}}(
    {{params}},
    plugin_string_t *err) {
  bool ok = count("{{hook}}", context, err);
{{free}}  return ok;
}
