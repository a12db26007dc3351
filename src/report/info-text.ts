/** `dumpsieve info` for people. */
import { formatBytes } from '../core/units.js';
import type { InfoReport } from '../pipeline/info.js';
import { table } from './table.js';

export function renderInfo(r: InfoReport): string {
  const hex = (n: number): string => `0x${n.toString(16)}`;
  const out: string[] = [];
  out.push(`${r.file}: ${r.format}, ${r.arch}, ${formatBytes(r.bytes)}`);
  out.push(`  page size ${r.pageSize}, max pfn ${hex(r.maxPfn)} (${formatBytes(r.maxPfn * r.pageSize)} of address space), ${r.cpus} CPU note(s)`);
  out.push(`  RAM pages ${r.ramPages.toLocaleString('en-US')} (${formatBytes(r.ramPages * r.pageSize)})${r.absentPages ? `, ${r.absentPages.toLocaleString('en-US')} without data` : ''}`);
  if (r.utsname) out.push(`  utsname: ${r.utsname.sysname} ${r.utsname.nodename} ${r.utsname.release} ${r.utsname.version} ${r.utsname.machine}`.trimEnd());
  const det = Object.entries(r.details);
  if (det.length) {
    out.push('Header:');
    out.push(table(det.map(([k, v]) => [k, String(v)]), { indent: '  ' }));
  }
  if (r.vmcoreinfo) {
    out.push(`VMCOREINFO: ${r.vmcoreinfo.keys} keys, OSRELEASE ${r.vmcoreinfo.osrelease ?? '(none)'}${r.vmcoreinfo.crashTime ? `, crashed ${new Date(r.vmcoreinfo.crashTime * 1000).toISOString()}` : ''}`);
    out.push(table(Object.entries(r.vmcoreinfo.pageKeys).map(([k, v]) => [k, v]), { indent: '  ' }));
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
      const shown = r.kernelImage.slice(0, 4).map(([s, e]) => `[${hex(s)}, ${hex(e)})`);
      if (r.kernelImage.length > 4) shown.push(`… (+${r.kernelImage.length - 4} more)`);
      out.push(`Kernel image (protected): ${pages.toLocaleString('en-US')} pages, pfns ${shown.join(' ')}`);
    }
    if (r.kernelImageMissing) out.push(`Kernel image: not located (${r.kernelImageMissing})`);
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
  return `${out.join('\n')}\n`;
}
