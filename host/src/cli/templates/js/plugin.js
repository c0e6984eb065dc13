// {{name}}: a chathooks plugin. `./build.sh` builds `{{snake}}.wasm`; `chathooks test {{snake}}.wasm
// cases.json` tests it.
//
// There is one exported object per hook, named after the hook's WIT interface in camelCase, with one
// method; wit/world.wit exports exactly these, and the server calls only them. Records arrive as objects
// with camelCase fields; with the QuickJS backend, WIT's 64-bit integers are plain numbers.

import * as kv from "chathooks:plugin/kv@{{wit_version}}";
import { log } from "chathooks:plugin/log@{{wit_version}}";
{{before_helpers}}{{after_helpers}}{{hooks}}
