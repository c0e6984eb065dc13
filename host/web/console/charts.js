// Small line charts drawn as inline SVG (no library): hook latency, throughput and outbox depth over the
// last minutes, from `GET /v1/admin/history`. Each chart has a text alternative with its latest values.

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 320;
const HEIGHT = 90;
const PAD = 4;

/** Colours of the plugins' lines, in order. */
const PALETTE = ['#2457c5', '#c2410c', '#15803d', '#9333ea', '#b91c1c', '#0e7490', '#a16207', '#be185d'];

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  return node;
}

/**
 * A chart of `series` (`[{ name, points: [[x, y|null], ...] }]`, x in ms) titled `title`, values shown
 * with `unit`. Gaps (null) break a line.
 */
export function lineChart(title, series, unit) {
  const figure = document.createElement('figure');
  figure.className = 'chart card';
  const caption = document.createElement('figcaption');
  caption.append(title);
  // The legend: each series in its line's colour with its newest value (also the chart's text).
  const values = document.createElement('span');
  values.className = 'chart-values muted';
  const latest = [];
  series.forEach((s, i) => {
    const last = [...s.points].reverse().find(([, y]) => y !== null);
    if (!last) return;
    const entry = document.createElement('span');
    entry.className = 'chart-legend';
    const swatch = document.createElement('span');
    swatch.className = 'chart-swatch';
    swatch.style.backgroundColor = PALETTE[i % PALETTE.length];
    entry.append(swatch, `${s.name} ${format(last[1])}${unit}`);
    values.append(entry);
    latest.push(`${s.name} ${format(last[1])}${unit}`);
  });
  if (!latest.length) values.textContent = 'no data yet';
  caption.append(values);
  const all = series.flatMap((s) => s.points);
  const xs = all.map(([x]) => x);
  const ys = all.map(([, y]) => y).filter((y) => y !== null);
  const chart = svg('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, preserveAspectRatio: 'none', role: 'img', class: 'chart-svg' });
  const label = svg('title');
  label.textContent = `${title}: ${latest.length ? latest.join(', ') : 'no data yet'}`;
  chart.append(label);
  chart.append(svg('line', { x1: 0, y1: HEIGHT - PAD, x2: WIDTH, y2: HEIGHT - PAD, class: 'chart-axis' }));
  if (xs.length > 1 && ys.length) {
    const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
    const yMax = Math.max(...ys, 1e-9) * 1.1;
    const px = (x) => PAD + ((x - x0) / Math.max(x1 - x0, 1)) * (WIDTH - 2 * PAD);
    const py = (y) => HEIGHT - PAD - (y / yMax) * (HEIGHT - 2 * PAD);
    series.forEach((s, i) => {
      let path = '';
      let drawing = false;
      for (const [x, y] of s.points) {
        if (y === null) {
          drawing = false;
          continue;
        }
        path += `${drawing ? 'L' : 'M'}${px(x).toFixed(1)},${py(y).toFixed(1)}`;
        drawing = true;
      }
      if (path) {
        chart.append(svg('path', { d: path, class: 'chart-line', stroke: PALETTE[i % PALETTE.length] }));
      }
    });
    values.append(document.createTextNode(`top: ${format(yMax / 1.1)}${unit}`));
  }
  figure.append(chart, caption);
  figure.dataset.chart = title;
  return figure;
}

function format(value) {
  if (Number.isInteger(value) || value >= 100) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** The three charts of a history (`{ interval_ms, samples }`). */
export function historyCharts(history) {
  const samples = history.samples;
  const names = Array.from(new Set(samples.flatMap((s) => s.plugins.map((p) => p.name)))).sort();
  const of = (sample, name) => sample.plugins.find((p) => p.name === name);
  const latency = names.map((name) => ({
    name,
    points: samples.map((s) => [s.at, of(s, name) ? of(s, name).p99_ms : null]),
  }));
  const throughput = names.map((name) => ({
    name,
    points: samples.slice(1).map((s, i) => {
      const [now, before] = [of(s, name), of(samples[i], name)];
      if (!now || !before) return [s.at, null];
      const seconds = Math.max((s.at - samples[i].at) / 1000, 0.001);
      return [s.at, Math.max(now.calls - before.calls, 0) / seconds];
    }),
  }));
  const outbox = [{ name: 'outbox', points: samples.map((s) => [s.at, s.outbox_depth]) }];
  return [
    lineChart('Hook latency p99', latency, ' ms'),
    lineChart('Hook calls per second', throughput, '/s'),
    lineChart('Outbox depth', outbox, ''),
  ];
}
