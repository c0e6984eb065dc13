// The open conversation: its messages (paged, newest at the bottom), each with its sender, time, edits,
// receipts and reactions; the composer, with what a plugin rejected shown in place; typing indicators.
//
// What is shown is always what the server stored or sent: a message a before-hook rewrote appears
// rewritten, never as the local draft.

import { api, el, formatTime, ApiError, toast } from '/ui/common/api.js';

/** Messages fetched per page. */
const PAGE = 50;

/** The reactions offered on every message. */
export const EMOJIS = ['👍', '❤️', '😂', '🎉', '😮'];

/** How long "is typing" stays without news: a little more than the server's typing timeout. */
const TYPING_SHOWN_MS = 6000;

/** How often a long burst of typing tells the others again that it goes on. */
const TYPING_REPEAT_MS = 3000;

/** Quiet time after which the composer tells the others typing paused. */
const TYPING_PAUSE_MS = 4000;

export class MessagesView {
  /** `session`: `{ token, me }`; `dom`: the page's elements by id. */
  constructor(session, dom) {
    this.session = session;
    this.dom = dom;
    this.conversation = null;
    /** id → message, for the open conversation. */
    this.messages = new Map();
    /** message id → Map(emoji → Set(user id)), from reaction events. */
    this.reactions = new Map();
    /** conversation id → { delivered: Map(user id → seq), read: Map(user id → seq) }: how far each other
     * member has received and read, from receipt events (a read receipt covers every earlier message). */
    this.receipts = new Map();
    /** user id → { name, timer } of who is typing here. */
    this.typing = new Map();
    this.oldestSeq = null;
    this.typingSentAt = 0;
    this.pauseTimer = null;
    this.bindComposer();
    dom['load-older'].addEventListener('click', () => this.loadOlder());
  }

  /** Opens `conversation`: loads its newest page and marks it read. */
  async open(conversation) {
    this.conversation = conversation;
    this.messages.clear();
    this.typing.clear();
    this.dom.messages.replaceChildren();
    this.dom.typing.textContent = '';
    this.hideError();
    this.oldestSeq = null;
    const page = await api('GET', `/v1/conversations/${encodeURIComponent(conversation.id)}/messages?limit=${PAGE}`,
      { token: this.session.token });
    for (const message of page.slice().reverse()) this.upsert(message);
    this.dom['load-older'].hidden = page.length < PAGE;
    this.scrollToEnd();
    await this.markRead();
  }

  /** The next older page, kept in place on screen. */
  async loadOlder() {
    if (!this.conversation || this.oldestSeq === null) return;
    const id = encodeURIComponent(this.conversation.id);
    const page = await api('GET', `/v1/conversations/${id}/messages?limit=${PAGE}&before=${this.oldestSeq}`,
      { token: this.session.token });
    const scroll = this.dom['message-scroll'];
    const fromBottom = scroll.scrollHeight - scroll.scrollTop;
    for (const message of page) this.upsert(message);
    this.dom['load-older'].hidden = page.length < PAGE;
    scroll.scrollTop = scroll.scrollHeight - fromBottom;
  }

  /** Adds or replaces `message` in the list, in `seq` order. */
  upsert(message) {
    if (!this.conversation || message.conversation_id !== this.conversation.id) return;
    if (message.parent_id) return; // replies live in their thread, not the main list
    this.messages.set(message.id, message);
    if (this.oldestSeq === null || message.seq < this.oldestSeq) this.oldestSeq = message.seq;
    const item = this.render(message);
    const existing = this.dom.messages.querySelector(`[data-message-id="${CSS.escape(message.id)}"]`);
    if (existing) {
      existing.replaceWith(item);
      return;
    }
    const later = Array.from(this.dom.messages.children).find((li) => Number(li.dataset.seq) > message.seq);
    this.dom.messages.insertBefore(item, later || null);
  }

  /** One message as a list item. */
  render(message) {
    const mine = message.sender.id === this.session.me.id;
    const body = message.deleted
      ? el('p', { class: 'message-body deleted', text: 'This message was deleted.' })
      : el('p', { class: 'message-body', text: message.body });
    const meta = el('span', { class: 'message-meta muted' },
      el('time', { datetime: new Date(message.created_at).toISOString(), text: formatTime(message.created_at) }),
      message.edited_at && !message.deleted ? el('span', { class: 'edited', text: ' · edited' }) : null,
      mine && !message.deleted ? this.receiptMark(message) : null);
    const actions = message.deleted ? null : el('div', { class: 'message-actions' },
      ...EMOJIS.map((emoji) => el('button', {
        class: 'btn btn-small react', type: 'button', dataset: { emoji },
        'aria-label': `React with ${emoji}`, text: emoji,
        onclick: () => this.toggleReaction(message.id, emoji),
      })),
      mine ? el('button', { class: 'btn btn-small edit-button', type: 'button', text: 'Edit',
        onclick: () => this.edit(message.id) }) : null,
      mine ? el('button', { class: 'btn btn-small btn-danger delete-button', type: 'button', text: 'Delete',
        onclick: () => this.remove(message.id) }) : null);
    return el('li', {
      class: `message${mine ? ' mine' : ''}`,
      dataset: { messageId: message.id, seq: String(message.seq), mine: String(mine) },
    },
    el('div', { class: 'message-head' },
      el('strong', { class: 'message-sender', text: message.sender.name || message.sender.id }), ' ', meta),
    body,
    this.reactionList(message.id),
    actions);
  }

  /** ✓ delivered / ✓✓ read by someone else, for the caller's own message. */
  receiptMark(message) {
    const r = this.receipts.get(message.conversation_id);
    const reached = (bySeq) => Array.from(bySeq.values()).some((seq) => seq >= message.seq);
    const state = r && reached(r.read) ? 'read' : r && reached(r.delivered) ? 'delivered' : 'sent';
    const label = { sent: 'sent', delivered: 'delivered', read: 'read' }[state];
    return el('span', { class: `receipt receipt-${state}`, dataset: { state }, title: label,
      'aria-label': label, text: state === 'read' ? ' ✓✓' : state === 'delivered' ? ' ✓' : ' ·' });
  }

  /** The reaction counts under a message; each a toggle. */
  reactionList(messageId) {
    const byEmoji = this.reactions.get(messageId);
    const list = el('div', { class: 'reactions' });
    if (!byEmoji) return list;
    for (const [emoji, users] of byEmoji) {
      if (!users.size) continue;
      const mineToo = users.has(this.session.me.id);
      list.append(el('button', {
        class: `reaction${mineToo ? ' reaction-mine' : ''}`, type: 'button', dataset: { emoji },
        'aria-pressed': String(mineToo), 'aria-label': `${emoji} ${users.size}`,
        onclick: () => this.toggleReaction(messageId, emoji),
      }, `${emoji} ${users.size}`));
    }
    return list;
  }

  /** Re-renders one message (after a reaction or receipt changed). */
  refresh(messageId) {
    const message = this.messages.get(messageId);
    if (message) this.upsert(message);
  }

  /** Applies a live or replayed event that concerns messages. */
  apply(event) {
    const p = event.payload || {};
    switch (event.kind) {
      case 'message.new':
      case 'message.updated':
      case 'message.deleted': {
        const isNew = event.kind === 'message.new' && p.message && !this.messages.has(p.message.id);
        this.foldMessage(p.message);
        if (isNew && this.isOpen(p.message.conversation_id)) {
          this.clearTyping(p.message.sender.id);
          this.scrollToEnd();
          if (p.message.sender.id !== this.session.me.id && event.live) this.acknowledge(p.message);
        }
        break;
      }
      case 'reaction.new':
      case 'reaction.deleted': {
        const r = p.reaction;
        if (!r) break;
        const byEmoji = this.reactions.get(r.message_id) || new Map();
        const users = byEmoji.get(r.emoji) || new Set();
        if (event.kind === 'reaction.new') users.add(r.user.id);
        else users.delete(r.user.id);
        byEmoji.set(r.emoji, users);
        this.reactions.set(r.message_id, byEmoji);
        this.refresh(r.message_id);
        break;
      }
      case 'message.delivered':
      case 'message.read': {
        const r = p.receipt;
        if (!r || !p.message || r.user.id === this.session.me.id) break;
        const conversationId = p.message.conversation_id;
        const entry = this.receipts.get(conversationId) || { delivered: new Map(), read: new Map() };
        const raise = (bySeq) => bySeq.set(r.user.id, Math.max(bySeq.get(r.user.id) || 0, p.message.seq));
        raise(entry.delivered);
        if (event.kind === 'message.read') raise(entry.read);
        this.receipts.set(conversationId, entry);
        if (this.isOpen(conversationId)) {
          for (const message of this.messages.values()) {
            if (message.sender.id === this.session.me.id) this.refresh(message.id);
          }
        }
        break;
      }
      case 'typing.start':
      case 'typing.stop':
        this.showTyping(event.kind === 'typing.start', p.typing);
        break;
      default:
    }
  }

  /** A message from an event: shown if its conversation is open. */
  foldMessage(message) {
    if (message && this.isOpen(message.conversation_id)) this.upsert(message);
  }

  isOpen(conversationId) {
    return Boolean(this.conversation && this.conversation.id === conversationId);
  }

  /** Someone else's message arrived live: delivered, and read when the page is being looked at. */
  async acknowledge(message) {
    try {
      await api('POST', `/v1/messages/${encodeURIComponent(message.id)}/delivered`, { token: this.session.token });
      if (document.visibilityState === 'visible') await this.markRead();
    } catch {
      // a receipt is a courtesy: a failure here must not disturb the reader
    }
  }

  /** Everything in the open conversation is read. */
  async markRead() {
    if (!this.conversation || document.visibilityState !== 'visible') return;
    try {
      await api('POST', `/v1/conversations/${encodeURIComponent(this.conversation.id)}/read`,
        { token: this.session.token, body: {} });
    } catch {
      // as above
    }
  }

  async toggleReaction(messageId, emoji) {
    const users = (this.reactions.get(messageId) || new Map()).get(emoji);
    const id = encodeURIComponent(messageId);
    try {
      if (users && users.has(this.session.me.id)) {
        await api('DELETE', `/v1/messages/${id}/reactions/${encodeURIComponent(emoji)}`, { token: this.session.token });
      } else {
        await api('POST', `/v1/messages/${id}/reactions`, { token: this.session.token, body: { emoji } });
      }
    } catch (err) {
      toast(err.message, 'error');
    }
  }

  /** Edits one of the caller's messages in place: the text becomes a box; Enter saves, Escape cancels. */
  edit(messageId) {
    const message = this.messages.get(messageId);
    const item = this.dom.messages.querySelector(`[data-message-id="${CSS.escape(messageId)}"]`);
    if (!message || !item) return;
    const box = el('textarea', { class: 'edit-box', rows: '2', 'aria-label': 'Edit the message' });
    box.value = message.body;
    const error = el('p', { class: 'error-text', role: 'alert' });
    const save = async () => {
      try {
        this.upsert(await api('PATCH', `/v1/messages/${encodeURIComponent(messageId)}`,
          { token: this.session.token, body: { body: box.value } }));
      } catch (err) {
        error.textContent = describe(err);
      }
    };
    box.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey) {
        e.preventDefault();
        save();
      } else if (e.key === 'Escape') {
        this.upsert(message);
      }
    });
    item.querySelector('.message-body').replaceWith(el('div', { class: 'editing' }, box, error,
      el('div', { class: 'row' },
        el('button', { class: 'btn btn-small btn-primary save-edit', type: 'button', text: 'Save', onclick: save }),
        el('button', { class: 'btn btn-small', type: 'button', text: 'Cancel', onclick: () => this.upsert(message) }))));
    box.focus();
  }

  async remove(messageId) {
    try {
      this.upsert(await api('DELETE', `/v1/messages/${encodeURIComponent(messageId)}`, { token: this.session.token }));
    } catch (err) {
      toast(describe(err), 'error');
    }
  }

  bindComposer() {
    const input = this.dom['composer-input'];
    this.dom.composer.addEventListener('submit', (e) => {
      e.preventDefault();
      this.send();
    });
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.send();
      }
    });
    input.addEventListener('input', () => this.typed());
  }

  /** Sends the draft. A rejection keeps the draft and says why, naming the plugin. */
  async send() {
    const input = this.dom['composer-input'];
    const body = input.value;
    if (!this.conversation || !body.trim()) return;
    const clientId = `web-${Date.now()}-${Math.random().toString(36).slice(2, 10)}`;
    this.dom.send.disabled = true;
    try {
      const answer = await api('POST', `/v1/conversations/${encodeURIComponent(this.conversation.id)}/messages`,
        { token: this.session.token, body: { body, client_id: clientId } });
      input.value = '';
      this.hideError();
      if (answer && answer.state === 'pending') {
        this.showError(`Held for review by ${answer.held_by}: ${answer.reason}. A moderator will publish or refuse it.`, 'held');
      } else if (answer) {
        this.upsert(answer);
        this.scrollToEnd();
      }
      this.sendTyping('finished');
    } catch (err) {
      this.showError(describe(err), err.code || 'error');
    } finally {
      this.dom.send.disabled = false;
      input.focus();
    }
  }

  showError(text, code) {
    const box = this.dom['composer-error'];
    box.textContent = text;
    box.dataset.code = code;
    box.hidden = false;
  }

  hideError() {
    this.dom['composer-error'].hidden = true;
    this.dom['composer-error'].textContent = '';
  }

  /** The composer changed: tell the others, at most every few seconds; say "paused" after a quiet spell. */
  typed() {
    const now = Date.now();
    if (now - this.typingSentAt > TYPING_REPEAT_MS) this.sendTyping('begin');
    clearTimeout(this.pauseTimer);
    this.pauseTimer = setTimeout(() => this.sendTyping('pause'), TYPING_PAUSE_MS);
  }

  async sendTyping(state) {
    if (!this.conversation) return;
    this.typingSentAt = state === 'begin' ? Date.now() : 0;
    if (state !== 'begin') clearTimeout(this.pauseTimer);
    try {
      await api('POST', `/v1/conversations/${encodeURIComponent(this.conversation.id)}/typing`,
        { token: this.session.token, body: { state } });
    } catch {
      // typing is live only and best effort
    }
  }

  showTyping(active, typing) {
    if (!typing || !this.isOpen(typing.conversation_id) || typing.user.id === this.session.me.id) return;
    this.clearTyping(typing.user.id);
    if (active) {
      const timer = setTimeout(() => this.clearTyping(typing.user.id), TYPING_SHOWN_MS);
      this.typing.set(typing.user.id, { name: typing.user.name || typing.user.id, timer });
    }
    this.renderTyping();
  }

  clearTyping(userId) {
    const entry = this.typing.get(userId);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.typing.delete(userId);
    this.renderTyping();
  }

  renderTyping() {
    const names = Array.from(this.typing.values(), (t) => t.name);
    this.dom.typing.textContent = names.length === 0 ? ''
      : names.length === 1 ? `${names[0]} is typing…` : `${names.join(', ')} are typing…`;
  }

  scrollToEnd() {
    const scroll = this.dom['message-scroll'];
    scroll.scrollTop = scroll.scrollHeight;
  }
}

/** An error as a person reads it: a plugin's rejection names the plugin and gives its reason. */
export function describe(err) {
  if (err instanceof ApiError && err.code === 'rejected_by_plugin') {
    if (!err.plugin) return `Rejected by a plugin: ${err.message}`;
    // The server's message is `<plugin>: <reason>`.
    const prefix = `${err.plugin}: `;
    const reason = err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
    return `Rejected by plugin ${err.plugin}: ${reason}`;
  }
  return err.message;
}
