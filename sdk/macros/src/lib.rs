//! The `#[plugin]` attribute of [`chathooks-sdk`](../chathooks_sdk/index.html). Use it through
//! `chathooks_sdk::plugin`, never directly: the code it writes names `::chathooks_sdk`.
//!
//! # Overview
//!
//! The attribute goes on an `impl Plugin for MyType { ... }` block. It keeps the block as it is and adds:
//!
//! 1. a `wit_bindgen::generate!` call for a world that includes `chathooks:plugin/imports` and exports
//!    exactly the hook interfaces whose functions the block defines (the server reads a component's exports
//!    to decide which hooks to call, so a plugin never exports a hook it does not implement);
//! 2. one `Guest` impl per exported hook, each delegating to `<MyType as Plugin>::hook(...)`;
//! 3. the generated `export!` call that makes the component's exports point at those impls.
//!
//! # Layout
//!
//! - [`HOOKS`]: every hook the server can call, with its WIT interface and parameters.
//! - [`plugin`]: the attribute itself: validate the impl block, then emit the three parts above.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote};
use syn::{ImplItem, ItemImpl, parse_macro_input};

/// The WIT package the hooks live in, with its version, as `wit_bindgen::generate!` names interfaces.
const PACKAGE: &str = "chathooks:plugin";
/// The version of [`PACKAGE`] this SDK is built against.
const VERSION: &str = "0.2.0";

/// What a hook returns, which decides the shape of its `Guest` impl.
#[derive(Clone, Copy)]
enum Kind {
    /// A before-hook returns a `Decision`.
    Before,
    /// An after-hook returns `Result<(), String>`.
    After,
    /// `on-timer(name, payload)`: no event context, string parameters, returns `Result<(), String>`.
    Timer,
}

/// One hook: a Rust function name, the WIT interface (and function) it exports, and its parameters.
struct Hook {
    /// The function name in the `Plugin` trait, which is the interface name in snake case.
    name: &'static str,
    /// Before or after.
    kind: Kind,
    /// Parameter names and types, in WIT order. Types are written relative to `::chathooks_sdk::types`;
    /// a leading `*` means `Vec<...>`.
    params: &'static [(&'static str, &'static str)],
}

/// The parameters shared by the three message after-hooks.
const MESSAGE_AFTER: &[(&str, &str)] = &[
    ("context", "EventContext"),
    ("message", "Message"),
    ("conversation", "Conversation"),
    ("participants", "*Participant"),
];
/// The parameters shared by the conversation after-hooks.
const CONVERSATION_AFTER: &[(&str, &str)] = &[
    ("context", "EventContext"),
    ("conversation", "Conversation"),
    ("participants", "*Participant"),
];
/// The parameters of the receipt hooks.
const RECEIPT_AFTER: &[(&str, &str)] = &[
    ("context", "EventContext"),
    ("message", "Message"),
    ("conversation", "Conversation"),
    ("receipt", "Receipt"),
];
/// The parameters of the reaction hooks.
const REACTION_AFTER: &[(&str, &str)] = &[
    ("context", "EventContext"),
    ("message", "Message"),
    ("conversation", "Conversation"),
    ("reaction", "Reaction"),
];

/// Every hook of `chathooks:plugin@0.2.0`, in the order of `hooks.wit`.
const HOOKS: &[Hook] = &[
    Hook {
        name: "before_message_sent",
        kind: Kind::Before,
        params: &[
            ("draft", "Draft"),
            ("conversation", "Conversation"),
            ("participants", "*Participant"),
        ],
    },
    Hook {
        name: "before_message_updated",
        kind: Kind::Before,
        params: &[
            ("current", "Message"),
            ("draft", "Draft"),
            ("conversation", "Conversation"),
            ("participants", "*Participant"),
        ],
    },
    Hook {
        name: "after_message_sent",
        kind: Kind::After,
        params: MESSAGE_AFTER,
    },
    Hook {
        name: "after_message_updated",
        kind: Kind::After,
        params: MESSAGE_AFTER,
    },
    Hook {
        name: "after_message_deleted",
        kind: Kind::After,
        params: MESSAGE_AFTER,
    },
    Hook {
        name: "typing_started",
        kind: Kind::After,
        params: &[
            ("context", "EventContext"),
            ("conversation", "Conversation"),
            ("participants", "*Participant"),
            ("events", "*TypingEvent"),
        ],
    },
    Hook {
        name: "after_conversation_created",
        kind: Kind::After,
        params: CONVERSATION_AFTER,
    },
    Hook {
        name: "after_conversation_updated",
        kind: Kind::After,
        params: CONVERSATION_AFTER,
    },
    Hook {
        name: "after_conversation_deleted",
        kind: Kind::After,
        params: CONVERSATION_AFTER,
    },
    Hook {
        name: "after_users_added_to_conversation",
        kind: Kind::After,
        params: &[
            ("context", "EventContext"),
            ("conversation", "Conversation"),
            ("participants", "*Participant"),
            ("new_users", "*User"),
        ],
    },
    Hook {
        name: "after_users_removed_from_conversation",
        kind: Kind::After,
        params: &[
            ("context", "EventContext"),
            ("conversation", "Conversation"),
            ("participants", "*Participant"),
            ("old_users", "*User"),
        ],
    },
    Hook {
        name: "after_message_delivered",
        kind: Kind::After,
        params: RECEIPT_AFTER,
    },
    Hook {
        name: "after_message_read",
        kind: Kind::After,
        params: RECEIPT_AFTER,
    },
    Hook {
        name: "after_reaction_added",
        kind: Kind::After,
        params: REACTION_AFTER,
    },
    Hook {
        name: "after_reaction_removed",
        kind: Kind::After,
        params: REACTION_AFTER,
    },
    Hook {
        name: "after_user_mentioned",
        kind: Kind::After,
        params: &[
            ("context", "EventContext"),
            ("message", "Message"),
            ("conversation", "Conversation"),
            ("mentioned_users", "*User"),
        ],
    },
    Hook {
        name: "on_timer",
        kind: Kind::Timer,
        params: &[("name", "String"), ("payload", "String")],
    },
];

/// Exports the hooks an `impl Plugin for T` block defines, and only those. See the `chathooks-sdk` docs.
///
/// ```ignore
/// use chathooks_sdk::prelude::*;
///
/// struct Hello;
///
/// #[chathooks_sdk::plugin]
/// impl Plugin for Hello {
///     fn before_message_sent(draft: Draft, _: Conversation, _: Vec<Participant>) -> Decision {
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
    match expand(&block) {
        Ok(extra) => quote!(#block #extra).into(),
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#block #error).into()
        }
    }
}

/// Checks the impl block and writes the bindings, `Guest` impls and `export!` call for it.
fn expand(block: &ItemImpl) -> syn::Result<TokenStream2> {
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

    let mut hooks = Vec::new();
    for item in &block.items {
        let ImplItem::Fn(function) = item else {
            continue;
        };
        let ident = &function.sig.ident;
        let Some(hook) = HOOKS.iter().find(|h| ident == h.name) else {
            let valid: Vec<&str> = HOOKS.iter().map(|h| h.name).collect();
            return Err(syn::Error::new_spanned(
                ident,
                format!(
                    "`{ident}` is not a chathooks hook; the hooks are: {}",
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

    let wit_path = wit_dir()?;
    let world = world_source(&hooks);
    let self_ty = &block.self_ty;
    let guest_impls = hooks.iter().map(|hook| guest_impl(hook));
    let reused = reused_interfaces();

    Ok(quote! {
        #[doc(hidden)]
        #[allow(missing_docs, unsafe_code, unused, clippy::all)]
        mod __chathooks_plugin {
            ::chathooks_sdk::wit_bindgen::generate!({
                inline: #world,
                world: "chathooks-guest:plugin/plugin",
                path: #wit_path,
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

/// The interfaces the SDK has generated once (`types` and every import), as `with:` entries of the
/// plugin's `generate!`, so the plugin's bindings reuse them instead of generating their own.
fn reused_interfaces() -> Vec<TokenStream2> {
    const IMPORTS: &[&str] = &[
        "log",
        "kv",
        "config",
        "chat",
        "events",
        "http",
        "push",
        "scheduler",
    ];
    let types = format!("{PACKAGE}/types@{VERSION}");
    let mut reused = vec![quote!(#types: ::chathooks_sdk::types)];
    reused.extend(IMPORTS.iter().map(|interface| {
        let key = format!("{PACKAGE}/{interface}@{VERSION}");
        let module = format_ident!("{}", interface);
        quote!(#key: ::chathooks_sdk::__bindings::chathooks::plugin::#module)
    }));
    reused
}

/// The inline WIT world: the server's imports plus one export per implemented hook.
fn world_source(hooks: &[&Hook]) -> String {
    let mut world = format!(
        "package chathooks-guest:plugin;\nworld plugin {{\n    include {PACKAGE}/imports@{VERSION};\n"
    );
    for hook in hooks {
        let interface = hook.name.replace('_', "-");
        world.push_str(&format!("    export {PACKAGE}/{interface}@{VERSION};\n"));
    }
    world.push('}');
    world
}

/// `impl exports::chathooks::plugin::<hook>::Guest for __ChathooksPlugin`, delegating to the `Plugin` impl.
fn guest_impl(hook: &Hook) -> TokenStream2 {
    let module = format_ident!("{}", hook.name);
    let function = format_ident!("{}", hook.name);
    let names: Vec<_> = hook
        .params
        .iter()
        .map(|(name, _)| format_ident!("{}", name))
        .collect();
    let types = hook
        .params
        .iter()
        .map(|(_, ty)| match ty.strip_prefix('*') {
            _ if *ty == "String" => quote!(::std::string::String),
            Some(inner) => {
                let inner = format_ident!("{}", inner);
                quote!(::std::vec::Vec<::chathooks_sdk::types::#inner>)
            }
            None => {
                let ty = format_ident!("{}", ty);
                quote!(::chathooks_sdk::types::#ty)
            }
        });
    let output = match hook.kind {
        Kind::Before => quote!(::chathooks_sdk::types::Decision),
        Kind::After | Kind::Timer => quote!(::std::result::Result<(), ::std::string::String>),
    };
    quote! {
        impl __chathooks_plugin::exports::chathooks::plugin::#module::Guest for __ChathooksPlugin {
            fn #function(#(#names: #types),*) -> #output {
                <__ChathooksPlugin as ::chathooks_sdk::Plugin>::#function(#(#names),*)
            }
        }
    }
}

/// The absolute path of the repository's `wit/` directory, which holds `chathooks:plugin`.
///
/// `wit_bindgen::generate!` resolves relative paths against the crate being compiled (the plugin), so the
/// macro hands it an absolute one, found from this crate's own location (`sdk/macros` → `../../wit`).
fn wit_dir() -> syn::Result<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../wit");
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
