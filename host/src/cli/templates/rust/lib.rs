//! {{name}}: a chathooks plugin. `./build.sh` builds `{{snake}}.wasm`; `chathooks test {{snake}}.wasm
//! cases.json` tests it.
//!
//! The `#[chathooks_sdk::plugin]` block below defines one function per hook; the component exports exactly
//! those, and the server calls only them. The names and parameters of every hook are in the SDK's
//! `Plugin` trait (`cargo doc --open`).

use chathooks_sdk::prelude::*;
{{before_helpers}}{{after_helpers}}
/// The plugin. Keep state in `kv`: the server may replace an instance at any time.
struct {{type_name}};

#[chathooks_sdk::plugin]
impl Plugin for {{type_name}} {
{{hooks}}}
