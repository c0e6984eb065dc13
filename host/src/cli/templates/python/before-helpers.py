

def check(body: str) -> Decision:
    """The decision of the before-hooks for a message whose text is `body`: reject spam, allow the rest.
    (`Decision_Modify(Modification(body=text, metadata=None))` would store another text instead.)"""
    if "spam" in body.lower():
        return Decision_Reject("no spam, please")
    return Decision_Allow()
