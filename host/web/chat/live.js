// The live connection of the chat client: `GET /v1/ws?token=` (browsers cannot send headers on a
// WebSocket). Every stored event carries an id; the connection remembers the last one it saw and, after a
// drop, reconnects with `?since=<id>` so the server first replays what was missed, then goes on live: no
// gap and no duplicate. A `resume.reset` frame means the server's log does not know our position (its
// database was restored); the page then reloads its state over the REST API.

/** The frame the server sends first when `since` is ahead of its newest event. */
const RESUME_RESET = 'resume.reset';

/** Reconnect delays: 0.5 s doubling to 15 s, so a restarting server is not hammered. */
const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 15000;

export class Live {
  /**
   * `token`: the user's token. `since`: the event id to resume after (0 replays the whole log the user may
   * see). `onEvent(event)` gets every event in order; `onState(state)` gets `connecting`, `online` or
   * `offline`; `onReset()` is called after a `resume.reset`.
   */
  constructor({ token, since = 0, onEvent, onState, onReset }) {
    this.token = token;
    this.lastId = since;
    this.onEvent = onEvent;
    this.onState = onState;
    this.onReset = onReset;
    this.retryMs = FIRST_RETRY_MS;
    this.stopped = false;
    this.socket = null;
    this.timer = null;
  }

  /** Opens the connection (again). */
  connect() {
    if (this.stopped) return;
    this.onState('connecting');
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const query = new URLSearchParams({ token: this.token });
    if (this.lastId > 0) query.set('since', String(this.lastId));
    const socket = new WebSocket(`${scheme}://${location.host}/v1/ws?${query}`);
    this.socket = socket;
    socket.addEventListener('open', () => {
      this.retryMs = FIRST_RETRY_MS;
      this.onState('online');
    });
    socket.addEventListener('message', (message) => this.receive(message.data));
    socket.addEventListener('close', () => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.stopped) return;
      this.onState('offline');
      this.timer = setTimeout(() => this.connect(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
    });
  }

  /** One frame: an event, or the reset notice. */
  receive(data) {
    let event;
    try {
      event = JSON.parse(data);
    } catch {
      return;
    }
    if (event.kind === RESUME_RESET) {
      this.lastId = event.payload && event.payload.latest_id ? event.payload.latest_id : 0;
      this.onReset();
      return;
    }
    if (event.id > 0) {
      // Replayed and live events never repeat an id; skip one already seen all the same.
      if (event.id <= this.lastId) return;
      this.lastId = event.id;
    }
    this.onEvent(event);
  }

  /** Goes offline until `resume()`: what a lost network looks like to the page. */
  pause() {
    this.stopped = true;
    clearTimeout(this.timer);
    const socket = this.socket;
    this.socket = null;
    if (socket) socket.close();
    this.onState('offline');
  }

  /** Comes back after `pause()`, resuming after the last event seen (`?since=`). */
  resume() {
    this.stopped = false;
    this.connect();
  }

  /** Closes for good (sign-out). */
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close();
  }
}
