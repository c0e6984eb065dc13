"""message-stats: counts sent messages in the plugin's KV store (the twin of
plugins-examples/rust/message-stats).

- `conversation:<conversation-id>`: messages sent to that conversation;
- `user:<user-id>`: messages sent by that user (plugin bots included).

After-hooks are delivered *at least once*: an event whose first delivery failed or timed out comes again
with the same `event_id` and a higher `attempt`. To count each message once, the plugin claims
`seen:<event-id>` with an atomic compare-and-swap before counting; a delivery that finds the claim taken
does nothing. When counting fails the claim is released and the hook raises `Err`, so the retry counts.
Once counted, the claim is rewritten with a time to live so old claims leave the store.

Build: `scripts/build-plugins.sh python` at the repository root gives `plugins/python_message_stats.wasm`
(../README.md has the commands). Test it with the Rust twin's case file:
`chathooks test plugins/python_message_stats.wasm plugins-examples/rust/message-stats/cases.json`.
"""

from typing import Tuple

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import kv, log
from wit_world.imports.types import Conversation, EventContext, Message

# How long a `seen:<event-id>` claim is kept: far longer than the server keeps retrying an event.
SEEN_TTL_MS = 7 * 24 * 3600 * 1000

# The value of a claim. Stored as `1`, which is also valid JSON.
CLAIMED = b"1"


def describe(error: kv.Error) -> str:
    """A one-line explanation of a KV error, for logs and for `Err` returns from hooks."""
    if isinstance(error, kv.Error_InvalidKey):
        return f"kv: invalid key: {error.value}"
    if isinstance(error, kv.Error_ValueTooLarge):
        return f"kv: value too large ({error.value} bytes)"
    if isinstance(error, kv.Error_QuotaExceeded):
        return "kv: quota of keys or bytes exceeded"
    if isinstance(error, kv.Error_NotANumber):
        return "kv: increment of a value that is not a decimal integer"
    if isinstance(error, kv.Error_Storage):
        return f"kv: storage failed: {error.value}"
    return f"kv: {error}"


def count(message: Message) -> Tuple[int, int]:
    """Adds one message to the counters of its conversation and its sender; returns the new totals.
    Raises `Err(kv.Error)` when the store refuses."""
    in_conversation = kv.increment(f"conversation:{message.conversation_id}", 1)
    by_sender = kv.increment(f"user:{message.sender.id}", 1)
    return in_conversation, by_sender


class AfterMessageSent(exports.AfterMessageSent):
    def after_message_sent(
        self,
        context: EventContext,
        message: Message,
        conversation: Conversation,
    ) -> None:
        seen = f"seen:{context.event_id}"
        try:
            claimed = kv.compare_and_swap(seen, None, CLAIMED)
        except Err as e:
            raise Err(describe(e.value))
        if not claimed:
            log.log(
                log.Level.INFO,
                f"event {context.event_id} (attempt {context.attempt}) already counted, skipping",
            )
            return
        try:
            in_conversation, by_sender = count(message)
        except Err as e:
            # Not counted: release the claim so that the retry counts the message.
            try:
                kv.delete(seen)
            except Err as release:
                log.log(log.Level.WARN, f"cannot release {seen}: {describe(release.value)}")
            raise Err(describe(e.value))
        log.log(
            log.Level.INFO,
            f"counted message {message.id}: conversation {message.conversation_id} has {in_conversation}, "
            f"user {message.sender.id} has {by_sender}",
        )
        # Counted: keep the claim, but only for a while. Failing here is no reason to retry (the claim
        # stays, without a time to live), so it is only logged.
        try:
            kv.set(seen, CLAIMED, SEEN_TTL_MS)
        except Err as e:
            log.log(log.Level.WARN, f"cannot set the TTL of {seen}: {describe(e.value)}")
