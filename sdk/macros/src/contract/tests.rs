//! The derivation against the real WIT package (this crate's copy of the repository's `wit/`).

use std::path::Path;

use super::{Contract, Kind, RustType, camel, rust_ident};

fn contract() -> Contract {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("wit");
    match Contract::load(&dir) {
        Ok(contract) => contract,
        Err(why) => panic!("{why}"),
    }
}

fn named(name: &str) -> RustType {
    RustType::Named(name.to_owned())
}

#[test]
fn package_and_version_come_from_the_wit() {
    let contract = contract();
    assert_eq!(contract.package, "chathooks:plugin");
    assert_eq!(contract.version, "0.3.0");
    assert_eq!(
        contract.qualified("after-message-sent"),
        "chathooks:plugin/after-message-sent@0.3.0"
    );
}

#[test]
fn every_export_of_all_hooks_is_a_hook_in_order() {
    let contract = contract();
    let names: Vec<&str> = contract.hooks.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names.len(), 29, "{names:?}");
    assert_eq!(names.first(), Some(&"before_message_sent"));
    assert_eq!(names.last(), Some(&"on_timer"));
    for new in [
        "after_user_presence_changed",
        "after_user_blocked",
        "after_user_unblocked",
        "after_participant_role_changed",
        "after_member_banned",
        "after_member_unbanned",
        "after_owner_transferred",
        "after_message_held",
        "after_message_approved",
        "after_message_rejected",
        "after_message_delivered_to_all",
        "after_message_read_by_all",
    ] {
        assert!(names.contains(&new), "{new} missing from {names:?}");
    }
}

#[test]
fn kinds_follow_the_return_type() {
    let contract = contract();
    let before: Vec<&str> = contract
        .hooks
        .iter()
        .filter(|h| h.kind == Kind::Before)
        .map(|h| h.name.as_str())
        .collect();
    assert_eq!(before, ["before_message_sent", "before_message_updated"]);
    assert_eq!(contract.hook("on_timer").map(|h| h.kind), Some(Kind::Timer));
    assert_eq!(
        contract.hook("after_message_held").map(|h| h.kind),
        Some(Kind::After)
    );
}

#[test]
fn parameters_map_to_rust_types() {
    let contract = contract();
    let params = |name: &str| -> Vec<(String, RustType)> {
        contract
            .hook(name)
            .map(|h| {
                h.params
                    .iter()
                    .map(|p| (p.name.clone(), p.ty.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        params("before_message_sent"),
        [
            ("draft".to_owned(), named("Draft")),
            ("conversation".to_owned(), named("Conversation")),
        ]
    );
    assert_eq!(
        params("after_users_added_to_conversation")[2],
        (
            "new_users".to_owned(),
            RustType::List(Box::new(named("User")))
        )
    );
    assert_eq!(
        params("after_owner_transferred")[2],
        (
            "old_owner".to_owned(),
            RustType::Option(Box::new(named("User")))
        )
    );
    assert_eq!(
        params("after_message_rejected")[4],
        (
            "reason".to_owned(),
            RustType::Option(Box::new(RustType::Primitive("String")))
        )
    );
    assert_eq!(
        params("after_participant_role_changed")[3],
        ("old_role".to_owned(), named("Role"))
    );
    assert_eq!(
        params("on_timer"),
        [
            ("name".to_owned(), RustType::Primitive("String")),
            ("payload".to_owned(), RustType::Primitive("String")),
        ]
    );
}

#[test]
fn docs_come_from_the_wit_function_with_rust_parameter_names() {
    let contract = contract();
    let docs = contract
        .hook("after_users_added_to_conversation")
        .map(|h| h.docs.join("\n"))
        .unwrap_or_default();
    assert!(
        docs.starts_with("Called after one or more users joined a conversation."),
        "{docs}"
    );
    assert!(
        docs.contains("- `new_users`: The users who were just added."),
        "{docs}"
    );
    assert!(!docs.contains("`new-users`"), "{docs}");
}

#[test]
fn imports_include_types_and_every_host_interface() {
    let contract = contract();
    for interface in [
        "types",
        "log",
        "kv",
        "config",
        "chat",
        "events",
        "http",
        "push",
        "scheduler",
    ] {
        assert!(
            contract.imports.iter().any(|i| i == interface),
            "{interface} not in {:?}",
            contract.imports
        );
    }
}

#[test]
fn hooks_added_later_say_since_when() {
    let contract = contract();
    let since = |name: &str| contract.hook(name).and_then(|h| h.since.clone());
    assert_eq!(since("after_message_held").as_deref(), Some("0.3.0"));
    assert_eq!(since("after_message_sent"), None);
}

#[test]
fn names_convert_like_wit_bindgen() {
    assert_eq!(camel("held-message"), "HeldMessage");
    assert_eq!(camel("role"), "Role");
    assert_eq!(rust_ident("old-role"), "old_role");
    assert_eq!(rust_ident("type"), "type_");
}

#[test]
fn a_broken_package_is_an_error_naming_the_folder() {
    let dir = std::env::temp_dir().join(format!("chathooks-macros-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(
        dir.join("x.wit"),
        "package a:b@1.0.0;\ninterface types {}\n",
    );
    let error = Contract::load(&dir).map(|_| ()).err().unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(error.contains("no world `all-hooks`"), "{error}");
}
