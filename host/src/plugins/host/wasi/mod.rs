//! WASI as wasmtime-wasi implements it, with every function that blocks on a runtime run off the async
//! worker ([`crate::blocking::off_worker`]), one file per WASI package.
//!
//! wasmtime-wasi's synchronous WASI runs some functions' futures with `Handle::block_on` (its
//! `in_tokio`): a guest writing to stderr (as a Rust guest does when it panics), polling, opening a file,
//! binding a socket. On a worker running blocking work in place that panics. So each such function hands
//! the worker's tasks over first, and every plugin can be called in place, saving the hand-over on a
//! send's path (BENCHMARKS.md, problems 29 and 30):
//! - [`io`]: `wasi:io/poll` and `wasi:io/streams`, on every plugin's path (its stdout and stderr): only
//!   the functions that block go off the worker, the others run as they are.
//! - [`filesystem`] and [`sockets`]: every function goes off the worker. Plugins have no preopened
//!   directories and may not use the network (the `http` power is their way out), so these calls only
//!   ever answer with an error; what matters is that asking cannot break the request that made the call.
//!
//! Each wrapper holds the context wasmtime-wasi implements the interface on and delegates to it.

mod filesystem;
mod io;
mod sockets;

use wasmtime::component::Linker;

use crate::plugins::instance::PluginState;

/// The imports of a component whose calls may run on a worker in place: every WASI interface the
/// linker serves is one whose functions that block on a runtime are wrapped here (clocks and randomness
/// answer at once, the CLI's streams are `wasi:io`'s), and this package's own interfaces. A component
/// importing anything else cannot be instantiated anyway; the check keeps an interface added by a future
/// wasmtime-wasi off the worker's path until it is wrapped.
const IN_PLACE_IMPORTS: &[&str] = &[
    "chathooks:plugin/",
    "wasi:io/",
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:filesystem/",
    "wasi:sockets/",
];

/// Whether every import of a component named in `imports` is one whose calls may run on a worker in
/// place ([`IN_PLACE_IMPORTS`]).
pub(crate) fn calls_in_place<'a>(mut imports: impl Iterator<Item = &'a str>) -> bool {
    imports.all(|name| {
        IN_PLACE_IMPORTS
            .iter()
            .any(|prefix| name.starts_with(prefix))
    })
}

/// Links the wrapped interfaces over wasmtime-wasi's own in `linker` (after `add_to_linker_sync`).
pub(crate) fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let added = io::add_to_linker(linker)
        .and_then(|()| filesystem::add_to_linker(linker))
        .and_then(|()| sockets::add_to_linker(linker));
    linker.allow_shadowing(false);
    added
}

/// The context wasmtime-wasi implements an interface on (`V`), whose functions that block on a runtime
/// run off the worker.
struct OffWorker<V>(V);

/// `impl $module::$trait for OffWorker<$view<'_>>`: every method runs `$view`'s own implementation off the
/// worker. Each method is listed with its signature, so a method added by a new wasmtime-wasi fails to
/// compile here until it is listed.
macro_rules! off_worker_impl {
    (impl $module:ident::$trait:ident for $view:ident { $(
        fn $name:ident(&mut self $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty;
    )* }) => {
        impl $module::$trait for $crate::plugins::host::wasi::OffWorker<$view<'_>> {
            $(
                fn $name(&mut self $(, $arg: $ty)*) -> $ret {
                    $crate::blocking::off_worker(|| {
                        <$view<'_> as $module::$trait>::$name(&mut self.0 $(, $arg)*)
                    })
                }
            )*
        }
    };
}
use off_worker_impl;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugins_importing_only_wrapped_wasi_are_called_in_place() {
        let rust_guest = [
            "chathooks:plugin/types@0.3.0",
            "chathooks:plugin/kv@0.3.0",
            "wasi:io/poll@0.2.6",
            "wasi:io/streams@0.2.6",
            "wasi:cli/stderr@0.2.6",
            "wasi:clocks/monotonic-clock@0.2.6",
            "wasi:random/random@0.2.6",
        ];
        assert!(calls_in_place(rust_guest.into_iter()));
        // What componentize-py's and jco's components import besides.
        let python_and_js = [
            "wasi:filesystem/types@0.2.9",
            "wasi:filesystem/preopens@0.2.9",
            "wasi:sockets/tcp@0.2.9",
            "wasi:sockets/udp-create-socket@0.2.9",
            "wasi:sockets/ip-name-lookup@0.2.9",
            "wasi:random/insecure-seed@0.2.12",
        ];
        assert!(calls_in_place(rust_guest.into_iter().chain(python_and_js)));
        for other in [
            "wasi:http/outgoing-handler@0.2.6",
            "wasi:keyvalue/store@0.2.0-draft",
        ] {
            let imports = rust_guest.iter().copied().chain([other]);
            assert!(!calls_in_place(imports), "{other}");
        }
    }
}
