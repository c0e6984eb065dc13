//! `#[plugin]`: exports the hooks an `impl Plugin for T` block defines, and only those.

use proc_macro2::TokenStream as TokenStream2;
use quote::{format_ident, quote};
use syn::{ImplItem, ItemImpl};

use crate::contract::{Contract, Hook, TYPES_INTERFACE, snake};

/// Checks the impl block and writes the bindings, `Guest` impls and `export!` call for it.
pub fn expand(block: &ItemImpl, contract: &Contract, wit_dir: &str) -> syn::Result<TokenStream2> {
    check_block(block)?;
    let hooks = implemented_hooks(block, contract)?;

    let world = world_source(contract, &hooks);
    let self_ty = &block.self_ty;
    let guest_impls = hooks.iter().map(|hook| guest_impl(contract, hook));
    let reused = reused_interfaces(contract);

    Ok(quote! {
        #[doc(hidden)]
        #[allow(missing_docs, unsafe_code, unused, clippy::all)]
        mod __chathooks_plugin {
            ::chathooks_sdk::wit_bindgen::generate!({
                inline: #world,
                world: "chathooks-guest:plugin/plugin",
                path: #wit_dir,
                runtime_path: "::chathooks_sdk::wit_bindgen::rt",
                with: { #(#reused),* },
            });
        }

        #[doc(hidden)]
        type __ChathooksPlugin = #self_ty;

        #(#guest_impls)*

        #[allow(unsafe_code)]
        const _: () = {
            __chathooks_plugin::export!(__ChathooksPlugin with_types_in __chathooks_plugin);
        };
    })
}

/// The attribute goes on a non-generic `impl Plugin for T` block.
fn check_block(block: &ItemImpl) -> syn::Result<()> {
    let Some((_, trait_path, _)) = &block.trait_ else {
        return Err(syn::Error::new_spanned(
            block.impl_token,
            "`#[plugin]` goes on an `impl Plugin for YourType { ... }` block",
        ));
    };
    if trait_path
        .segments
        .last()
        .is_none_or(|s| s.ident != "Plugin")
    {
        return Err(syn::Error::new_spanned(
            trait_path,
            "`#[plugin]` goes on an `impl Plugin for YourType { ... }` block",
        ));
    }
    if !block.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &block.generics,
            "a plugin type cannot be generic: the component exports one concrete implementation",
        ));
    }
    Ok(())
}

/// The hooks whose functions the block defines; any other function name is an error listing the hooks.
fn implemented_hooks<'c>(block: &ItemImpl, contract: &'c Contract) -> syn::Result<Vec<&'c Hook>> {
    let mut hooks = Vec::new();
    for item in &block.items {
        let ImplItem::Fn(function) = item else {
            continue;
        };
        let ident = &function.sig.ident;
        let Some(hook) = contract.hook(&ident.to_string()) else {
            let valid: Vec<&str> = contract.hooks.iter().map(|h| h.name.as_str()).collect();
            return Err(syn::Error::new_spanned(
                ident,
                format!(
                    "`{ident}` is not a hook of {}; the hooks are: {}",
                    contract.qualified("*"),
                    valid.join(", ")
                ),
            ));
        };
        hooks.push(hook);
    }
    if hooks.is_empty() {
        return Err(syn::Error::new_spanned(
            &block.self_ty,
            "a plugin must implement at least one hook function",
        ));
    }
    Ok(hooks)
}

/// The interfaces the SDK has generated once (`types` and every import), as `with:` entries of the
/// plugin's `generate!`, so the plugin's bindings reuse them instead of generating their own.
fn reused_interfaces(contract: &Contract) -> Vec<TokenStream2> {
    let (namespace, package) = module_path(contract);
    contract
        .imports
        .iter()
        .map(|interface| {
            let key = contract.qualified(interface);
            if interface == TYPES_INTERFACE {
                quote!(#key: ::chathooks_sdk::types)
            } else {
                let module = format_ident!("{}", snake(interface));
                quote!(#key: ::chathooks_sdk::__bindings::#namespace::#package::#module)
            }
        })
        .collect()
}

/// The inline WIT world: the server's imports plus one export per implemented hook.
fn world_source(contract: &Contract, hooks: &[&Hook]) -> String {
    let mut world = format!(
        "package chathooks-guest:plugin;\nworld plugin {{\n    include {};\n",
        contract.qualified(crate::contract::IMPORTS_WORLD)
    );
    for hook in hooks {
        world.push_str(&format!(
            "    export {};\n",
            contract.qualified(&hook.wit_name)
        ));
    }
    world.push('}');
    world
}

/// `impl exports::<namespace>::<package>::<hook>::Guest for __ChathooksPlugin`, delegating to the
/// `Plugin` impl.
fn guest_impl(contract: &Contract, hook: &Hook) -> TokenStream2 {
    let (namespace, package) = module_path(contract);
    let module = hook.ident();
    let function = hook.ident();
    let signature = hook.signature();
    let names = hook.param_idents();
    quote! {
        impl __chathooks_plugin::exports::#namespace::#package::#module::Guest for __ChathooksPlugin {
            #signature {
                <__ChathooksPlugin as ::chathooks_sdk::Plugin>::#function(#(#names),*)
            }
        }
    }
}

/// The package's namespace and name as module identifiers (`chathooks`, `plugin`).
fn module_path(contract: &Contract) -> (proc_macro2::Ident, proc_macro2::Ident) {
    let (namespace, package) = &contract.module_path;
    (format_ident!("{}", namespace), format_ident!("{}", package))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use syn::parse_quote;

    use super::*;

    fn contract() -> Contract {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("wit");
        Contract::load(&dir).unwrap_or_else(|why| panic!("{why}"))
    }

    fn error(block: ItemImpl) -> String {
        match expand(&block, &contract(), "/wit") {
            Ok(tokens) => panic!("expected an error, got {tokens}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn exports_exactly_the_implemented_hooks() {
        let block: ItemImpl = parse_quote! {
            impl Plugin for Mod {
                fn before_message_sent(d: Draft, c: Conversation) -> Decision { Decision::Allow }
                fn after_message_held(x: EventContext, h: HeldMessage, c: Conversation) -> Result<(), String> { Ok(()) }
            }
        };
        let contract = contract();
        let hooks = implemented_hooks(&block, &contract).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            world_source(&contract, &hooks),
            "package chathooks-guest:plugin;\nworld plugin {\n    include chathooks:plugin/imports@0.3.0;\n    \
             export chathooks:plugin/before-message-sent@0.3.0;\n    \
             export chathooks:plugin/after-message-held@0.3.0;\n}"
        );
        let code = expand(&block, &contract, "/wit")
            .unwrap_or_else(|e| panic!("{e}"))
            .to_string();
        assert!(
            code.contains("exports :: chathooks :: plugin :: after_message_held :: Guest"),
            "{code}"
        );
        assert!(
            code.contains("\"chathooks:plugin/types@0.3.0\" : :: chathooks_sdk :: types"),
            "{code}"
        );
        assert!(!code.contains("after_message_sent"), "{code}");
    }

    #[test]
    fn an_unknown_function_lists_every_hook() {
        let message = error(parse_quote! {
            impl Plugin for P {
                fn after_lunch() -> Result<(), String> { Ok(()) }
            }
        });
        assert!(
            message.starts_with("`after_lunch` is not a hook of chathooks:plugin/*@0.3.0"),
            "{message}"
        );
        for hook in [
            "before_message_sent",
            "after_message_read_by_all",
            "on_timer",
        ] {
            assert!(message.contains(hook), "{hook} missing: {message}");
        }
    }

    #[test]
    fn misplaced_attributes_are_explained() {
        let not_a_trait = error(parse_quote! { impl P { fn on_timer() {} } });
        assert!(
            not_a_trait.contains("goes on an `impl Plugin for YourType"),
            "{not_a_trait}"
        );
        let other_trait = error(parse_quote! { impl Clone for P {} });
        assert!(
            other_trait.contains("goes on an `impl Plugin for YourType"),
            "{other_trait}"
        );
        let generic = error(parse_quote! { impl<T> Plugin for P<T> {} });
        assert!(generic.contains("cannot be generic"), "{generic}");
        let empty = error(parse_quote! { impl Plugin for P {} });
        assert!(empty.contains("at least one hook"), "{empty}");
    }
}
