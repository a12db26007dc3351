/** Plain-text tables for people: left-aligned first column, right-aligned numbers. */
import { formatCount } from '../core/units.js';
export function table(rows: Array<Array<string | number>>, opts: { header?: string[]; indent?: string } = {}): string {
  const all = opts.header ? [opts.header, ...rows] : rows;
  const cells = all.map((r) => r.map((c) => (typeof c === 'number' ? formatCount(c) : c)));
  const widths: number[] = [];
  for (const r of cells) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  const numeric = (i: number): boolean => rows.every((r) => typeof r[i] === 'number' || r[i] === '' || /^[\d.,]+( ?[%KMGTi]*B?)?$/.test(String(r[i])));
  const lines = cells.map((r) =>
    (opts.indent ?? '') +
    r
      .map((c, i) => (i > 0 && numeric(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
  if (opts.header) lines.splice(1, 0, (opts.indent ?? '') + widths.map((w) => '-'.repeat(w)).join('  '));
  return lines.join('\n');
}
