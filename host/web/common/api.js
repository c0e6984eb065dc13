// Shared helpers of the console and the chat client: calling the API, reading NDJSON streams, building
// elements without innerHTML, short notices, and where credentials are kept.
//
// Everything the server sends is shown through text nodes (`el(..., {text})` or string children): no page
// ever parses server data as HTML. The pages run under a Content-Security-Policy without inline scripts or
// styles, so nothing here sets `style` attributes from strings.

/** An answer the API refused: its HTTP status, its `error.code`, and the plugin that rejected a message. */
export class ApiError extends Error {
  constructor(status, code, message, plugin = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.plugin = plugin;
  }
}

/**
 * Calls the API: `method` `path` with a bearer `token` and a JSON `body`. Returns the parsed JSON answer
 * (`null` for an empty one, e.g. 204). Throws an `ApiError` with the server's own message, or with status
 * 0 and code `network` when the server cannot be reached.
 */
export async function api(method, path, { token, body } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, 'network', `cannot reach the server (${err.message})`);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(
      response.status,
      error.code || `http_${response.status}`,
      error.message || `${method} ${path} failed with HTTP ${response.status}`,
      error.plugin || null,
    );
  }
  return data;
}

/**
 * Reads an NDJSON stream (`GET path` with a bearer `token`) and yields one parsed object per line until
 * the server ends it or `signal` aborts. Lines that are not JSON are skipped.
 */
export async function* ndjson(path, { token, signal } = {}) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  let response;
  try {
    response = await fetch(path, { headers, signal });
  } catch (err) {
    if (signal && signal.aborted) return;
    throw new ApiError(0, 'network', `cannot reach the server (${err.message})`);
  }
  if (!response.ok) {
    let error = {};
    try {
      error = (await response.json()).error || {};
    } catch {
      // not JSON: the status says enough
    }
    throw new ApiError(response.status, error.code || `http_${response.status}`,
      error.message || `GET ${path} failed with HTTP ${response.status}`);
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (!line) continue;
        try {
          yield JSON.parse(line);
        } catch {
          // a partial or foreign line: skip it
        }
      }
    }
  } catch (err) {
    if (signal && signal.aborted) return;
    throw new ApiError(0, 'network', `the stream broke (${err.message})`);
  } finally {
    reader.releaseLock();
  }
}

/**
 * Builds an element. `attrs`: `class` (string), `text` (text content), `on<event>` (listeners, e.g.
 * `onclick`), `dataset` (an object of data-* values), booleans (`disabled: true`; false/null/undefined
 * leave the attribute out), anything else set as an attribute. Children are nodes or strings (as text);
 * null and false children are skipped.
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = String(value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') {
      node.addEventListener(key.slice(2), value);
    } else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** A timestamp in milliseconds as local time: `14:03` today, `3 Dec 14:03` on other days. */
export function formatTime(ms) {
  const date = new Date(ms);
  const now = new Date();
  const time = date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  if (date.toDateString() === now.toDateString()) return time;
  return `${date.toLocaleDateString([], { day: 'numeric', month: 'short' })} ${time}`;
}

/** How long a notice stays, in milliseconds: long enough to read two lines. */
const TOAST_MS = 6000;

/**
 * Shows a short notice (`kind`: info, ok, error) in the page's `aria-live` region (made on first use), so
 * screen readers announce it too.
 */
export function toast(message, kind = 'info') {
  let region = document.querySelector('.toast-region');
  if (!region) {
    region = el('div', { class: 'toast-region', role: 'status', 'aria-live': 'polite' });
    document.body.append(region);
  }
  const note = el('div', { class: `toast toast-${kind}`, text: message });
  region.append(note);
  setTimeout(() => note.remove(), TOAST_MS);
}

/** The credential kept under `key` for this browser tab, or null. */
export function storedCredential(key) {
  try {
    return sessionStorage.getItem(key);
  } catch {
    return null;
  }
}

/** Keeps `value` under `key` for this tab (null removes it). */
export function storeCredential(key, value) {
  try {
    if (value === null || value === undefined) sessionStorage.removeItem(key);
    else sessionStorage.setItem(key, value);
  } catch {
    // storage disabled: the page still works until it is reloaded
  }
}
