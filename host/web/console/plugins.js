// The plugins panel: every plugin with its state and counters (polled every two seconds while the tab is
// visible), enabling and disabling, settings, uploads and rescans, and the charts of the last minutes.

import { api, el, toast } from '/ui/common/api.js';
import { historyCharts } from '/ui/console/charts.js';

/** How often the list is fetched again: live enough to watch a deploy, one cheap request. */
const POLL_MS = 2000;

/** How often the charts are fetched again: the server samples every five seconds. */
const CHART_MS = 5000;

const STATE_BADGE = { active: 'badge-ok', failing: 'badge-warn', disabled: 'badge-err', 'load-error': 'badge-err', off: 'badge-off' };

export class PluginsPanel {
  constructor(session, dom) {
    this.session = session;
    this.dom = dom;
    this.timer = null;
    this.chartTimer = null;
    this.openSettings = null;
    dom.reload.addEventListener('click', () => this.rescan());
    dom['upload-file'].addEventListener('change', () => this.upload());
  }

  start() {
    this.refresh();
    this.refreshCharts();
    this.timer = setInterval(() => document.visibilityState === 'visible' && this.refresh(), POLL_MS);
    this.chartTimer = setInterval(() => document.visibilityState === 'visible' && this.refreshCharts(), CHART_MS);
  }

  stop() {
    clearInterval(this.timer);
    clearInterval(this.chartTimer);
  }

  async refresh() {
    try {
      const plugins = await api('GET', '/v1/admin/plugins', { token: this.session.key });
      this.render(plugins);
      this.dom['plugins-error'].textContent = '';
      this.dom['plugins-updated'].textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (err) {
      this.dom['plugins-error'].textContent = `Cannot list the plugins: ${err.message}`;
    }
  }

  async refreshCharts() {
    try {
      const history = await api('GET', '/v1/admin/history', { token: this.session.key });
      this.dom.charts.replaceChildren(...historyCharts(history));
    } catch {
      // the table's error line already says when the server is unreachable
    }
  }

  render(plugins) {
    const rows = plugins.map((p) => {
      const state = el('span', { class: `badge ${STATE_BADGE[p.state] || ''} plugin-state`, text: p.state });
      const latency = p.latency_p50_ms === null || p.latency_p50_ms === undefined
        ? '—' : `${fmt(p.latency_p50_ms)} / ${fmt(p.latency_p99_ms)}`;
      const problem = p.load_error || p.last_error;
      return el('tr', { dataset: { plugin: p.name, state: p.state } },
        el('th', { scope: 'row' },
          el('div', { class: 'plugin-name', text: p.name }),
          el('div', { class: 'muted small', text: [p.version && `v${p.version}`, p.compiler, p.description].filter(Boolean).join(' · ') }),
          p.grants.length ? el('div', { class: 'small grants', text: `grants: ${p.grants.join(', ')}` }) : null,
          problem ? el('div', { class: 'small error-text last-error', text: problem }) : null),
        el('td', {}, state, p.disabled_for_ms ? el('div', { class: 'muted small', text: `trial in ${Math.ceil(p.disabled_for_ms / 1000)} s` }) : null),
        el('td', { class: 'small hooks', text: p.hooks.join(', ') || '—' }),
        el('td', { class: 'num', text: String(p.calls) }),
        el('td', { class: `num${p.failures ? ' error-text' : ''}`, text: String(p.failures) }),
        el('td', { class: 'num', text: String(p.timeouts) }),
        el('td', { class: 'num', text: latency }),
        el('td', { class: 'num', text: String(p.pending_deliveries) }),
        el('td', { class: 'actions' },
          p.enabled
            ? el('button', { class: 'btn btn-small disable', type: 'button', text: 'Disable', 'aria-label': `Disable ${p.name}`,
              onclick: () => this.setEnabled(p.name, false) })
            : el('button', { class: 'btn btn-small btn-primary enable', type: 'button', text: 'Enable', 'aria-label': `Enable ${p.name}`,
              onclick: () => this.setEnabled(p.name, true) }),
          el('button', { class: 'btn btn-small settings-button', type: 'button', text: 'Settings', 'aria-label': `Settings of ${p.name}`,
            onclick: () => this.showSettings(p.name) })));
    });
    if (!rows.length) {
      rows.push(el('tr', {}, el('td', { colspan: '9', class: 'muted',
        text: 'No plugins. Drop a .wasm into the plugins folder, or upload one.' })));
    }
    this.dom['plugin-rows'].replaceChildren(...rows);
  }

  async setEnabled(name, enabled) {
    try {
      await api('POST', `/v1/admin/plugins/${encodeURIComponent(name)}/${enabled ? 'enable' : 'disable'}`, { token: this.session.key });
      toast(`${name} ${enabled ? 'enabled' : 'disabled'}`, 'ok');
      await this.refresh();
    } catch (err) {
      toast(err.message, 'error');
    }
  }

  async rescan() {
    try {
      const result = await api('POST', '/v1/admin/plugins/reload', { token: this.session.key, body: {} });
      const changes = result.changes.map((c) => `${c.name}: ${c.change}${c.error ? ` (${c.error})` : ''}`);
      toast(changes.length ? changes.join('; ') : 'Nothing changed in the plugins folder.', 'ok');
      this.render(result.plugins);
    } catch (err) {
      toast(err.message, 'error');
    }
  }

  /** Uploads the chosen `.wasm` under its file name; the server checks it like a load. */
  async upload() {
    const input = this.dom['upload-file'];
    const file = input.files && input.files[0];
    input.value = '';
    if (!file) return;
    const name = file.name.replace(/\.wasm$/i, '').replace(/[^A-Za-z0-9_-]/g, '_');
    try {
      const bytes = new Uint8Array(await file.arrayBuffer());
      let binary = '';
      for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
      await api('PUT', `/v1/admin/plugins/${encodeURIComponent(name)}`, { token: this.session.key, body: { wasm: btoa(binary) } });
      toast(`${name} uploaded and loaded`, 'ok');
      await this.refresh();
    } catch (err) {
      this.dom['plugins-error'].textContent = `Upload of ${file.name} refused: ${err.message}`;
    }
  }

  /** The settings form of `name`: one field per declared setting, saved with PATCH. */
  async showSettings(name) {
    const box = this.dom.settings;
    let controls;
    try {
      controls = await api('GET', `/v1/admin/plugins/${encodeURIComponent(name)}/settings`, { token: this.session.key });
    } catch (err) {
      toast(err.message, 'error');
      return;
    }
    box.hidden = false;
    this.dom['settings-heading'].textContent = `Settings of ${name}`;
    const form = this.dom['settings-form'];
    const error = el('p', { class: 'error-text', role: 'alert' });
    const fields = controls.settings.map((s) => settingField(s));
    const save = async (event) => {
      event.preventDefault();
      const changes = {};
      for (const { setting, read } of fields) changes[setting.name] = read();
      try {
        await api('PATCH', `/v1/admin/plugins/${encodeURIComponent(name)}/settings`, { token: this.session.key, body: changes });
        toast(`Settings of ${name} saved`, 'ok');
        box.hidden = true;
      } catch (err) {
        error.textContent = err.message;
      }
    };
    form.replaceChildren(
      controls.settings.length ? null : el('p', { class: 'muted', text: 'This plugin declares no settings (manifest v2 [settings]).' }),
      ...fields.map((f) => f.node),
      error,
      el('div', { class: 'row' },
        controls.settings.length ? el('button', { class: 'btn btn-primary', type: 'submit', text: 'Save' }) : null,
        el('button', { class: 'btn', type: 'button', text: 'Close', onclick: () => { box.hidden = true; } })));
    form.onsubmit = save;
    box.scrollIntoView({ block: 'nearest' });
  }
}

/** One setting's input: a checkbox, a select, a number or a text (secrets masked). */
function settingField(setting) {
  const id = `setting-${setting.name}`;
  const current = setting.value ?? setting.effective ?? setting.default ?? null;
  let input;
  if (setting.kind === 'boolean') {
    input = el('input', { id, type: 'checkbox' });
    input.checked = Boolean(current);
  } else if (setting.kind === 'enum') {
    input = el('select', { id }, ...setting.values.map((v) => el('option', { value: v, text: v })));
    if (current !== null) input.value = String(current);
  } else {
    input = el('input', { id, type: setting.kind === 'secret' ? 'password' : setting.kind === 'string' ? 'text' : 'number',
      step: setting.kind === 'number' ? 'any' : null, autocomplete: 'off' });
    if (current !== null && setting.kind !== 'secret') input.value = String(current);
    if (setting.kind === 'secret') input.placeholder = setting.value !== null && setting.value !== undefined ? '(set; leave empty to keep)' : '';
  }
  const read = () => {
    if (setting.kind === 'boolean') return input.checked;
    if (input.value === '') return setting.kind === 'secret' && setting.value !== undefined ? setting.value : null;
    if (setting.kind === 'integer') return Number.parseInt(input.value, 10);
    if (setting.kind === 'number') return Number(input.value);
    return input.value;
  };
  const node = el('div', { class: 'field' },
    el('label', { for: id, text: `${setting.name}${setting.required ? ' (required)' : ''}` }),
    input,
    el('span', { class: 'muted small', text: [setting.kind, setting.description].filter(Boolean).join(' — ') }));
  return { setting, node, read };
}

function fmt(ms) {
  if (ms === null || ms === undefined) return '—';
  return ms >= 10 ? ms.toFixed(0) : ms >= 1 ? ms.toFixed(1) : ms.toFixed(3);
}
