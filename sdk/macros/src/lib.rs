//! The `#[plugin]` attribute and the `hook_methods!` macro of
//! [`chathooks-sdk`](../chathooks_sdk/index.html). Use `#[plugin]` through `chathooks_sdk::plugin`, never
//! directly: the code these macros write names `::chathooks_sdk`.
//!
//! # Overview
//!
//! Both macros read the WIT package `chathooks:plugin` from this crate's `wit/` folder with `wit-parser`, and derive every hook from the exports of its world `all-hooks`: the Rust name (the
//! interface name in snake case), the parameters (records under `::chathooks_sdk::types`, `list` as `Vec`,
//! `option` as `Option`), the kind (a before-hook returns `decision`, the others `result<_, string>`) and
//! the docs. The package version comes from the same files. Adding a hook to the WIT is all it takes for
//! the SDK to offer it.
//!
//! The crate carries the WIT it reads: `wit/` is a copy of the repository's top-level `wit/` (the one
//! source of truth), made by `scripts/sync-sdk-wit.sh` and checked by `tests/wit_copy.rs` and CI, so the
//! SDK builds wherever it is (from crates.io, a vendored folder, a checkout) with nothing around it.
//!
//! - `hook_methods!()` expands, inside `pub trait Plugin { ... }`, to one function per hook with a default
//!   body (`Decision::Allow`, or `Ok(())`) and the WIT function's doc comment.
//! - `#[plugin]` goes on an `impl Plugin for MyType { ... }` block. It keeps the block as it is and adds:
//!   1. a `wit_bindgen::generate!` call for a world that includes `chathooks:plugin/imports` and exports
//!      exactly the hook interfaces whose functions the block defines (the server reads a component's
//!      exports to decide which hooks to call, so a plugin never exports a hook it does not implement);
//!   2. one `Guest` impl per exported hook, each delegating to `<MyType as Plugin>::hook(...)`;
//!   3. the generated `export!` call that makes the component's exports point at those impls.
//!
//! # Layout
//!
//! - `contract.rs`: reading the WIT into hooks (names, kinds, parameter types, docs) and the version.
//! - `rust_type.rs`: hook signatures as Rust tokens.
//! - `methods.rs`: `hook_methods!`.
//! - `plugin.rs`: `#[plugin]`.
//! - `imports_bindings!` (here): the bindings of the `imports` world that `chathooks-sdk` generates once.
//! - `wit/`: the WIT package (a copy of the repository's `wit/`).

mod contract;
mod methods;
mod plugin;
mod rust_type;

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::quote;
use syn::{ItemImpl, parse_macro_input};

use contract::Contract;

/// Exports the hooks an `impl Plugin for T` block defines, and only those. See the `chathooks-sdk` docs.
///
/// ```ignore
/// use chathooks_sdk::prelude::*;
///
/// struct Hello;
///
/// #[chathooks_sdk::plugin]
/// impl Plugin for Hello {
///     fn before_message_sent(draft: Draft, _: Conversation) -> Decision {
///         Decision::modify_body(format!("{} 👋", draft.body))
///     }
/// }
/// ```
#[proc_macro_attribute]
pub fn plugin(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        let attr = TokenStream2::from(attr);
        return syn::Error::new_spanned(attr, "`#[plugin]` takes no arguments")
            .to_compile_error()
            .into();
    }
    let block = parse_macro_input!(item as ItemImpl);
    let extra = wit_dir()
        .and_then(|dir| Ok((load(&dir)?, dir)))
        .and_then(|(contract, dir)| plugin::expand(&block, &contract, &dir));
    match extra {
        Ok(extra) => quote!(#block #extra).into(),
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#block #error).into()
        }
    }
}

/// The functions of the `Plugin` trait, one per hook of the WIT, each with a default body and the WIT
/// function's docs. Invoked once, inside `pub trait Plugin { ... }` in `chathooks-sdk`.
#[proc_macro]
pub fn hook_methods(input: TokenStream) -> TokenStream {
    let input = TokenStream2::from(input);
    if !input.is_empty() {
        return syn::Error::new_spanned(input, "`hook_methods!` takes no arguments")
            .to_compile_error()
            .into();
    }
    match wit_dir().and_then(|dir| load(&dir)) {
        Ok(contract) => methods::expand(&contract).into(),
        Err(error) => error.to_compile_error().into(),
    }
}

/// `wit_bindgen::generate!` for the world `chathooks:plugin/imports` from this crate's `wit/`: the types and
/// host interfaces every plugin uses, generated once inside `chathooks-sdk` (its `__bindings` module). Not
/// part of the API: invoked once, by `chathooks-sdk`.
#[doc(hidden)]
#[proc_macro]
pub fn imports_bindings(input: TokenStream) -> TokenStream {
    let input = TokenStream2::from(input);
    if !input.is_empty() {
        return syn::Error::new_spanned(input, "`imports_bindings!` takes no arguments")
            .to_compile_error()
            .into();
    }
    match wit_dir() {
        Ok(dir) => quote! {
            ::wit_bindgen::generate!({
                world: "chathooks:plugin/imports",
                path: #dir,
                generate_unused_types: true,
                generate_all,
                additional_derives: [PartialEq, Eq],
            });
        }
        .into(),
        Err(error) => error.to_compile_error().into(),
    }
}

/// Reads the WIT package, turning a failure into a compile error at the macro call.
fn load(dir: &str) -> syn::Result<Contract> {
    Contract::load(std::path::Path::new(dir)).map_err(|why| syn::Error::new(Span::call_site(), why))
}

/// The absolute path of this crate's `wit/` directory, which holds `chathooks:plugin`.
///
/// `wit_bindgen::generate!` resolves relative paths against the crate being compiled (the plugin), so the
/// macros hand it an absolute one, found from this crate's own location (wherever cargo unpacked it).
fn wit_dir() -> syn::Result<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("wit");
    let dir = dir.canonicalize().map_err(|error| {
        syn::Error::new(
            Span::call_site(),
            format!(
                "chathooks-sdk-macros cannot find the WIT files at {}: {error}",
                dir.display()
            ),
        )
    })?;
    dir.to_str().map(str::to_owned).ok_or_else(|| {
        syn::Error::new(
            Span::call_site(),
            format!("the WIT path {} is not valid UTF-8", dir.display()),
        )
    })
}
