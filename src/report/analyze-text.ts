/** `dumpsieve analyze` for people: classes, predicted sizes per level and codec, cost of reading. */
import { field, terminalText } from './safe.js';
import { formatBytes, formatCount, percent } from '../core/units.js';
import { ACLASS_NAMES, type AnalyzeReport } from '../pipeline/analyze.js';
import { PAGE_CODECS } from '../formats/kdump/codecs/table.js';
import { table } from './table.js';
import { renderCostModel } from './cost-text.js';

export function renderAnalyzeReport(r: AnalyzeReport): string {
  const ps = r.input.pageSize;
  const out: string[] = [];
  out.push(`${r.input.file} (${r.input.format}${r.input.osrelease ? `, Linux ${field(r.input.osrelease)}` : ''}): ${formatBytes(r.ramPages * ps)} RAM in ${formatBytes(r.input.maxPfn * ps)} of address space`);
  const d = r.classification.description;
  out.push(`Page flags: ${r.classification.source === 'none' ? 'none (no usable VMCOREINFO)' : `${r.classification.source}${d ? `, ${d.layout}` : ''}`}`);
  if (d?.decoder) out.push(`Offline pages: ${d.decoder.offline}`);
  out.push('');
  out.push('Page classes');
  const rows = ACLASS_NAMES.filter((n) => r.classes[n].pages > 0 && n !== 'hole').map((n) => {
    const c = r.classes[n];
    return [n.toUpperCase(), c.pages, formatBytes(c.bytes), percent(c.pages, r.ramPages), c.zeroPages !== undefined ? c.zeroPages : '', c.sampled ?? ''];
  });
  rows.push(['HOLE', r.classes.hole.pages, formatBytes(r.classes.hole.bytes), '', '', '']);
  out.push(table(rows, { header: ['class', 'pages', 'bytes', 'of RAM', 'zero (est.)', 'sampled'], indent: '  ' }));
  if (r.offlineAlsoNotRam) out.push(`  Offline pages the oracle also calls not RAM: ${formatCount(r.offlineAlsoNotRam)}`);
  out.push('');
  out.push(`Predicted output size (kdump-compressed per codec, and ELF; ± 95 % interval from ${formatCount(r.sample.pages)} sampled pages)`);
  const fmt = (p: { bytes: number; error: number }): string => (p.error > 0 ? `${formatBytes(p.bytes)} ±${percent(p.error, p.bytes)}` : formatBytes(p.bytes));
  out.push(
    table(
      r.predictions.map((p) => [`-d ${p.level}`, p.keptPages, fmt(p.kdump.none), ...PAGE_CODECS.map((c) => fmt(p.kdump[c.name])), fmt(p.elf)]),
      { header: ['level', 'kept pages', 'none', ...PAGE_CODECS.map((c) => `${c.name} (-${c.letter})`), 'ELF (-E)'], indent: '  ' },
    ),
  );
  out.push('');
  out.push(...renderCostModel(r.cost, { level: r.cost.level, oracle: r.oracle?.name }));
  return terminalText(`${out.join('\n')}\n`);
}
