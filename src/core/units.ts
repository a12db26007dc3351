/** Sizes and counts for people: parsing `4G`, printing `1.5 GiB`. */
import { UsageError } from './errors.js';

const SUFFIX: Record<string, number> = {
  '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4,
  kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4,
};

/** Parse a byte size: `4096`, `64M`, `4G`, `1.5GiB`, `0x1000`. Binary units. */
export function parseSize(text: string, what = 'size'): number {
  const t = text.trim().toLowerCase();
  if (/^0x[0-9a-f]+$/.test(t)) return checkSafe(Number.parseInt(t, 16), text, what);
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt](?:i?b)?|b)?$/.exec(t);
  if (!m) throw new UsageError(`${what} '${text}' is not a size (examples: 4096, 64M, 4G)`);
  const unitRaw = m[2] ?? '';
  const unit = unitRaw === 'b' ? '' : unitRaw.replace(/^([kmgt])b$/, '$1');
  const mult = SUFFIX[unit];
  if (mult === undefined) throw new UsageError(`${what} '${text}' has an unknown unit`);
  return checkSafe(Math.round(Number(m[1]) * mult), text, what);
}

function checkSafe(v: number, text: string, what: string): number {
  if (!Number.isSafeInteger(v)) throw new UsageError(`${what} '${text}' is too large`);
  return v;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[i]}`;
}

/**
 * A count with en-US digit grouping ("1,234,567"), as toLocaleString('en-US')
 * writes it. Integers are grouped here: Intl would map node's ICU data, about
 * 5 MiB of resident memory in a capture kernel (docs/kdump.md), for commas.
 */
export function formatCount(n: number): string {
  if (!Number.isSafeInteger(n) || Object.is(n, -0)) return n.toLocaleString('en-US');
  const digits = String(Math.abs(n));
  let out = '';
  for (let end = digits.length; end > 0; end -= 3) out = (end > 3 ? ',' : '') + digits.slice(Math.max(0, end - 3), end) + out;
  return n < 0 ? `-${out}` : out;
}

export function percent(part: number, whole: number, digits = 1): string {
  if (whole === 0) return '0%';
  return `${((100 * part) / whole).toFixed(digits)}%`;
}
