// {{name}}: a chathooks plugin. `./build.sh` builds `{{snake}}.wasm`; `chathooks test {{snake}}.wasm
// cases.json` tests it.
//
// `build.sh` generates the bindings (gen/plugin.h, gen/plugin.c) from wit/world.wit: one function per
// exported hook for this file to define, one per host function to call, the WIT types as C structs.
// A hook owns its arguments (it frees them); what it returns is freed by the bindings after the call, so
// it must be malloc'ed. Strings are {ptr, len} of UTF-8, not NUL-terminated.

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plugin.h"
{{before_helpers}}{{after_helpers}}{{hooks}}
