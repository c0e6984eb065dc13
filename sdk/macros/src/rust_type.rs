//! Hook signatures as Rust tokens, shared by `#[plugin]` and `hook_methods!`.

use proc_macro2::TokenStream as TokenStream2;
use quote::{format_ident, quote};

use crate::contract::{Hook, Kind, RustType};

impl RustType {
    /// The type as a path the plugin crate can name: records under `::chathooks_sdk::types`.
    pub fn tokens(&self) -> TokenStream2 {
        match self {
            RustType::Primitive("String") => quote!(::std::string::String),
            RustType::Primitive(primitive) => {
                let primitive = format_ident!("{}", primitive);
                quote!(#primitive)
            }
            RustType::Named(name) => {
                let name = format_ident!("{}", name);
                quote!(::chathooks_sdk::types::#name)
            }
            RustType::List(inner) => {
                let inner = inner.tokens();
                quote!(::std::vec::Vec<#inner>)
            }
            RustType::Option(inner) => {
                let inner = inner.tokens();
                quote!(::std::option::Option<#inner>)
            }
        }
    }
}

impl Hook {
    /// The function's name as an identifier.
    pub fn ident(&self) -> proc_macro2::Ident {
        format_ident!("{}", self.name)
    }

    /// The parameter names, in order.
    pub fn param_idents(&self) -> Vec<proc_macro2::Ident> {
        self.params
            .iter()
            .map(|param| format_ident!("{}", param.name))
            .collect()
    }

    /// `fn name(a: A, b: B) -> Output`, without a body.
    pub fn signature(&self) -> TokenStream2 {
        let function = self.ident();
        let names = self.param_idents();
        let types = self.params.iter().map(|param| param.ty.tokens());
        let output = self.output();
        quote!(fn #function(#(#names: #types),*) -> #output)
    }

    /// `Decision` for a before-hook, `Result<(), String>` for the others.
    pub fn output(&self) -> TokenStream2 {
        match self.kind {
            Kind::Before => quote!(::chathooks_sdk::types::Decision),
            Kind::After | Kind::Timer => {
                quote!(::std::result::Result<(), ::std::string::String>)
            }
        }
    }
}
