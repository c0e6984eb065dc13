"""profanity-filter: a before-hook plugin in Python (the twin of plugins-examples/rust/profanity-filter).

It looks at every message about to be sent or edited and

- masks each blocked word with `*`s of the same length (whole words only, case-insensitive:
  "What the HECK" -> "What the ****", but "heckle" stays);
- rejects a message made only of blocked words ("damn!") with the reason
  "message contains only blocked words";
- allows everything else unchanged (the metadata is never touched).

Build: `scripts/build-plugins.sh python` at the repository root gives `plugins/python_profanity_filter.wasm`
(../README.md has the commands). Test it with the Rust twin's case file:
`chathooks test plugins/python_profanity_filter.wasm plugins-examples/rust/profanity-filter/cases.json`.
"""

from typing import List

from wit_world import exports
from wit_world.imports.types import (
    Conversation,
    Decision,
    Decision_Allow,
    Decision_Modify,
    Decision_Reject,
    Draft,
    Message,
    Modification,
)

# Blocked words, lower case. A word is a run of letters and digits, so "heck's" contains "heck".
BLOCKED_WORDS = frozenset(["darn", "heck", "damn", "crap", "frak", "bloody"])

# The reason given to the sender of a message with nothing but blocked words.
ONLY_BLOCKED = "message contains only blocked words"


def decide(body: str) -> Decision:
    """The decision for a message whose text is `body`."""
    out: List[str] = []  # the text with every blocked word masked
    words = 0  # how many words the text has
    blocked = 0  # how many of them were blocked (and masked)
    start = -1  # where the current word started, or -1 between words
    for i, c in enumerate(body + " "):  # the sentinel space ends the last word
        if i < len(body) and c.isalnum():
            if start < 0:
                start = i
            continue
        if start >= 0:
            word = body[start:i]
            words += 1
            if word.lower() in BLOCKED_WORDS:
                blocked += 1
                out.append("*" * len(word))
            else:
                out.append(word)
            start = -1
        if i < len(body):
            out.append(c)
    if blocked == 0:
        return Decision_Allow()
    if blocked == words:
        return Decision_Reject(ONLY_BLOCKED)
    return Decision_Modify(Modification(body="".join(out), metadata=None))


class BeforeMessageSent(exports.BeforeMessageSent):
    def before_message_sent(
        self, draft: Draft, conversation: Conversation
    ) -> Decision:
        return decide(draft.body)


class BeforeMessageUpdated(exports.BeforeMessageUpdated):
    def before_message_updated(
        self,
        current: Message,
        draft: Draft,
        conversation: Conversation,
    ) -> Decision:
        return decide(draft.body)
