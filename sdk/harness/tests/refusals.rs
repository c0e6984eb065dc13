//! Components that do not target this server's WIT are refused with a message naming what is wrong.
//! The components are written in the component text format, so each test shows exactly what it feeds in.

use chathooks_harness::Harness;
use chathooks_tests::temp_dir;

/// A component exporting one instance named `export` whose function `func` takes and returns nothing.
fn component_exporting(export: &str, func: &str) -> Vec<u8> {
    let text = format!(
        r#"(component
            (core module $m (func (export "f")))
            (core instance $i (instantiate $m))
            (func $f (canon lift (core func $i "f")))
            (instance $hooks (export "{func}" (func $f)))
            (export "{export}" (instance $hooks)))"#
    );
    wat::parse_str(text).expect("valid component text")
}

fn load_error(bytes: &[u8]) -> String {
    let dir = temp_dir();
    let path = dir.path().join("plugin.wasm");
    std::fs::write(&path, bytes).expect("write");
    match Harness::load(&path) {
        Ok(_) => panic!("the component should have been refused"),
        Err(err) => format!("{err:#}"),
    }
}

#[test]
fn an_unknown_wit_version_is_named_with_the_supported_ones() {
    let err = load_error(&component_exporting(
        "chathooks:plugin/after-message-sent@0.4.0",
        "after-message-sent",
    ));
    assert!(err.contains("is from chathooks:plugin@0.4.0"), "{err}");
    assert!(
        err.contains(
            "implements chathooks:plugin@0.3.0 and chathooks:plugin@0.2.0 and chathooks:plugin@0.1.0"
        ),
        "{err}"
    );
}

#[test]
fn hooks_of_two_wit_versions_in_one_component_are_refused() {
    let text = r#"(component
        (core module $m (func (export "f")))
        (core instance $i (instantiate $m))
        (func $f (canon lift (core func $i "f")))
        (instance $old (export "after-message-sent" (func $f)))
        (instance $new (export "after-message-read" (func $f)))
        (export "chathooks:plugin/after-message-sent@0.1.0" (instance $old))
        (export "chathooks:plugin/after-message-read@0.3.0" (instance $new)))"#;
    let err = load_error(&wat::parse_str(text).expect("valid component text"));
    assert!(
        err.contains("different versions of chathooks:plugin"),
        "{err}"
    );
}

#[test]
fn an_unknown_export_is_named() {
    let err = load_error(&component_exporting("acme:tools/helper@1.0.0", "run"));
    assert!(
        err.contains("unknown export `acme:tools/helper@1.0.0`"),
        "{err}"
    );
}

#[test]
fn an_unknown_hook_of_our_package_is_named() {
    let err = load_error(&component_exporting(
        "chathooks:plugin/after-lunch@0.3.0",
        "after-lunch",
    ));
    assert!(
        err.contains("unknown export `chathooks:plugin/after-lunch@0.3.0`"),
        "{err}"
    );
}

#[test]
fn a_hook_with_the_wrong_signature_is_refused() {
    // The right interface name, but its function takes no arguments.
    let err = load_error(&component_exporting(
        "chathooks:plugin/after-message-sent@0.3.0",
        "after-message-sent",
    ));
    assert!(
        err.contains("hook `after-message-sent` does not match the WIT"),
        "{err}"
    );
}

#[test]
fn a_component_without_hooks_is_refused() {
    let bytes = wat::parse_str("(component)").expect("valid component text");
    let err = load_error(&bytes);
    assert!(err.contains("exports no chathooks hook"), "{err}");
}
