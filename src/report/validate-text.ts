/** `dumpsieve validate` for people: findings first, then what ran. */
import { field, terminalText } from './safe.js';
import { describeRanges, type ValidateReport } from '../pipeline/validate.js';

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
  if (r.findings.length === 0) out.push('No findings.');
  for (const f of r.findings) {
    out.push('');
    out.push(`${f.severity.toUpperCase()} ${f.id}: ${f.title}: ${f.count.toLocaleString('en-US')} ${f.id === 'offline-total' ? 'pages of difference' : 'pages'}`);
    if (f.detail) out.push(`  ${f.detail}`);
    if (f.ranges.length) out.push(`  pfns ${describeRanges(f)}`);
    out.push(wrap(f.why, 96, '  '));
  }
  out.push('');
  out.push('Checks:');
  for (const c of r.checks) {
    out.push(`  ${c.ran ? (c.count ? 'FAIL' : 'ok  ') : 'skip'}  ${c.id.padEnd(20)} ${c.ran ? c.title : `${c.title} (${c.skipped})`}`);
  }
  for (const n of r.notes) out.push(`Note: ${n}`);
  return terminalText(`${out.join('\n')}\n`);
}
