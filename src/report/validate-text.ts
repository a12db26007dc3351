/** `dumpsieve validate` for people: findings first, then what ran. */
import { field, terminalText } from './safe.js';
import type { ValidateReport } from '../pipeline/validate.js';
import { pfnRanges } from './ranges.js';
import { formatCount } from '../core/units.js';

function wrap(text: string, width: number, indent: string): string {
  const words = text.split(/\s+/);
  const lines: string[] = [];
  let line = '';
  for (const w of words) {
    if (line && line.length + 1 + w.length > width) {
      lines.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) lines.push(line);
  return lines.map((l) => indent + l).join('\n');
}

export function renderValidateReport(r: ValidateReport): string {
  const out: string[] = [];
  out.push(`${r.input.file} (${r.input.format}${r.input.osrelease ? `, Linux ${field(r.input.osrelease)}` : ''})${r.oracle ? `, RAM oracle ${r.oracle}` : ''}`);
  out.push(headline(r));
  const skipped = r.checks.filter((c) => !c.ran);
  if (skipped.length) {
    // Group the skipped checks by what would enable them.
    const by = new Map<string, string[]>();
    for (const c of skipped) by.set(c.skipped ?? '', [...(by.get(c.skipped ?? '') ?? []), c.id]);
    out.push(`Not run: ${[...by].map(([why, ids]) => `${ids.join(', ')} (${why})`).join('; ')}.`);
  }
  for (const f of r.findings) {
    out.push('');
    out.push(`${f.severity.toUpperCase()} ${f.id}: ${f.title}: ${formatCount(f.count)} ${f.id === 'offline-total' ? 'pages of difference' : 'pages'}`);
    if (f.detail) out.push(`  ${f.detail}`);
    if (f.ranges.length) out.push(`  pfns ${pfnRanges(f.ranges, f.moreRanges)}`);
    out.push(wrap(f.why, 96, '  '));
  }
  out.push('');
  out.push('Checks:');
  for (const c of r.checks) {
    out.push(`  ${status(r, c.id, c.ran, c.count)}  ${c.id.padEnd(20)} ${c.ran ? c.title : `${c.title} (${c.skipped})`}`);
  }
  for (const n of r.notes) out.push(`Note: ${n}`);
  return terminalText(`${out.join('\n')}\n`);
}

/** One line: how many checks ran and what they found (never an all-clear for checks that did not run). */
function headline(r: ValidateReport): string {
  const ran = r.checks.filter((c) => c.ran).length;
  const errors = r.findings.filter((f) => f.severity === 'error').length;
  const warnings = r.findings.length - errors;
  const found = [errors ? `${errors} error${errors > 1 ? 's' : ''}` : '', warnings ? `${warnings} warning${warnings > 1 ? 's' : ''}` : ''].filter(Boolean).join(', ');
  return `${ran} of ${r.checks.length} checks ran: ${found || 'no findings'}.`;
}

function status(r: ValidateReport, id: string, ran: boolean, count: number): string {
  if (!ran) return 'skip';
  if (!count) return 'ok  ';
  return r.findings.find((f) => f.id === id)?.severity === 'warning' ? 'WARN' : 'FAIL';
}
