/**
 * --ram-oracle SPEC...: build the callback chain from model specs.
 *
 *   none              no callback (every pfn is RAM)
 *   ranges:FILE       backed pfn ranges (dumpsieve-backed-ranges)
 *   xen-hvm:FILE      HVMOP_get_mem_type answers (dumpsieve-xen-hvm-memtypes)
 *   xen-pv:FILE       the P2M (dumpsieve-xen-pv-p2m)
 *   virtio-mem:FILE   device ranges and plugged blocks (dumpsieve-virtio-mem)
 *   module:PATH       a JavaScript module whose default export is a RamOracle
 *                     or a function returning one
 *
 * Several specs chain with the kernel's vmcore_cb semantics (5.16+): any
 * "not RAM" wins. With api 'legacy' (register_oldmem_pfn_is_ram, up to
 * 5.15) only one hook can be registered, and virtio-mem had none.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DumpError, InputError, UsageError } from '../core/errors.js';
import { ALL_RAM, type RamOracle } from './oracle.js';
import { ChainOracle, RangesModel, VirtioMemModel, XenHvmModel, XenPvModel } from './models.js';
import { readBackedRanges, readVirtioMem, readXenHvmMemTypes, readXenPvP2m } from './files.js';

export const ORACLE_KINDS = ['none', 'ranges', 'xen-hvm', 'xen-pv', 'virtio-mem', 'module'] as const;
export type OracleApi = 'list' | 'legacy';

export async function oracleFromSpec(spec: string): Promise<RamOracle> {
  try {
    return await modelFromSpec(spec);
  } catch (err) {
    // A side file that cannot be read is a bad argument (exit 2), like a malformed one.
    if (err instanceof DumpError && err.code === 'IO') throw new InputError(err.detail, { file: err.file, cause: err });
    throw err;
  }
}

async function modelFromSpec(spec: string): Promise<RamOracle> {
  const colon = spec.indexOf(':');
  const kind = colon < 0 ? spec : spec.slice(0, colon);
  const arg = colon < 0 ? '' : spec.slice(colon + 1);
  if (kind === 'none') {
    if (arg) throw new UsageError(`--ram-oracle none takes no file`);
    return ALL_RAM;
  }
  if (!(ORACLE_KINDS as readonly string[]).includes(kind)) {
    throw new UsageError(`unknown --ram-oracle model '${kind}' (known: ${ORACLE_KINDS.join(', ')})`);
  }
  if (!arg) throw new UsageError(`--ram-oracle ${kind} needs a file: ${kind}:FILE`);
  const name = `${kind}:${arg}`;
  switch (kind) {
    case 'xen-hvm': {
      const d = await readXenHvmMemTypes(arg);
      // Pfns the file does not list are mmio_dm (docs/formats/oracle-inputs.md).
      const runs = d.runs.map((r) => ({ start: r.start, end: r.start + r.count, type: r.value }));
      return new XenHvmModel(name, fillGaps(runs, 'mmio_dm'));
    }
    case 'xen-pv': {
      const d = await readXenPvP2m(arg);
      const runs: Array<{ start: number; end: number; kind: 'valid' | 'invalid' | 'identity' }> = d.runs.map((r) => ({
        start: r.start,
        end: r.start + r.count,
        kind: r.value.kind === 'mfn' ? 'valid' : r.value.kind,
      }));
      const filled = fillGaps(runs.map((r) => ({ ...r, type: r.kind })), 'invalid', d.p2mSize).map((r) => ({ start: r.start, end: r.end, kind: r.type }));
      // At or beyond xen_p2m_size __pfn_to_mfn returns identity frames.
      filled.push({ start: d.p2mSize, end: Number.MAX_SAFE_INTEGER, kind: 'identity' });
      return new XenPvModel(name, filled);
    }
    case 'virtio-mem': {
      const d = await readVirtioMem(arg);
      return new VirtioMemModel(
        name,
        d.devices.map((dev) => ({
          start: dev.addr / 4096,
          end: (dev.addr + dev.size) / 4096,
          blockPfns: dev.blockSize / 4096,
          plugged: dev.plugged.map((p) => ({ start: p.addr / 4096, end: (p.addr + p.size) / 4096 })),
          errors: (dev.errors ?? []).map((p) => ({ start: p.addr / 4096, end: (p.addr + p.size) / 4096 })),
        })),
      );
    }
    case 'ranges': {
      const d = await readBackedRanges(arg);
      return new RangesModel(name, d.runs.map((r) => ({ start: r.start, end: r.start + r.count })));
    }
    default:
      return loadModule(arg);
  }
}

/** Runs with the gaps between them (up to `end`) filled with `fill`. */
function fillGaps<T extends string>(runs: Array<{ start: number; end: number; type: T }>, fill: T, end?: number): Array<{ start: number; end: number; type: T }> {
  const out: Array<{ start: number; end: number; type: T }> = [];
  let at = 0;
  for (const r of runs) {
    if (r.start > at) out.push({ start: at, end: r.start, type: fill });
    out.push(r);
    at = r.end;
  }
  const stop = end ?? Number.MAX_SAFE_INTEGER;
  if (at < stop) out.push({ start: at, end: stop, type: fill });
  return out;
}

async function loadModule(path: string): Promise<RamOracle> {
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(resolve(path)).href)) as { default?: unknown };
  } catch (err) {
    throw new InputError(`cannot load the oracle module: ${(err as Error).message.split('\n')[0]}`, { file: path });
  }
  let o = mod.default;
  if (typeof o === 'function') o = await (o as () => unknown)();
  const cand = o as Partial<RamOracle> | undefined;
  if (!cand || typeof cand.span !== 'function') {
    throw new InputError('the oracle module must export default an object with span(pfn, limit) (or a function returning one)', { file: path });
  }
  const name = typeof cand.name === 'string' ? cand.name : `module:${path}`;
  const span = cand.span.bind(cand);
  const callsFor = typeof cand.callsFor === 'function' ? cand.callsFor.bind(cand) : undefined;
  return {
    name,
    span(pfn, limit) {
      const s = span(pfn, limit);
      if (!s || typeof s.ram !== 'boolean' || !Number.isSafeInteger(s.count) || s.count < 1) {
        throw new InputError(`span(${pfn}) returned ${JSON.stringify(s)}, not { ram: boolean, count: integer >= 1 }`, { file: path });
      }
      return s;
    },
    ...(callsFor ? { callsFor } : {}),
  };
}

export async function oracleFromSpecs(specs: readonly string[], api: OracleApi = 'list'): Promise<RamOracle> {
  const models = await Promise.all(specs.flatMap((s) => s.split(',')).filter((s) => s).map(oracleFromSpec));
  const real = models.filter((m) => m !== ALL_RAM);
  if (api === 'legacy') {
    if (real.length > 1) throw new UsageError('kernels up to 5.15 register a single pfn_is_ram hook: give one --ram-oracle');
    if (real.some((m) => (m as { kind?: string }).kind === 'virtio-mem')) {
      throw new UsageError('virtio-mem registers its vmcore callback only from Linux 5.16 (use the list api)');
    }
  }
  if (real.length === 0) return ALL_RAM;
  if (real.length === 1) return real[0]!;
  return new ChainOracle(real, api);
}
