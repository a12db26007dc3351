/**
 * The filter report for people, in the shape of makedumpfile's
 * `--message-level 31` report (same row names, so its users find their
 * numbers), with dumpsieve's additions: offline pages found without the
 * VMCOREINFO key, not-RAM pages from the RAM oracle, bytes.
 */
import { field, terminalText } from './safe.js';
import { formatBytes, formatCount, percent } from '../core/units.js';
import type { FilterReport } from '../pipeline/filter.js';
import { renderCostModel } from './cost-text.js';

export interface FilterTextOptions {
  /** Add the reading-cost model (filter --cost). */
  cost?: boolean | undefined;
}

export function renderFilterReport(r: FilterReport, o: FilterTextOptions = {}): string {
  const ps = r.input.pageSize;
  const p = r.pages;
  const ex = p.excluded;
  const n = (v: number | undefined): string => formatCount(v ?? 0).padStart(12);
  const sz = (v: number | undefined): string => formatBytes((v ?? 0) * ps).padStart(10);
  const row = (label: string, v: number | undefined, extra = ''): string => `${label.padEnd(28)}: ${n(v)}  ${sz(v)}${extra}`;
  const lines: string[] = [];
  const outName = r.output.flattened ? 'standard output (flattened)' : r.output.file;
  const workers = r.output.workers ? `, ${r.output.workers} compression thread${r.output.workers === 1 ? '' : 's'}` : '';
  const fmt = r.output.format === 'elf' ? 'ELF' : `kdump-compressed${r.output.codec !== 'none' ? `, ${r.output.codec}${workers}` : ''}`;
  lines.push(`${r.input.file} (${r.input.format}${r.input.osrelease ? `, Linux ${field(r.input.osrelease)}` : ''}) -> ${outName} (${fmt}), dump level ${r.dumpLevel}`);
  const c = r.classification;
  if (c.source === 'none') {
    lines.push('Page flags: none (no usable VMCOREINFO): only holes and zero pages can be excluded');
  } else {
    lines.push(`Page flags: ${c.source === 'mem_map' ? 'struct page in mem_map' : 'kpageflags table'}${c.description ? `, ${c.description.layout}` : ''}`);
    const d = c.description?.decoder;
    if (d) lines.push(`Offline pages: ${d.offline}`);
  }
  lines.push('');
  lines.push(row('Original pages', p.ram));
  lines.push(row('  Excluded pages', p.excludedTotal));
  lines.push(row('    Pages filled with zero', ex.zero));
  lines.push(row('    Non-private cache pages', ex.cache));
  lines.push(row('    Private cache pages', ex['cache-private']));
  lines.push(row('    User process data pages', ex.user));
  lines.push(row('    Free pages', ex.free));
  if (ex.unaccepted) lines.push(row('    Unaccepted pages', ex.unaccepted));
  lines.push(row('    Hwpoison pages', ex.hwpoison));
  lines.push(
    row('    Offline pages', ex.offline, p.offlineByFallback ? `  (${formatCount(p.offlineByFallback)} found without the VMCOREINFO key)` : ''),
  );
  if (r.oracle) lines.push(row('    Not-RAM pages (oracle)', ex['not-ram'], `  (${r.oracle.name})`));
  if (p.absent) lines.push(row('  Not in the input', p.absent));
  lines.push(row('  Remaining pages', p.kept));
  lines.push(`  (The number of pages is reduced to ${percent(p.kept, p.ram, 0)}.)`);
  lines.push(row('Memory Hole', p.hole));
  lines.push('-'.repeat(56));
  lines.push(row('Total pages', p.total));
  lines.push('');
  lines.push(protectionLine(r));
  if (p.offlineAlsoNotRam) lines.push(`Offline pages the oracle also calls not RAM: ${formatCount(p.offlineAlsoNotRam)}`);
  if (r.oracle) {
    lines.push(
      `RAM oracle: ${formatCount(r.oracle.calls)} calls for ${formatCount(r.oracle.pfnsAsked)} pfns asked; ` +
        `${formatCount(r.oracle.notRam)} not RAM; offline pages were not asked about`,
    );
  }
  for (const [k, v] of Object.entries(c.warnings)) lines.push(`Warning: ${k}: ${formatCount(v)}`);
  if (o.cost) {
    lines.push('');
    lines.push(...renderCostModel(r.cost, { level: r.dumpLevel, oracle: r.oracle?.name, thisRun: r.oracle ? 'flags + oracle' : 'flag filter' }));
    lines.push('');
  }
  lines.push(
    `Output: ${formatBytes(r.output.bytes)} (${percent(r.output.bytes, r.input.bytes)} of the input's ${formatBytes(r.input.bytes)}); ` +
      `read ${formatBytes(r.bytesRead)} from the input in ${r.seconds.toFixed(2)} s`,
  );
  return terminalText(`${lines.join('\n')}\n`);
}

/**
 * One line on protection: what was protected, what content rules it
 * overrode, and what status rules excluded all the same (never read).
 */
function protectionLine(r: FilterReport): string {
  const n = (v: number): string => formatCount(v);
  const ki = r.protection.kernelImage;
  const what = ki.found ? `kernel image ${n(ki.pages)} pages` : `kernel image not located (${ki.why})`;
  const log = r.protection.logPages ? ` + kernel log ${n(r.protection.logPages)} pages` : '';
  const extra = r.protection.extraPages ? ` + ${n(r.protection.extraPages)} pages named with --protect` : '';
  const list = (o: Record<string, number>): string =>
    Object.entries(o)
      .map(([k, v]) => `${n(v)} ${k}`)
      .join(', ');
  const kept = list(r.pages.protectedKept);
  const dropped = list(r.pages.protectedExcluded);
  return (
    `Protected: ${what}${log}${extra}` +
    (kept ? `; kept against content rules: ${kept}` : '') +
    (dropped ? `; excluded anyway by status rules (never read): ${dropped}` : '')
  );
}
