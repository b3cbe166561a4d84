// Inline SVG charts for the HTML report: no script, no external asset, readable without a network.

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

const W = 760;
const H = 300;
const M = { top: 34, right: 20, bottom: 52, left: 70 };
const PLOT_W = W - M.left - M.right;
const PLOT_H = H - M.top - M.bottom;
const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c'];

/** Round axis steps: 1, 2 or 5 times a power of ten, about `count` of them up to max. */
export function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  const ticks: number[] = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  if (ticks[ticks.length - 1]! < max) ticks.push(Number((ticks[ticks.length - 1]! + step).toPrecision(12)));
  return ticks;
}

function frame(id: string, title: string, body: string, xLabel: string, yLabel: string): string {
  return [
    `<svg class="chart" id="${escapeXml(id)}" data-chart="${escapeXml(id)}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-labelledby="${escapeXml(id)}-title">`,
    `<title id="${escapeXml(id)}-title">${escapeXml(title)}</title>`,
    `<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14" font-weight="600">${escapeXml(title)}</text>`,
    body,
    `<text x="${M.left + PLOT_W / 2}" y="${H - 10}" text-anchor="middle" font-size="12">${escapeXml(xLabel)}</text>`,
    `<text x="16" y="${M.top + PLOT_H / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 16 ${M.top + PLOT_H / 2})">${escapeXml(yLabel)}</text>`,
    '</svg>',
  ].join('\n');
}

function yAxis(ticks: number[], format: (v: number) => string): string {
  const top = ticks[ticks.length - 1]!;
  return ticks.map((v) => {
    const y = M.top + PLOT_H - (v / top) * PLOT_H;
    return `<line x1="${M.left}" x2="${M.left + PLOT_W}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="#e5e7eb"/>` +
      `<text x="${M.left - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end" font-size="11">${escapeXml(format(v))}</text>`;
  }).join('\n');
}

function axes(): string {
  return `<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${M.top + PLOT_H}" stroke="#374151"/>` +
    `<line x1="${M.left}" x2="${M.left + PLOT_W}" y1="${M.top + PLOT_H}" y2="${M.top + PLOT_H}" stroke="#374151"/>`;
}

export interface Bar {
  label: string;
  value: number;
  /** Tooltip. */
  title?: string;
}

export interface BarChartSpec {
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  bars: Bar[];
  formatY?: (v: number) => string;
  /** Show every n-th x label (default: about 10 labels). */
  labelEvery?: number;
}

export function barChart(spec: BarChartSpec): string {
  const max = Math.max(0, ...spec.bars.map((b) => b.value));
  const ticks = niceTicks(max);
  const top = ticks[ticks.length - 1]!;
  const n = Math.max(1, spec.bars.length);
  const slot = PLOT_W / n;
  const every = spec.labelEvery ?? Math.max(1, Math.ceil(n / 10));
  const fmt = spec.formatY ?? ((v: number) => String(v));
  const bars = spec.bars.map((b, i) => {
    const h = top > 0 ? (b.value / top) * PLOT_H : 0;
    const x = M.left + i * slot + slot * 0.1;
    const y = M.top + PLOT_H - h;
    const label = i % every === 0
      ? `<text x="${(M.left + i * slot + slot / 2).toFixed(1)}" y="${M.top + PLOT_H + 14}" text-anchor="middle" font-size="10">${escapeXml(b.label)}</text>`
      : '';
    return `<rect class="bar" x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${Math.max(0.5, slot * 0.8).toFixed(1)}" height="${h.toFixed(1)}" fill="${COLORS[0]}"><title>${escapeXml(b.title ?? `${b.label}: ${fmt(b.value)}`)}</title></rect>${label}`;
  }).join('\n');
  return frame(spec.id, spec.title, `${yAxis(ticks, fmt)}\n${axes()}\n${bars}`, spec.xLabel, spec.yLabel);
}

export interface Series {
  name: string;
  points: Array<[number, number]>;
}

export interface LineChartSpec {
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  formatX?: (v: number) => string;
  formatY?: (v: number) => string;
  /** A dashed vertical marker, e.g. the end of the load. */
  marker?: { x: number; label: string };
}

export function lineChart(spec: LineChartSpec): string {
  const xs = spec.series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = spec.series.flatMap((s) => s.points.map((p) => p[1]));
  const xMax = Math.max(spec.marker?.x ?? 0, ...xs, 0);
  const xMin = Math.min(0, ...xs);
  const ticks = niceTicks(Math.max(0, ...ys));
  const top = ticks[ticks.length - 1]!;
  const xTicks = niceTicks(xMax - xMin, 8).map((t) => t + xMin);
  const span = (xTicks[xTicks.length - 1]! - xMin) || 1;
  const fx = spec.formatX ?? ((v: number) => String(v));
  const fy = spec.formatY ?? ((v: number) => String(v));
  const px = (x: number): number => M.left + ((x - xMin) / span) * PLOT_W;
  const py = (y: number): number => M.top + PLOT_H - (top > 0 ? (y / top) * PLOT_H : 0);
  const xAxis = xTicks.map((t) => `<text x="${px(t).toFixed(1)}" y="${M.top + PLOT_H + 14}" text-anchor="middle" font-size="10">${escapeXml(fx(t))}</text>`).join('\n');
  const lines = spec.series.map((s, i) => {
    const d = s.points.map((p, j) => `${j === 0 ? 'M' : 'L'}${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join(' ');
    const color = COLORS[i % COLORS.length]!;
    return `<path class="series" d="${d}" fill="none" stroke="${color}" stroke-width="2"><title>${escapeXml(s.name)}</title></path>` +
      `<rect x="${M.left + 10 + i * 170}" y="${M.top + 4}" width="12" height="12" fill="${color}"/>` +
      `<text x="${M.left + 27 + i * 170}" y="${M.top + 14}" font-size="11">${escapeXml(s.name)}</text>`;
  }).join('\n');
  const marker = spec.marker
    ? `<line x1="${px(spec.marker.x).toFixed(1)}" x2="${px(spec.marker.x).toFixed(1)}" y1="${M.top}" y2="${M.top + PLOT_H}" stroke="#6b7280" stroke-dasharray="4 3"/>` +
      `<text x="${(px(spec.marker.x) - 4).toFixed(1)}" y="${M.top + 30}" text-anchor="end" font-size="10" fill="#374151">${escapeXml(spec.marker.label)}</text>`
    : '';
  return frame(spec.id, spec.title, `${yAxis(ticks, fy)}\n${axes()}\n${xAxis}\n${lines}\n${marker}`, spec.xLabel, spec.yLabel);
}

export interface ShareChartSpec {
  id: string;
  title: string;
  rows: Array<{ label: string; share: number; value: string }>;
}

/** Horizontal bars of shares (0..1), one per row. */
export function shareChart(spec: ShareChartSpec): string {
  const rowH = 24;
  const height = 40 + spec.rows.length * rowH + 10;
  const labelW = 330;
  const barW = W - labelW - 140;
  const rows = spec.rows.map((r, i) => {
    const y = 36 + i * rowH;
    const w = Math.max(0, Math.min(1, r.share)) * barW;
    const label = r.label.length > 52 ? `${r.label.slice(0, 51)}…` : r.label;
    return `<text x="${labelW - 8}" y="${y + 15}" text-anchor="end" font-size="11">${escapeXml(label)}<title>${escapeXml(r.label)}</title></text>` +
      `<rect class="bar" x="${labelW}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 8}" fill="${COLORS[0]}"/>` +
      `<text x="${(labelW + w + 6).toFixed(1)}" y="${y + 15}" font-size="11">${escapeXml(r.value)}</text>`;
  }).join('\n');
  return [
    `<svg class="chart" id="${escapeXml(spec.id)}" data-chart="${escapeXml(spec.id)}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${height}" width="${W}" height="${height}" role="img" aria-labelledby="${escapeXml(spec.id)}-title">`,
    `<title id="${escapeXml(spec.id)}-title">${escapeXml(spec.title)}</title>`,
    `<rect x="0" y="0" width="${W}" height="${height}" fill="#ffffff"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14" font-weight="600">${escapeXml(spec.title)}</text>`,
    rows,
    '</svg>',
  ].join('\n');
}
