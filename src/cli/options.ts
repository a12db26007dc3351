/** Option groups shared by commands, and their parsing into library types. */
import { UsageError } from '../core/errors.js';
import { RangeSet } from '../core/rangeset.js';
import { parseSize } from '../core/units.js';
import { PAGE_CODECS, type Codec } from '../formats/kdump/codecs/table.js';

/** Common output options. */
export const outputOptions = {
  json: { type: 'boolean', default: false, describe: 'Print the report as JSON on standard output' },
  quiet: { type: 'boolean', alias: 'q', default: false, describe: 'No report or progress on standard error' },
  debug: { type: 'boolean', default: false, describe: 'Show stack traces of errors' },
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
