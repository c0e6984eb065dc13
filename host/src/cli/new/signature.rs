//! A hook's function as each language's bindings declare it: the name, the parameter list (types mapped
//! from the WIT the way wit-bindgen, componentize-py and jco map them) and, for C, the statements that
//! free the arguments.

use super::Lang;
use super::render::{Param, WIT_FILES, camel, lower_camel, snake};
use crate::plugins::Hook;

/// What a hook snippet is filled with.
pub(super) struct Signature {
    /// The function (or method) name.
    pub(super) function: String,
    /// The parameter list, joined as the language's snippet expects.
    pub(super) params: String,
    /// C only: the statements that free the arguments (empty for the other languages).
    pub(super) frees: String,
}

/// The signature of `hook` in `lang`. The parameters a snippet uses are `draft` (before-hooks) and
/// `context` (after-hooks); where the language warns about unused ones, the others are marked unused.
pub(super) fn signature(lang: Lang, hook: Hook, params: &[Param]) -> Signature {
    let used = |p: &Param| matches!(p.name, "draft" | "context");
    let iface = snake(hook.name());
    let (function, list, frees) = match lang {
        Lang::Rust => {
            let list: Vec<String> = params
                .iter()
                .map(|p| {
                    let unused = if used(p) { "" } else { "_" };
                    format!("{unused}{}: {}", snake(p.name), rust_type(p.ty))
                })
                .collect();
            (iface, list.join(",\n        "), String::new())
        }
        Lang::Python => {
            let list: Vec<String> = params.iter().map(|p| snake(p.name)).collect();
            (iface, list.join(", "), String::new())
        }
        Lang::Js => {
            let list: Vec<String> = params
                .iter()
                .map(|p| format!("{}{}", if used(p) { "" } else { "_" }, lower_camel(p.name)))
                .collect();
            (lower_camel(hook.name()), list.join(", "), String::new())
        }
        Lang::C => {
            let c: Vec<CParam> = params.iter().map(|p| c_param(&iface, p)).collect();
            let list: Vec<&str> = c.iter().map(|p| p.declaration.as_str()).collect();
            let frees: String = c.iter().filter_map(|p| p.free.as_deref()).collect();
            (
                format!("exports_chathooks_plugin_{iface}_{iface}"),
                list.join(",\n    "),
                frees,
            )
        }
    };
    Signature {
        function,
        params: list,
        frees,
    }
}

/// `ty` (a WIT type) as the Rust SDK names it: `list<user>` → `Vec<User>`, `option<string>` →
/// `Option<String>`, `held-message` → `HeldMessage`.
fn rust_type(ty: &str) -> String {
    if let Some(item) = generic(ty, "list") {
        return format!("Vec<{}>", rust_type(item));
    }
    if let Some(item) = generic(ty, "option") {
        return format!("Option<{}>", rust_type(item));
    }
    match ty {
        "string" => "String".to_owned(),
        "bool" | "u8" | "u16" | "u32" | "u64" => ty.to_owned(),
        "s8" | "s16" | "s32" | "s64" => format!("i{}", &ty[1..]),
        _ => camel(ty),
    }
}

/// `inner` of `name<inner>`.
fn generic<'a>(ty: &'a str, name: &str) -> Option<&'a str> {
    ty.strip_prefix(name)?.strip_prefix('<')?.strip_suffix('>')
}

/// One C parameter: its declaration and, if it owns memory, the statement that frees it.
struct CParam {
    declaration: String,
    free: Option<String>,
}

/// A parameter as `wit-bindgen c` declares it in an exported function: records, variants and lists by
/// pointer (freed by the callee); an `option<T>` as a pointer to `T` that is `NULL` for `none`; an enum
/// by value (nothing to free: it is only marked used); `string` as `plugin_string_t *`. The event context
/// owns nothing.
fn c_param(iface: &str, p: &Param) -> CParam {
    let name = snake(p.name);
    let ty = |wit: &str| format!("exports_chathooks_plugin_{iface}_{}", c_type(wit));
    let (optional, inner) = match generic(p.ty, "option") {
        Some(inner) => (true, inner),
        None => (false, p.ty),
    };
    let name = if optional {
        format!("maybe_{name}")
    } else {
        name
    };
    if is_enum(inner) {
        // Nothing to free; the cast keeps `-Wextra -Werror` from refusing an unused parameter.
        return CParam {
            declaration: format!("{}_t {name}", ty(inner)),
            free: Some(format!("  (void){name};\n")),
        };
    }
    let (c_ty, free_fn) = if inner == "string" {
        (
            "plugin_string_t".to_owned(),
            "plugin_string_free".to_owned(),
        )
    } else {
        (format!("{}_t", ty(inner)), format!("{}_free", ty(inner)))
    };
    let free = match (optional, inner) {
        (_, "event-context") => None,
        (true, _) => Some(format!("  if ({name}) {free_fn}({name});\n")),
        (false, _) => Some(format!("  {free_fn}({name});\n")),
    };
    CParam {
        declaration: format!("{c_ty} *{name}"),
        free,
    }
}

/// The C name part of a WIT type: `list<typing-event>` → `list_typing_event`.
fn c_type(ty: &str) -> String {
    match generic(ty, "list") {
        Some(item) => format!("list_{}", snake(item)),
        None => snake(ty),
    }
}

/// Whether the WIT package defines `ty` as an `enum` (passed by value in C, with nothing to free).
fn is_enum(ty: &str) -> bool {
    let declaration = format!("enum {ty} {{");
    WIT_FILES
        .iter()
        .flat_map(|(_, text)| text.lines())
        .any(|line| line.trim() == declaration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_types_follow_the_sdk() {
        assert_eq!(rust_type("list<user>"), "Vec<User>");
        assert_eq!(rust_type("option<user>"), "Option<User>");
        assert_eq!(rust_type("option<string>"), "Option<String>");
        assert_eq!(rust_type("held-message"), "HeldMessage");
        assert_eq!(rust_type("role"), "Role");
        assert_eq!(rust_type("s64"), "i64");
    }

    #[test]
    fn c_parameters_follow_wit_bindgen() {
        let p = |name, ty| Param { name, ty };
        let role = c_param("after_participant_role_changed", &p("old-role", "role"));
        assert_eq!(
            role.declaration,
            "exports_chathooks_plugin_after_participant_role_changed_role_t old_role"
        );
        assert_eq!(role.free.as_deref(), Some("  (void)old_role;\n"));
        let owner = c_param("after_owner_transferred", &p("old-owner", "option<user>"));
        assert_eq!(
            owner.declaration,
            "exports_chathooks_plugin_after_owner_transferred_user_t *maybe_old_owner"
        );
        assert_eq!(
            owner.free.as_deref(),
            Some(
                "  if (maybe_old_owner) exports_chathooks_plugin_after_owner_transferred_user_free(maybe_old_owner);\n"
            )
        );
        let reason = c_param("after_message_rejected", &p("reason", "option<string>"));
        assert_eq!(reason.declaration, "plugin_string_t *maybe_reason");
        let users = c_param("after_user_mentioned", &p("mentioned-users", "list<user>"));
        assert_eq!(
            users.free.as_deref(),
            Some(
                "  exports_chathooks_plugin_after_user_mentioned_list_user_free(mentioned_users);\n"
            )
        );
        assert!(c_param("x", &p("context", "event-context")).free.is_none());
    }
}
