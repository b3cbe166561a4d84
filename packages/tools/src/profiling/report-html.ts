// The profiling report as one self-contained HTML file (report.html): inline CSS and inline SVG
// charts, no script and nothing loaded from anywhere, so it opens offline in any browser.

import { formatBytes, formatInt, formatMs } from '../loadtest/format.js';
import { barChart, escapeXml, lineChart, shareChart } from './charts.js';
import type { ProfileData } from './profile-data.js';
import { buildReport, MET, NOT_MET, type Block, type ChartRef } from './report-model.js';

/** Escapes, then turns `code` and **bold** into elements. */
function inline(text: string): string {
  return escapeXml(text)
    .replace(/`([^`]+)`/g, '<code>$1</code>')
    .replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>');
}

function status(cell: string): string | undefined {
  if (cell === MET) return `<span class="met">${MET}</span>`;
  if (cell === NOT_MET) return `<span class="not-met">${NOT_MET}</span>`;
  return undefined;
}

function latencyLabel(us: number): string {
  if (us < 1000) return `${Math.round(us)}µs`;
  if (us < 1_000_000) return `${(us / 1000).toFixed(us < 10_000 ? 1 : 0)}ms`;
  return `${(us / 1_000_000).toFixed(1)}s`;
}

function chart(ref: ChartRef, d: ProfileData): string {
  switch (ref.type) {
    case 'latency-histogram':
      return barChart({
        id: 'latency-histogram',
        title: 'Latency histogram (logarithmic bins)',
        xLabel: 'latency (lower bound of each bin)',
        yLabel: 'requests',
        bars: d.load.histogram.map((b) => ({
          label: latencyLabel(b.fromUs),
          value: b.count,
          title: `${formatMs(b.fromUs)} – ${formatMs(b.toUs)}: ${formatInt(b.count)} requests`,
        })),
        formatY: (v) => formatInt(v),
      });
    case 'throughput':
      return barChart({
        id: 'throughput',
        title: `Throughput over time (per ${d.timeline.intervalMs} ms)`,
        xLabel: 'seconds since the load started',
        yLabel: 'requests/second',
        bars: d.timeline.throughput.map((v, i) => ({
          label: ((i * d.timeline.intervalMs) / 1000).toFixed(1),
          value: v,
          title: `${((i * d.timeline.intervalMs) / 1000).toFixed(2)} s: ${formatInt(v)} req/s, ${formatInt(d.timeline.failed[i] ?? 0)} failed`,
        })),
        formatY: (v) => formatInt(v),
      });
    case 'heap':
      return lineChart({
        id: 'heap',
        title: 'Heap used and RSS over time (sampled every 250 ms)',
        xLabel: 'seconds since the load started',
        yLabel: 'MiB',
        series: [
          { name: 'heap used', points: d.timeline.memory.map((s) => [s.t, s.heapUsed / 1048576]) },
          { name: 'RSS', points: d.timeline.memory.map((s) => [s.t, s.rss / 1048576]) },
        ],
        formatX: (v) => v.toFixed(1),
        formatY: (v) => v.toFixed(0),
        marker: { x: d.timeline.loadEndS, label: 'end of load' },
      });
    case 'cpu-components':
      return shareChart({
        id: 'cpu-components',
        title: 'CPU self time by component',
        rows: d.cpu.components.map((c) => ({ label: c.label, share: c.share, value: `${(c.share * 100).toFixed(1)} %` })),
      });
  }
}

function block(b: Block, d: ProfileData): string {
  switch (b.kind) {
    case 'p':
      return `<p>${inline(b.text)}</p>`;
    case 'list':
      return `<ul>\n${b.items.map((i) => `<li>${inline(i)}</li>`).join('\n')}\n</ul>`;
    case 'table': {
      const cls = (i: number): string => (b.align?.[i] === 'r' ? ' class="num"' : '');
      return [
        '<table>',
        `<thead><tr>${b.head.map((h, i) => `<th${cls(i)}>${inline(h)}</th>`).join('')}</tr></thead>`,
        `<tbody>\n${b.rows.map((r) => `<tr>${r.map((c, i) => `<td${cls(i)}>${status(c) ?? inline(c)}</td>`).join('')}</tr>`).join('\n')}\n</tbody>`,
        '</table>',
      ].join('\n');
    }
    case 'code':
      return `<pre><code>${escapeXml(b.text)}</code></pre>`;
    case 'chart':
      return `<figure>\n${chart(b.chart, d)}\n</figure>`;
  }
}

const STYLE = `
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #111827; max-width: 980px; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.7rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #e5e7eb; padding-bottom: 0.2rem; }
.subtitle { color: #4b5563; margin-top: 0; }
table { border-collapse: collapse; margin: 0.8rem 0; }
th, td { border: 1px solid #e5e7eb; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f9fafb; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code { font: 0.9em ui-monospace, SFMono-Regular, Menlo, monospace; background: #f3f4f6; padding: 0 0.2em; border-radius: 3px; }
pre { background: #f3f4f6; padding: 0.8rem; overflow-x: auto; }
pre code { background: none; padding: 0; }
figure { margin: 1rem 0; }
svg.chart { max-width: 100%; height: auto; border: 1px solid #e5e7eb; font-family: system-ui, sans-serif; }
nav ol { columns: 2; }
.met { color: #15803d; font-weight: 600; }
.not-met { color: #b91c1c; font-weight: 600; }
`;

export function renderHtmlReport(data: ProfileData): string {
  const doc = buildReport(data);
  const toc = doc.sections.map((s) => `<li><a href="#${s.id}">${escapeXml(s.title)}</a></li>`).join('\n');
  const body = doc.sections.map((s) => [`<section id="${s.id}">`, `<h2>${escapeXml(s.title)}</h2>`, ...s.blocks.map((b) => block(b, data)), '</section>'].join('\n')).join('\n');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>${escapeXml(doc.title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>${escapeXml(doc.title)}</h1>
<p class="subtitle">${escapeXml(doc.subtitle)} · RSS after ${escapeXml(formatBytes(data.memory.after.rss))}</p>
<nav><ol>
${toc}
</ol></nav>
${body}
</body>
</html>
`;
}
