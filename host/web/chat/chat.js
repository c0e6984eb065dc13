// The chat client: sign-in with a user token, the conversation list with unread counts, the open
// conversation (messages.js), its members, and the live connection (live.js) that keeps all of it
// current.
//
// A token in the URL fragment (`/chat#token=...`, the console's "Open chat as" link) signs in and is then
// removed from the address bar; the token is kept for this tab only (sessionStorage).

import { api, el, formatTime, storedCredential, storeCredential, toast } from '/ui/common/api.js';
import { Live } from '/ui/chat/live.js';
import { MessagesView, describe } from '/ui/chat/messages.js';

const TOKEN_KEY = 'chathooks.chat.token';

/** Every element with an id, by id. */
const dom = Object.fromEntries(Array.from(document.querySelectorAll('[id]'), (node) => [node.id, node]));

/** The signed-in state; null when signed out. */
let session = null;

/** id → the caller's view of a conversation: `{ conversation, unread_count, last_message }`. */
const conversations = new Map();

async function start() {
  const fromLink = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromLink) {
    history.replaceState(null, '', location.pathname + location.search);
    storeCredential(TOKEN_KEY, fromLink);
  }
  const token = storedCredential(TOKEN_KEY);
  if (token && (await signIn(token))) return;
  showSignIn();
}

function showSignIn(message = '') {
  dom.app.hidden = true;
  dom.signin.hidden = false;
  dom['signin-error'].textContent = message;
  dom.token.focus();
}

/** Checks `token` with `GET /v1/me`, then opens the app; false (with the reason shown) if refused. */
async function signIn(token) {
  let me;
  try {
    me = await api('GET', '/v1/me', { token });
  } catch (err) {
    storeCredential(TOKEN_KEY, null);
    showSignIn(err.status === 401 ? `That token was refused: ${err.message}` : err.message);
    return false;
  }
  storeCredential(TOKEN_KEY, token);
  const user = me.user || me;
  session = { token, me: user, since: Date.now() };
  dom.signin.hidden = true;
  dom.app.hidden = false;
  dom.me.textContent = user.name ? `${user.name} (${user.id})` : user.id;
  session.view = new MessagesView(session, dom);
  await loadConversations();
  // The whole log this user may see is replayed first (reactions and receipts of older messages come
  // from it), then events arrive live.
  session.live = new Live({
    token,
    since: 0,
    onEvent: applyEvent,
    onState: showConnection,
    onReset: () => {
      loadConversations();
      if (session.view.conversation) openConversation(session.view.conversation.id);
    },
  });
  session.live.connect();
  window.chathooksChat = session;
  return true;
}

function signOut() {
  if (session && session.live) session.live.stop();
  session = null;
  storeCredential(TOKEN_KEY, null);
  conversations.clear();
  dom.conversations.replaceChildren();
  showSignIn();
}

function showConnection(state) {
  const badge = dom.connection;
  badge.dataset.state = state;
  badge.className = `badge ${state === 'online' ? 'badge-ok' : state === 'offline' ? 'badge-err' : 'badge-warn'}`;
  badge.textContent = { online: 'live', connecting: 'connecting…', offline: 'offline, retrying…' }[state];
}

async function loadConversations() {
  const list = await api('GET', '/v1/conversations', { token: session.token });
  conversations.clear();
  // Each item is the conversation with the caller's `unread_count` and `last_message` beside its fields.
  for (const item of list) {
    conversations.set(item.id, { conversation: item, unread_count: item.unread_count, last_message: item.last_message });
  }
  renderConversations();
}

/** Newest activity first. */
function renderConversations() {
  const sorted = Array.from(conversations.values()).sort((a, b) => activity(b) - activity(a));
  const open = session.view.conversation && session.view.conversation.id;
  dom.conversations.replaceChildren(...sorted.map((entry) => {
    const c = entry.conversation;
    const last = entry.last_message;
    return el('li', {},
      el('button', {
        class: `conversation-item${c.id === open ? ' active' : ''}`, type: 'button',
        dataset: { conversationId: c.id }, 'aria-current': c.id === open ? 'true' : null,
        onclick: () => openConversation(c.id),
      },
      el('span', { class: 'conversation-name', text: title(c) }),
      entry.unread_count > 0
        ? el('span', { class: 'badge badge-warn unread', 'aria-label': `${entry.unread_count} unread`, text: String(entry.unread_count) })
        : null,
      el('span', { class: 'conversation-last muted', text: last ? preview(last) : 'No messages yet' })));
  }));
  if (!sorted.length) dom.conversations.append(el('li', { class: 'muted empty-list', text: 'No conversations yet.' }));
}

function activity(entry) {
  return entry.last_message ? entry.last_message.created_at : entry.conversation.updated_at;
}

function title(conversation) {
  if (conversation.title) return conversation.title;
  const others = conversation.participant_ids.filter((id) => id !== session.me.id);
  return others.length ? others.join(', ') : 'Just you';
}

function preview(message) {
  const who = message.sender.id === session.me.id ? 'You' : message.sender.name || message.sender.id;
  const text = message.deleted ? 'deleted a message' : message.body;
  return `${who}: ${text.length > 60 ? `${text.slice(0, 60)}…` : text} · ${formatTime(message.created_at)}`;
}

async function openConversation(id) {
  let conversation;
  try {
    conversation = await api('GET', `/v1/conversations/${encodeURIComponent(id)}`, { token: session.token });
  } catch (err) {
    toast(describe(err), 'error');
    return;
  }
  dom.empty.hidden = true;
  dom['conversation-view'].hidden = false;
  dom.app.classList.add('showing-conversation');
  dom['conversation-title'].textContent = title(conversation);
  renderMembers(conversation);
  await session.view.open(conversation);
  const entry = conversations.get(id);
  if (entry) entry.unread_count = 0;
  renderConversations();
  dom['composer-input'].focus();
}

function renderMembers(conversation) {
  const admin = conversation.admin_ids.includes(session.me.id);
  dom['member-list'].replaceChildren(...conversation.participant_ids.map((id) => el('li', { dataset: { userId: id } },
    el('span', { text: id === session.me.id ? `${id} (you)` : id }),
    conversation.admin_ids.includes(id) ? el('span', { class: 'badge', text: 'admin' }) : null,
    admin && id !== session.me.id
      ? el('button', { class: 'btn btn-small btn-danger remove-member', type: 'button', text: 'Remove',
        'aria-label': `Remove ${id}`, onclick: () => removeMember(conversation.id, id) })
      : null)));
  if (conversation.participant_ids_omitted) {
    dom['member-list'].append(el('li', { class: 'muted', text: `${conversation.participant_count} members` }));
  }
}

async function addMember(event) {
  event.preventDefault();
  const conversation = session.view.conversation;
  const input = dom['add-member-id'];
  dom['members-error'].textContent = '';
  try {
    await api('POST', `/v1/conversations/${encodeURIComponent(conversation.id)}/participants`,
      { token: session.token, body: { user_ids: [input.value.trim()] } });
    input.value = '';
    await refreshOpen();
  } catch (err) {
    dom['members-error'].textContent = describe(err);
  }
}

async function removeMember(conversationId, userId) {
  dom['members-error'].textContent = '';
  try {
    await api('DELETE', `/v1/conversations/${encodeURIComponent(conversationId)}/participants/${encodeURIComponent(userId)}`,
      { token: session.token });
    await refreshOpen();
  } catch (err) {
    dom['members-error'].textContent = describe(err);
  }
}

/** The open conversation's members and title again (after a membership change). */
async function refreshOpen() {
  const open = session.view.conversation;
  if (!open) return;
  const conversation = await api('GET', `/v1/conversations/${encodeURIComponent(open.id)}`, { token: session.token });
  session.view.conversation = conversation;
  dom['conversation-title'].textContent = title(conversation);
  renderMembers(conversation);
}

async function createConversation(event) {
  event.preventDefault();
  const members = dom['new-members'].value.split(/[\s,]+/).filter(Boolean);
  const titleText = dom['new-title'].value.trim();
  dom['new-conversation-error'].textContent = '';
  try {
    const conversation = await api('POST', '/v1/conversations', {
      token: session.token,
      body: { participant_ids: members, ...(titleText ? { title: titleText } : {}) },
    });
    dom['new-members'].value = '';
    dom['new-title'].value = '';
    dom['new-conversation'].open = false;
    await loadConversations();
    await openConversation(conversation.id);
  } catch (err) {
    dom['new-conversation-error'].textContent = describe(err);
  }
}

/** Every event: the open conversation's view, then the list. */
function applyEvent(event) {
  const p = event.payload || {};
  // Only events that happened after sign-in ask for receipts; replayed history does not.
  event.live = event.created_at >= session.since - 1000;
  session.view.apply(event);
  switch (event.kind) {
    case 'message.new':
    case 'message.updated':
    case 'message.deleted': {
      const entry = conversations.get(p.message.conversation_id);
      if (!entry) {
        if (event.live) loadConversations();
        return;
      }
      if (p.message.parent_id) return;
      const newest = !entry.last_message || entry.last_message.seq <= p.message.seq;
      if (newest) entry.last_message = p.message;
      const open = session.view.isOpen(p.message.conversation_id) && document.visibilityState === 'visible';
      if (event.kind === 'message.new' && event.live && !open && p.message.sender.id !== session.me.id) {
        entry.unread_count += 1;
      }
      renderConversations();
      break;
    }
    case 'conversation.created':
    case 'conversation.updated':
    case 'conversation.deleted':
    case 'member.added':
    case 'member.removed':
      if (event.live) {
        loadConversations();
        if (session.view.isOpen(event.conversation_id)) refreshOpen().catch(() => {});
      }
      break;
    default:
  }
}

dom['signin-form'].addEventListener('submit', async (event) => {
  event.preventDefault();
  dom['signin-button'].disabled = true;
  await signIn(dom.token.value.trim());
  dom['signin-button'].disabled = false;
});
dom.signout.addEventListener('click', signOut);
dom.back.addEventListener('click', () => dom.app.classList.remove('showing-conversation'));
dom['new-conversation-form'].addEventListener('submit', createConversation);
dom['add-member-form'].addEventListener('submit', addMember);
dom['members-toggle'].addEventListener('click', () => {
  const open = dom.members.hidden;
  dom.members.hidden = !open;
  dom['members-toggle'].setAttribute('aria-expanded', String(open));
});
document.addEventListener('visibilitychange', () => {
  if (session && session.view.conversation && document.visibilityState === 'visible') session.view.markRead();
});

start();
