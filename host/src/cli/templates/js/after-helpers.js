
// What the after-hooks do: count the events of `hook` in KV, once per event. Events are delivered at least
// once, so a retried event (same `eventId`, higher `attempt`) finds its claim taken and is skipped.
// Throwing a string makes the server retry the event later. A failed KV call throws an Error whose
// `payload` is the WIT `kv.error` (`{ tag: "not-a-number" }`, say).
function count(hook, context) {
  const seen = `seen:${context.eventId}`;
  if (!kv.compareAndSwap(seen, undefined, new Uint8Array([0x31]))) {
    return;
  }
  let total;
  try {
    total = kv.increment(`events:${hook}`, 1);
  } catch (error) {
    // Not counted: release the claim so that the retry counts the event.
    kv.delete(seen);
    throw `kv failed: ${JSON.stringify(error.payload)}`;
  }
  log("info", `${hook}: event ${context.eventId}, ${total} so far`);
}
