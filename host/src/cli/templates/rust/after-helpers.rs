
/// What the after-hooks do: count the events of `hook` in KV, once per event. Events are delivered at
/// least once, so a retried event (same `event_id`, higher `attempt`) finds its claim taken and is skipped.
fn count(hook: &str, ctx: &EventContext) -> Result<(), String> {
    let seen = format!("seen:{}", ctx.event_id);
    if !kv::compare_and_swap(&seen, None, Some(b"1".as_slice()))? {
        return Ok(());
    }
    match kv::increment(&format!("events:{hook}"), 1) {
        Ok(total) => {
            chathooks_sdk::info!("{hook}: event {}, {total} so far", ctx.event_id);
            Ok(())
        }
        Err(error) => {
            // Not counted: release the claim, and return an error so that the server retries the event.
            let _ = kv::delete(&seen);
            Err(kv::describe(&error))
        }
    }
}
