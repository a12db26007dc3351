/** `dumpsieve info` for people. */
import { printable } from '../core/errors.js';
import { formatBytes, formatCount } from '../core/units.js';
import type { InfoReport } from '../pipeline/info.js';
import type { Triage, TriageLine } from '../pipeline/triage.js';
import { table } from './table.js';
import { field, terminalText } from './safe.js';
import { pfnRange, pfnRanges } from './ranges.js';

const n = (x: number): string => formatCount(x);
const h16 = (v: bigint): string => v.toString(16).padStart(16, '0');

/** A log line as dmesg prints it, kept on one line (inner newlines and control bytes escaped). */
function logLine(l: TriageLine): string {
  return `[${String(l.sec).padStart(5, ' ')}.${String(Math.floor(l.nsec / 1000)).padStart(6, '0')}] ${printable(l.text)}`;
}

/** The crash summary: one screen. */
export function renderTriage(t: Triage): string[] {
  const out: string[] = ['Crash summary:'];
  const rows: string[][] = [];
  rows.push(['kernel', `${t.release ?? '(unknown release)'}${t.version ? ` ${t.version}` : ''}`]);
  const when: string[] = [];
  if (t.crashTime !== undefined) when.push(`${new Date(t.crashTime * 1000).toISOString().replace('.000Z', 'Z')} (CRASHTIME)`);
  if (t.uptime) when.push(`${t.uptime.sec}.${String(Math.floor(t.uptime.nsec / 1000)).padStart(6, '0')} s after boot (last log record)`);
  rows.push(['crashed', when.length ? when.join(', ') : 'unknown']);
  rows.push(['panic', t.panic ? logLine(t.panic) : t.logError ? 'unknown: the kernel log cannot be read' : 'no panic or Oops line in the log']);
  if (t.cause && t.panic && t.cause.text !== t.panic.text) rows.push(['first sign', logLine(t.cause)]);
  if (t.cpu) {
    const c = t.cpu;
    const who = `pid ${c.pid}${c.comm ? ` (${c.comm})` : ''}`;
    const cr2 = c.cr2 !== undefined ? `  CR2 ${h16(c.cr2)} (${c.cr2From})` : '';
    rows.push([`CPU ${c.index}`, `${who}: RIP ${h16(c.rip)}  RSP ${h16(c.rsp)}  RBP ${h16(c.rbp)}${cr2}`]);
    rows.push(['', `chosen as ${c.how}; ${t.cpuNotes} NT_PRSTATUS note(s)`]);
  } else {
    rows.push(['CPU', t.cpuNotes ? `not identified among ${t.cpuNotes} NT_PRSTATUS note(s)` : 'no NT_PRSTATUS notes']);
  }
  const m = t.memory;
  const mem = [`${formatBytes(m.ramPages * m.pageSize)} RAM (${n(m.ramPages)} pages), ${n(m.dataPages)} with data`];
  if (m.absentPages) mem.push(`${n(m.absentPages)} left out of the dump`);
  rows.push(['memory', mem.join(', ')]);
  const gone: string[] = [];
  if (m.offlinePages !== undefined) gone.push(`${n(m.offlinePages)} offline (ballooned or unplugged, ${formatBytes(m.offlinePages * m.pageSize)})`);
  if (m.hwpoisonPages) gone.push(`${n(m.hwpoisonPages)} hwpoison`);
  gone.push(`${n(m.notRamPages)} not RAM below the highest pfn (${formatBytes(m.notRamPages * m.pageSize)})`);
  rows.push(['', gone.join(', ')]);
  const d = t.dump;
  const level = d.level !== undefined ? `dump level ${d.level}` : d.filtered ? 'filtered (some RAM has no data)' : 'complete (no dump level)';
  rows.push(['dump', `${d.format}, ${level}${d.compression && d.compression !== 'none' ? `, ${d.compression}` : ''}; written by ${d.tool}`]);
  if (t.log) {
    const lost = t.log.lost ? `, ${n(t.log.lost)} older records overwritten` : '';
    rows.push(['log', `${t.log.format === 'lockless' ? 'lockless ring buffer' : 'log_buf'}: ${n(t.log.records)} records${lost}${t.log.warnings.length ? `; ${t.log.warnings.length} warning(s), see dumpsieve dmesg` : ''}`]);
  } else if (t.logError) rows.push(['log', printable(t.logError)]);
  out.push(table(rows, { indent: '  ' }));
  if (t.before.length) {
    out.push(`Last lines before the ${t.cause && t.panic && t.cause.text !== t.panic.text ? 'first sign' : 'panic'}:`);
    for (const l of t.before) out.push(`  ${logLine(l)}`);
  }
  return out;
}

export function renderInfo(r: InfoReport): string {
  const hex = (n: number): string => `0x${n.toString(16)}`;
  const out: string[] = [];
  out.push(`${field(r.file)}: ${r.format}, ${r.arch}, ${formatBytes(r.bytes)}`);
  for (const w of r.warnings ?? []) out.push(`  warning: ${field(w)}`);
  out.push(`  page size ${r.pageSize}, max pfn ${hex(r.maxPfn)} (${formatBytes(r.maxPfn * r.pageSize)} of address space), ${r.cpus} CPU note(s)`);
  out.push(`  RAM pages ${formatCount(r.ramPages)} (${formatBytes(r.ramPages * r.pageSize)})${r.absentPages ? `, ${formatCount(r.absentPages)} without data` : ''}`);
  if (r.utsname) {
    const u = r.utsname;
    out.push(`  utsname: ${[u.sysname, u.nodename, u.release, u.version, u.machine].map(field).join(' ')}`.trimEnd());
  }
  if (r.parts) {
    out.push(`Split set: ${r.parts.length} part(s)`);
    out.push(table(r.parts.map((p) => [field(p.file), `pfns ${pfnRange(p.startPfn, p.endPfn)}`, formatBytes(p.bytes)]), { indent: '  ' }));
  }
  if (r.triage) out.push(...renderTriage(r.triage));
  const det = Object.entries(r.details);
  if (det.length) {
    out.push('Header:');
    out.push(table(det.map(([k, v]) => [k, field(String(v))]), { indent: '  ' }));
  }
  if (r.eraseinfo !== undefined) {
    out.push('eraseinfo:');
    for (const l of r.eraseinfo.replace(/\n$/, '').split('\n')) out.push(`  ${field(l)}`);
  }
  if (r.vmcoreinfo) {
    out.push(`VMCOREINFO: ${r.vmcoreinfo.keys} keys, OSRELEASE ${field(r.vmcoreinfo.osrelease ?? '(none)')}${r.vmcoreinfo.crashTime ? `, crashed ${Math.abs(r.vmcoreinfo.crashTime) <= 8.64e12 ? new Date(r.vmcoreinfo.crashTime * 1000).toISOString() : r.vmcoreinfo.crashTime}` : ''}`);
    out.push(table(Object.entries(r.vmcoreinfo.pageKeys).map(([k, v]) => [field(k), field(v)]), { indent: '  ' }));
  } else {
    out.push('VMCOREINFO: none (only -d 0 and -d 1 can be used without a flag table)');
  }
  if (r.kernel) {
    out.push(`Memory model: ${r.kernel.layout}`);
    const d = r.kernel.decoder;
    if (d) {
      out.push('Page types:');
      out.push(
        table(
          [
            ['buddy (free)', d.buddy],
            ['offline', d.offline],
            ['slab', d.slab],
            ['hugetlb', d.hugetlb],
            ['unaccepted', d.unaccepted],
          ],
          { indent: '  ' },
        ),
      );
    }
    if (r.kernelImage?.length) {
      const pages = r.kernelImage.reduce((a, [s, e]) => a + e - s, 0);
      out.push(`Kernel image (protected): ${formatCount(pages)} pages, pfns ${pfnRanges(r.kernelImage.slice(0, 4), r.kernelImage.length - 4)}`);
    }
    if (r.kernelImageMissing) out.push(`Kernel image: not located (${r.kernelImageMissing})`);
  } else if (r.kernelError) {
    out.push(`struct page: not usable: ${r.kernelError}`);
  }
  if (r.segments) {
    out.push(`PT_LOAD segments: ${r.segments.count}`);
    out.push(
      table(
        r.segments.first.map((s) => [`[${hex(s.paddr)}, ${hex(s.paddr + s.memSize)})`, formatBytes(s.memSize), hex(s.fileOffset), s.fileSize < s.memSize ? `filesz ${hex(s.fileSize)}` : '']),
        { header: ['physical addresses', 'size', 'file offset', ''], indent: '  ' },
      ),
    );
    if (r.segments.count > r.segments.first.length) out.push(`  … ${r.segments.count - r.segments.first.length} more`);
  }
  return terminalText(`${out.join('\n')}\n`);
}
