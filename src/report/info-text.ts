/** `dumpsieve info` for people. */
import { formatBytes } from '../core/units.js';
import type { InfoReport } from '../pipeline/info.js';
import { table } from './table.js';
import { field, terminalText } from './safe.js';

export function renderInfo(r: InfoReport): string {
  const hex = (n: number): string => `0x${n.toString(16)}`;
  const out: string[] = [];
  out.push(`${field(r.file)}: ${r.format}, ${r.arch}, ${formatBytes(r.bytes)}`);
  for (const w of r.warnings ?? []) out.push(`  warning: ${field(w)}`);
  out.push(`  page size ${r.pageSize}, max pfn ${hex(r.maxPfn)} (${formatBytes(r.maxPfn * r.pageSize)} of address space), ${r.cpus} CPU note(s)`);
  out.push(`  RAM pages ${r.ramPages.toLocaleString('en-US')} (${formatBytes(r.ramPages * r.pageSize)})${r.absentPages ? `, ${r.absentPages.toLocaleString('en-US')} without data` : ''}`);
  if (r.utsname) {
    const u = r.utsname;
    out.push(`  utsname: ${[u.sysname, u.nodename, u.release, u.version, u.machine].map(field).join(' ')}`.trimEnd());
  }
  if (r.parts) {
    out.push(`Split set: ${r.parts.length} part(s)`);
    out.push(table(r.parts.map((p) => [field(p.file), `pfn ${hex(p.startPfn)}-${hex(p.endPfn)}`, formatBytes(p.bytes)]), { indent: '  ' }));
  }
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
    if (r.kernelImage?.length) out.push(`Kernel image (protected): ${r.kernelImage.map(([s, e]) => `pfn ${hex(s)}-${hex(e - 1)}`).join(', ')}`);
  } else if (r.kernelError) {
    out.push(`struct page: not usable: ${r.kernelError}`);
  }
  if (r.segments) {
    out.push(`PT_LOAD segments: ${r.segments.count}`);
    out.push(
      table(
        r.segments.first.map((s) => [hex(s.paddr), hex(s.paddr + s.memSize), formatBytes(s.memSize), hex(s.fileOffset), s.fileSize < s.memSize ? `filesz ${hex(s.fileSize)}` : '']),
        { header: ['paddr', 'end', 'size', 'offset', ''], indent: '  ' },
      ),
    );
    if (r.segments.count > r.segments.first.length) out.push(`  … ${r.segments.count - r.segments.first.length} more`);
  }
  return terminalText(`${out.join('\n')}\n`);
}
