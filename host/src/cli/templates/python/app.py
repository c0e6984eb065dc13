"""{{name}}: a chathooks plugin. `./build.sh` builds `{{snake}}.wasm`; `chathooks test {{snake}}.wasm
cases.json` tests it.

There is one class per hook, named after the hook's WIT interface in CamelCase; wit/world.wit exports
exactly these, and the server calls only them. The WIT types are dataclasses and variants in
`wit_world.imports.types`; `componentize-py -d wit -w {{name}} bindings bindings/` writes them out for
your editor.
"""

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import kv, log
from wit_world.imports.types import Decision, Decision_Allow, Decision_Reject, EventContext
{{before_helpers}}{{after_helpers}}{{hooks}}
