/** Option groups shared by commands, and their parsing into library types. */
import { UsageError } from '../core/errors.js';
import { RangeSet } from '../core/rangeset.js';
import { parseSize } from '../core/units.js';
import { PAGE_CODECS, type Codec } from '../formats/kdump/codecs/table.js';
import type { CostParams } from '../pipeline/cost.js';

/**
 * Common output options. -q is the same in every command: no report (on
 * standard output or error) and no progress; errors and warnings are still
 * printed, the exit code still tells, and what was asked for is still
 * written (the dump, --json, --svg, --reasons, the kernel log).
 */
export const outputOptions = {
  json: { type: 'boolean', default: false, describe: 'Print the report as JSON on standard output (also with -q)' },
  quiet: {
    type: 'boolean',
    alias: 'q',
    default: false,
    describe: 'No report and no progress: only errors and warnings, the exit code, and what is asked for (the dump, --json, files)',
  },
  debug: { type: 'boolean', default: false, describe: 'Show stack traces of errors' },
} as const;

/** How an option is written in messages: `-d (--dump-level)`, `--tail`. */
function flagName(name: string, alias?: string): string {
  const f = (n: string): string => (n.length === 1 ? `-${n}` : `--${n}`);
  return alias ? `${f(name)} (${f(alias)})` : f(name);
}

/**
 * An integer option checked while yargs parses: a value that is not a
 * whole number in [min, max] (decimal, or hex with 0x) is a usage error
 * naming the option and the value as given. Repeated, the last one counts
 * (each is checked). The parser keeps values as text (main.ts turns
 * yargs's number parsing off: it would add repeated numbers up).
 */
export function intOption(name: string, o: { min: number; max?: number; alias?: string; default?: number; describe: string }) {
  const max = o.max ?? Number.MAX_SAFE_INTEGER;
  const range = o.max === undefined ? `a whole number of at least ${o.min}` : `a whole number from ${o.min} to ${o.max}`;
  const check = (v: unknown): number => {
    const t = String(v).trim();
    const n = typeof v === 'number' ? v : /^\d+$/.test(t) ? Number(t) : /^0x[0-9a-f]+$/i.test(t) ? Number.parseInt(t.slice(2), 16) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < o.min || n > max) throw new UsageError(`${flagName(name, o.alias)}: '${String(v)}' is not ${range}`);
    return n;
  };
  return {
    ...(o.alias === undefined ? {} : { alias: o.alias }),
    ...(o.default === undefined ? {} : { default: o.default }),
    describe: o.describe,
    requiresArg: true,
    coerce: (v: unknown): number => {
      const all = Array.isArray(v) ? v : [v];
      return all.map(check).at(-1)!;
    },
  } as const;
}

/**
 * Reading-cost model parameters: `call=2us,read=1GiB/s,fabricate=10ms`
 * (any of the three; the others keep their defaults).
 */
export function parseCostParams(spec: string | undefined, option = '--cost-params'): Partial<CostParams> {
  if (spec === undefined) return {};
  const out: Partial<CostParams> = {};
  for (const part of spec.split(',')) {
    const m = /^\s*(call|read|fabricate)\s*=\s*(\d+(?:\.\d+)?)\s*([a-zA-Zµ/]*)\s*$/.exec(part);
    if (!m) throw new UsageError(`${option}: '${part}' is not NAME=VALUE (call=2us, read=1GiB/s, fabricate=10ms)`);
    const v = Number(m[2]);
    const unit = m[3]!.toLowerCase();
    if (m[1] === 'read') {
      const k = RATE_UNITS[unit];
      if (k === undefined || !(v > 0)) throw new UsageError(`${option}: read='${m[2]}${m[3]}' is not a rate like 1GiB/s`);
      out.readBytesPerSecond = v * k;
    } else {
      const k = TIME_UNITS[unit];
      if (k === undefined) throw new UsageError(`${option}: ${m[1]}='${m[2]}${m[3]}' is not a time like 2us or 10ms`);
      if (m[1] === 'call') out.callSeconds = v * k;
      else out.fabricateSeconds = v * k;
    }
  }
  return out;
}

const RATE_UNITS: Record<string, number> = { 'b/s': 1, 'kib/s': 1024, 'mib/s': 1024 ** 2, 'gib/s': 1024 ** 3, 'kb/s': 1e3, 'mb/s': 1e6, 'gb/s': 1e9 };
const TIME_UNITS: Record<string, number> = { s: 1, ms: 1e-3, us: 1e-6, µs: 1e-6, ns: 1e-9 };

/** --cost-params, shared by filter and analyze. */
export const costParamsOption = {
  'cost-params': {
    type: 'string',
    requiresArg: true,
    describe: 'Parameters of the reading-cost model: call=2us,read=1GiB/s,fabricate=10ms (any of them; the defaults are orders of magnitude, not measurements)',
  },
} as const;

/**
 * --protect RANGES: comma-separated physical address ranges
 * `START-END` (end exclusive) or `START+SIZE`, with sizes like 16M.
 * Returns pfn ranges (rounded outward to whole pages).
 */
export function parseProtect(specs: readonly string[] | undefined, pageSize = 4096): RangeSet | undefined {
  if (!specs || specs.length === 0) return undefined;
  const ranges: Array<{ start: number; end: number }> = [];
  for (const spec of specs.flatMap((s) => s.split(','))) {
    const t = spec.trim();
    if (!t) continue;
    const m = /^([^-+]+)([-+])(.+)$/.exec(t);
    if (!m) throw new UsageError(`--protect '${t}' is not START-END or START+SIZE`);
    const a = parseSize(m[1]!, '--protect start');
    const b = m[2] === '+' ? a + parseSize(m[3]!, '--protect size') : parseSize(m[3]!, '--protect end');
    if (b <= a) throw new UsageError(`--protect '${t}' is empty`);
    ranges.push({ start: Math.floor(a / pageSize), end: Math.ceil(b / pageSize) });
  }
  return RangeSet.from(ranges);
}

/**
 * Compression options, one per codec of the codec table: makedumpfile's
 * letter (-c zlib, -l lzo, -p snappy, -z zstd) with the codec's name as
 * the long form (--zlib, ...).
 */
export const codecOptions: Record<string, { type: 'boolean'; alias: string; describe: string }> = Object.fromEntries(
  PAGE_CODECS.map((c) => [c.letter, { type: 'boolean', alias: c.long, describe: `Compress pages with ${c.name}` }]),
);

/**
 * The codec the compression options choose ('none' without one). At most
 * one may be given, and none with ELF output (`elf`).
 */
export function codecFromArgs(args: Record<string, unknown>, elf: boolean): Codec {
  const chosen = PAGE_CODECS.filter((c) => args[c.letter]);
  if (chosen.length > 1) throw new UsageError(`choose one compression: ${chosen.map((c) => `-${c.letter}`).join(', ')}`);
  const c = chosen[0];
  if (!c) return 'none';
  if (elf) throw new UsageError(`-E (ELF) cannot be combined with -${c.letter}: ELF pages are not compressed`);
  return c.name;
}
