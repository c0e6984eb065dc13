
/// The decision of the before-hooks for a message whose text is `body`: reject spam, allow the rest.
/// (`Decision::modify_body(text)` would store the message with another text instead.)
fn check(body: &str) -> Decision {
    if body.to_lowercase().contains("spam") {
        return Decision::reject("no spam, please");
    }
    Decision::allow()
}
