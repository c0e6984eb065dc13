// The operator console: sign-in with the admin key (kept for this tab only), sections as tabs (plugins,
// activity, dead letters, users, and the cluster on a cluster node), each reading the admin API.

import { api, el, formatTime, storedCredential, storeCredential, toast } from '/ui/common/api.js';
import { PluginsPanel } from '/ui/console/plugins.js';
import { TailPanel } from '/ui/console/tail.js';

const KEY = 'chathooks.console.key';

/** Every element with an id, by id. */
const dom = Object.fromEntries(Array.from(document.querySelectorAll('[id]'), (node) => [node.id, node]));

let session = null;

async function start() {
  const key = storedCredential(KEY);
  if (key && (await signIn(key))) return;
  showSignIn();
}

function showSignIn(message = '') {
  dom.app.hidden = true;
  dom.signin.hidden = false;
  dom['signin-error'].textContent = message;
  dom['admin-key'].focus();
}

/** Checks `key` against the admin API, then opens the console; false (with the reason shown) if refused. */
async function signIn(key) {
  try {
    await api('GET', '/v1/admin/plugins', { token: key });
  } catch (err) {
    storeCredential(KEY, null);
    showSignIn(err.status === 401 ? `That key was refused: ${err.message}` : err.message);
    return false;
  }
  storeCredential(KEY, key);
  session = { key };
  session.plugins = new PluginsPanel(session, dom);
  session.tail = new TailPanel(session, dom, (node) => {
    dom['cluster-tab'].hidden = !node;
    if (node && location.hash === '#cluster') showTab();
  });
  dom.signin.hidden = true;
  dom.app.hidden = false;
  session.plugins.start();
  session.tail.start();
  showTab();
  return true;
}

function signOut() {
  if (session) {
    session.plugins.stop();
    session.tail.stop();
  }
  session = null;
  storeCredential(KEY, null);
  showSignIn();
}

/** The panel named by the URL fragment (`#plugins` by default). */
function showTab() {
  const wanted = location.hash.slice(1) || 'plugins';
  const tab = document.querySelector(`[data-tab="${CSS.escape(wanted)}"]:not([hidden])`) ? wanted : 'plugins';
  for (const panel of document.querySelectorAll('[data-panel]')) panel.hidden = panel.dataset.panel !== tab;
  for (const link of document.querySelectorAll('[data-tab]')) {
    if (link.dataset.tab === tab) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (!session) return;
  if (tab === 'dead-letters') loadDeadLetters();
  if (tab === 'users') loadUsers();
  if (tab === 'cluster') loadCluster();
}

async function loadDeadLetters() {
  let letters;
  try {
    letters = await api('GET', '/v1/admin/dead-letters', { token: session.key });
  } catch (err) {
    toast(err.message, 'error');
    return;
  }
  const rows = letters.map((d) => el('tr', { dataset: { deadLetter: String(d.id) } },
    el('td', { text: String(d.id) }),
    el('td', { text: d.plugin }),
    el('td', { class: 'small', text: `#${d.event_id} ${d.kind}${d.conversation_id ? ` in ${d.conversation_id}` : ''}` }),
    el('td', { class: 'num', text: String(d.attempts) }),
    el('td', { class: 'small error-text', text: d.last_error }),
    el('td', { class: 'small', text: formatTime(d.created_at) }),
    el('td', {}, el('button', { class: 'btn btn-small replay', type: 'button', text: 'Replay',
      'aria-label': `Replay dead letter ${d.id}`, onclick: () => replay(d.id) }))));
  if (!rows.length) rows.push(el('tr', {}, el('td', { colspan: '7', class: 'muted', text: 'No dead letters: every delivery got through.' })));
  dom['dead-letter-rows'].replaceChildren(...rows);
}

async function replay(id) {
  try {
    await api('POST', `/v1/admin/dead-letters/${id}/replay`, { token: session.key });
    toast(`Dead letter ${id} replayed`, 'ok');
    await loadDeadLetters();
  } catch (err) {
    toast(err.message, 'error');
  }
}

async function loadUsers() {
  let users;
  try {
    users = await api('GET', '/v1/admin/users?limit=200', { token: session.key });
  } catch (err) {
    dom['users-error'].textContent = err.message;
    return;
  }
  dom['users-error'].textContent = '';
  const rows = users.map((account) => {
    const u = account; // a UserAccount: the user's fields with `bot` and `active` beside them
    return el('tr', { dataset: { userId: u.id } },
      el('td', { text: u.id }),
      el('td', { text: u.name }),
      el('td', { text: account.bot ? 'bot' : 'user' }),
      el('td', {}, el('span', { class: `badge ${account.active ? 'badge-ok' : 'badge-off'}`, text: account.active ? 'active' : 'deactivated' })),
      el('td', { class: 'actions' },
        account.bot || !account.active ? null : el('button', { class: 'btn btn-small issue-token', type: 'button',
          text: 'Issue token', 'aria-label': `Issue a token for ${u.id}`, onclick: () => issueToken(u.id) }),
        account.bot ? null : el('button', { class: 'btn btn-small', type: 'button',
          text: account.active ? 'Deactivate' : 'Reactivate',
          onclick: () => setActive(u.id, !account.active) })));
  });
  dom['user-rows'].replaceChildren(...rows);
}

/** Shows a token once, with a link that opens the chat client signed in as its user. */
function showIssued(userId, token) {
  const box = dom.issued;
  const link = el('a', { class: 'btn btn-primary', href: `/chat#token=${encodeURIComponent(token)}`, target: '_blank',
    rel: 'noopener', text: `Open chat as ${userId}` });
  const copy = el('button', { class: 'btn', type: 'button', text: 'Copy token', onclick: async () => {
    try {
      await navigator.clipboard.writeText(token);
      toast('Token copied', 'ok');
    } catch {
      toast('Select the token and copy it', 'info');
    }
  } });
  box.replaceChildren(
    el('p', {}, `A token for ${userId} (shown only now):`),
    el('code', { class: 'token', text: token }),
    el('div', { class: 'row' }, link, copy));
  box.hidden = false;
}

async function createUser(event) {
  event.preventDefault();
  const id = dom['new-user-id'].value.trim();
  const name = dom['new-user-name'].value.trim();
  try {
    const created = await api('POST', '/v1/admin/users', { token: session.key, body: { id, name } });
    dom['new-user-id'].value = '';
    dom['new-user-name'].value = '';
    showIssued(created.user.id, created.token);
    await loadUsers();
  } catch (err) {
    dom['users-error'].textContent = err.message;
  }
}

async function issueToken(userId) {
  try {
    const issued = await api('POST', `/v1/admin/users/${encodeURIComponent(userId)}/tokens`, { token: session.key, body: {} });
    showIssued(userId, issued.token);
  } catch (err) {
    dom['users-error'].textContent = err.message;
  }
}

async function setActive(userId, active) {
  try {
    await api('POST', `/v1/admin/users/${encodeURIComponent(userId)}/${active ? 'reactivate' : 'deactivate'}`, { token: session.key });
    await loadUsers();
  } catch (err) {
    dom['users-error'].textContent = err.message;
  }
}

async function loadCluster() {
  let view;
  try {
    view = await api('GET', '/v1/admin/cluster', { token: session.key });
  } catch (err) {
    dom['cluster-view'].replaceChildren(el('p', { class: 'error-text', text: err.message }));
    return;
  }
  const nodes = view.nodes.map((n) => el('tr', { dataset: { node: n.node_id } },
    el('th', { scope: 'row', text: n.node_id === view.node_id ? `${n.node_id} (this node)` : n.node_id }),
    el('td', { text: n.http_addr }),
    el('td', {}, el('span', { class: `badge ${n.alive ? 'badge-ok' : 'badge-err'}`, text: n.alive ? 'alive' : 'silent' })),
    el('td', { text: n.is_sequencer ? 'sequencer' : '' }),
    el('td', { class: 'num', text: `${Math.round(n.heartbeat_age_ms / 100) / 10} s` }),
    el('td', { text: n.version })));
  dom['cluster-view'].replaceChildren(
    el('p', {}, `Cluster `, el('strong', { text: view.cluster }), `, sequencer: ${view.sequencer || 'none'}`),
    el('div', { class: 'table-wrap' }, el('table', { class: 'plain' },
      el('thead', {}, el('tr', {}, ...['Node', 'Address', 'State', 'Role', 'Heartbeat', 'Version'].map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', { id: 'node-rows' }, ...nodes))),
    el('h3', { text: 'Plugin catalog' }),
    el('ul', {}, ...view.plugins.map((p) => el('li', { text: `${p.name} (generation ${p.generation}, on ${p.nodes_on_catalog} nodes)` }))));
}

dom['signin-form'].addEventListener('submit', async (event) => {
  event.preventDefault();
  dom['signin-button'].disabled = true;
  await signIn(dom['admin-key'].value.trim());
  dom['signin-button'].disabled = false;
});
dom.signout.addEventListener('click', signOut);
dom['dead-letters-refresh'].addEventListener('click', loadDeadLetters);
dom['new-user-form'].addEventListener('submit', createUser);
window.addEventListener('hashchange', showTab);

start();
