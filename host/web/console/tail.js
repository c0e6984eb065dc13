// The live tail: every chat event and plugin log line from `GET /v1/admin/tail` (NDJSON read with fetch,
// since an EventSource cannot send the admin key), reconnecting with backoff, filterable, pausable, and
// capped to the newest lines.

import { ndjson, el, formatTime } from '/ui/common/api.js';

/** Lines kept on screen: enough to scroll back a little, few enough to stay fast. */
const MAX_LINES = 500;

const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 15000;

export class TailPanel {
  /** `onHello(node)` gets the node id the server names in its first line (null: not a cluster). */
  constructor(session, dom, onHello) {
    this.session = session;
    this.onHello = onHello;
    this.dom = dom;
    this.paused = false;
    this.abort = null;
    this.retryMs = FIRST_RETRY_MS;
    this.stopped = true;
    dom['tail-pause'].addEventListener('click', () => {
      this.paused = !this.paused;
      dom['tail-pause'].setAttribute('aria-pressed', String(this.paused));
      dom['tail-pause'].textContent = this.paused ? 'Resume' : 'Pause';
    });
    dom['tail-clear'].addEventListener('click', () => dom.tail.replaceChildren());
    dom['tail-filter'].addEventListener('input', () => this.applyFilter());
  }

  start() {
    this.stopped = false;
    this.run();
  }

  stop() {
    this.stopped = true;
    if (this.abort) this.abort.abort();
  }

  /** Reads the stream until it ends, then tries again after a growing pause. */
  async run() {
    while (!this.stopped) {
      this.abort = new AbortController();
      this.state('connecting');
      try {
        for await (const line of ndjson('/v1/admin/tail', { token: this.session.key, signal: this.abort.signal })) {
          this.retryMs = FIRST_RETRY_MS;
          this.receive(line);
        }
      } catch (err) {
        if (err.status === 401) {
          this.state('refused');
          return;
        }
      }
      if (this.stopped) return;
      this.state('offline');
      await new Promise((resolve) => setTimeout(resolve, this.retryMs));
      this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
    }
  }

  state(value) {
    const badge = this.dom['tail-state'];
    badge.dataset.state = value;
    badge.className = `badge ${value === 'live' ? 'badge-ok' : value === 'connecting' ? 'badge-warn' : 'badge-err'}`;
    badge.textContent = value;
  }

  receive(line) {
    if (line.type === 'hello') {
      this.state('live');
      this.dom.node.textContent = line.node ? `node ${line.node}` : 'single server';
      this.onHello(line.node);
      return;
    }
    if (line.type === 'ping') return;
    if (this.paused) return;
    let item;
    if (line.type === 'event') {
      const e = line.event;
      item = el('li', { class: 'tail-line tail-event', dataset: { kind: e.kind } },
        el('time', { text: formatTime(e.created_at) }),
        el('span', { class: 'badge', text: e.kind }),
        el('span', { class: 'tail-text', text: summary(e) }));
    } else if (line.type === 'log') {
      item = el('li', { class: `tail-line tail-log tail-${line.level}`, dataset: { plugin: line.plugin } },
        el('time', { text: formatTime(line.at) }),
        el('span', { class: `badge ${line.level === 'error' ? 'badge-err' : line.level === 'warn' ? 'badge-warn' : ''}`, text: `${line.plugin} ${line.level}` }),
        el('span', { class: 'tail-text', text: line.message }));
    } else if (line.type === 'lagged') {
      item = el('li', { class: 'tail-line muted', text: `… ${line.missed} lines skipped (the tail fell behind)` });
    } else {
      return;
    }
    item.hidden = !this.matches(item);
    const list = this.dom.tail;
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.append(item);
    while (list.children.length > MAX_LINES) list.firstElementChild.remove();
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  matches(item) {
    const filter = this.dom['tail-filter'].value.trim().toLowerCase();
    return !filter || item.textContent.toLowerCase().includes(filter);
  }

  applyFilter() {
    for (const item of this.dom.tail.children) item.hidden = !this.matches(item);
  }
}

/** One line of text for an event: who did what where. */
function summary(event) {
  const p = event.payload || {};
  const where = event.conversation_id ? ` in ${event.conversation_id}` : '';
  if (p.message) {
    const text = p.message.deleted ? '(deleted)' : JSON.stringify(p.message.body);
    return `${p.message.sender.id}${where}: ${text}`;
  }
  if (p.reaction) return `${p.reaction.user.id} ${p.reaction.emoji}${where}`;
  if (p.typing) return `${p.typing.user.id}${where}`;
  if (p.users) return `${p.users.map((u) => u.id).join(', ')}${where}`;
  return `#${event.id}${where}`;
}
