

def count(hook: str, context: EventContext) -> None:
    """What the after-hooks do: count the events of `hook` in KV, once per event. Events are delivered at
    least once, so a retried event (same `event_id`, higher `attempt`) finds its claim taken and is
    skipped. Raising `Err(reason)` (or any exception) makes the server retry the event later."""
    seen = f"seen:{context.event_id}"
    if not kv.compare_and_swap(seen, None, b"1"):
        return
    try:
        total = kv.increment(f"events:{hook}", 1)
    except Err as e:
        # Not counted: release the claim so that the retry counts the event.
        kv.delete(seen)
        raise Err(f"kv failed: {e.value}")
    log.log(log.Level.INFO, f"{hook}: event {context.event_id}, {total} so far")
