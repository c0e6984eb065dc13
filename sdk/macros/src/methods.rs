//! `hook_methods!()`: the `Plugin` trait's functions, one per hook of the WIT, each with a default body.

use proc_macro2::TokenStream as TokenStream2;
use quote::quote;

use crate::contract::{Contract, Hook, Kind};

/// One trait function per hook, in the WIT's order.
pub fn expand(contract: &Contract) -> TokenStream2 {
    let methods = contract.hooks.iter().map(|hook| method(contract, hook));
    quote!(#(#methods)*)
}

/// A trait function with the WIT function's docs and a body that does nothing: `Allow` for a
/// before-hook, `Ok(())` for the others.
fn method(contract: &Contract, hook: &Hook) -> TokenStream2 {
    let signature = hook.signature();
    let names = hook.param_idents();
    let body = match hook.kind {
        Kind::Before => quote!(::chathooks_sdk::types::Decision::Allow),
        Kind::After | Kind::Timer => quote!(::std::result::Result::Ok(())),
    };
    let docs = docs(contract, hook)
        .into_iter()
        .map(|line| quote!(#[doc = #line]));
    quote! {
        #(#docs)*
        #signature {
            let _ = (#(#names,)*);
            #body
        }
    }
}

/// The WIT function's docs, then what the default does and which export implementing it adds.
fn docs(contract: &Contract, hook: &Hook) -> Vec<String> {
    let mut lines: Vec<String> = hook.docs.iter().map(|line| format!(" {line}")).collect();
    let default = match hook.kind {
        Kind::Before => "allows the message (`Decision::Allow`)",
        Kind::After | Kind::Timer => "does nothing and returns `Ok(())`",
    };
    lines.push(String::new());
    lines.push(format!(
        " Implementing it exports `{}`; the default, never called by the server, {default}.",
        contract.qualified(&hook.wit_name)
    ));
    if let Some(version) = &hook.since {
        lines.push(format!(" Since WIT {version}."));
    }
    lines
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn one_documented_default_per_hook() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("wit");
        let contract = Contract::load(&dir).unwrap_or_else(|why| panic!("{why}"));
        let code = expand(&contract).to_string();
        assert_eq!(code.matches("fn ").count(), contract.hooks.len(), "{code}");
        assert!(
            code.contains(
                "fn after_owner_transferred (context : :: chathooks_sdk :: types :: EventContext , \
                 conversation : :: chathooks_sdk :: types :: Conversation , old_owner : :: std :: option \
                 :: Option < :: chathooks_sdk :: types :: User > , new_owner : :: chathooks_sdk :: types \
                 :: User) -> :: std :: result :: Result < () , :: std :: string :: String >"
            ),
            "{code}"
        );
        assert!(
            code.contains("# [doc = \" Decide what happens to a message about to be sent.\"]"),
            "{code}"
        );
        assert!(
            code.contains("exports `chathooks:plugin/on-timer@0.3.0`"),
            "{code}"
        );
        assert_eq!(
            code.matches(":: chathooks_sdk :: types :: Decision :: Allow")
                .count(),
            2
        );
    }
}
