
// The decision of the before-hooks for a message whose text is `body`: reject spam, allow the rest.
// (`{ tag: "modify", val: { body: text } }` would store another text instead.)
function check(body) {
  if (body.toLowerCase().includes("spam")) {
    return { tag: "reject", val: "no spam, please" };
  }
  return { tag: "allow" };
}
