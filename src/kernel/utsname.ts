/**
 * struct new_utsname at init_uts_ns + OFFSET(uts_namespace.name): six
 * NUL-padded 65-byte strings (sysname, nodename, release, version,
 * machine, domainname). makedumpfile reads it the same way to check the
 * release and to fill the kdump header's utsname.
 */
import type { Utsname } from '../formats/types.js';
import type { VmcoreInfo } from '../formats/vmcoreinfo.js';
import type { X86_64Translator } from './x86_64.js';

const FIELD = 65;

export async function readUtsname(vi: VmcoreInfo, tr: X86_64Translator): Promise<Utsname | undefined> {
  const sym = vi.symbol('init_uts_ns');
  if (sym === undefined) return undefined;
  // uts_namespace starts with a struct kref (int) before name on older kernels; the default matches makedumpfile.
  const off = vi.offset('uts_namespace.name') ?? 4;
  const buf = new Uint8Array(FIELD * 6);
  await tr.read(sym + BigInt(off), buf.length, buf);
  const field = (i: number): string => {
    const b = buf.subarray(i * FIELD, (i + 1) * FIELD);
    const nul = b.indexOf(0);
    return Buffer.from(b.subarray(0, nul < 0 ? FIELD : nul)).toString('latin1');
  };
  return { sysname: field(0), nodename: field(1), release: field(2), version: field(3), machine: field(4), domainname: field(5) };
}
