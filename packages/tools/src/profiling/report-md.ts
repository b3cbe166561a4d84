// The profiling report as Markdown (report.md). Charts are in report.html; here each chart is a
// line saying so.

import type { ProfileData } from './profile-data.js';
import { buildReport, type Block, type ChartRef } from './report-model.js';

const CHART_NAMES: Record<ChartRef['type'], string> = {
  'latency-histogram': 'latency histogram',
  throughput: 'throughput over time (per 250 ms)',
  heap: 'heap used and RSS over time',
  'cpu-components': 'CPU self time by component',
};

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function block(b: Block): string {
  switch (b.kind) {
    case 'p':
      return b.text;
    case 'list':
      return b.items.map((i) => `- ${i}`).join('\n');
    case 'table': {
      const align = b.head.map((_, i) => (b.align?.[i] === 'r' ? '---:' : '---'));
      return [
        `| ${b.head.map(cell).join(' | ')} |`,
        `|${align.join('|')}|`,
        ...b.rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
      ].join('\n');
    }
    case 'code':
      return `\`\`\`sh\n${b.text}\n\`\`\``;
    case 'chart':
      return `_Chart: ${CHART_NAMES[b.chart.type]} (see report.html)._`;
  }
}

export function renderMarkdownReport(data: ProfileData): string {
  const doc = buildReport(data);
  const parts = [`# ${doc.title}`, `_${doc.subtitle}_`];
  for (const s of doc.sections) {
    parts.push(`## ${s.title}`);
    for (const b of s.blocks) parts.push(block(b));
  }
  return `${parts.join('\n\n')}\n`;
}
