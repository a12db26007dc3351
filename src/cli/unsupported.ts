/**
 * makedumpfile options dumpsieve does not have. `dumpsieve filter --help`
 * lists them with what to use instead; given to any command (or none),
 * each is answered with one line and exit 2 before anything else is
 * parsed.
 */
import { UsageError } from '../core/errors.js';

export interface UnsupportedOption {
  /** As makedumpfile spells it. */
  flag: string;
  /** The answer: what to use instead, or why there is nothing to use. */
  answer: string;
}

export const UNSUPPORTED: readonly UnsupportedOption[] = [
  { flag: '-x', answer: "dumpsieve reads the kernel's layout from the dump's VMCOREINFO alone, without debug information" },
  { flag: '-i', answer: 'dumpsieve reads VMCOREINFO from the dump; for a dump without it, use --flags FILE (a /proc/kpageflags snapshot)' },
  { flag: '-g', answer: "dumpsieve needs no VMCOREINFO file; use dumpsieve info DUMP to see a dump's VMCOREINFO" },
  { flag: '--split', answer: 'dumpsieve writes one dump; it reads split sets (dumpsieve filter PART... OUT)' },
  { flag: '--reassemble', answer: 'use dumpsieve reassemble OUT PART...' },
  { flag: '-R', answer: 'use dumpsieve filter - DUMP (the flattened stream on standard input; add -c, -l, -p or -z to compress)' },
  { flag: '--eppic', answer: 'dumpsieve does not erase kernel data (eppic macros)' },
  { flag: '--config', answer: 'dumpsieve does not erase kernel data (filter config files)' },
  { flag: '-e', answer: 'dumpsieve keeps the struct pages (vmemmap) of excluded pages' },
  { flag: '--mem-usage', answer: 'use dumpsieve analyze DUMP (page classes and the output size of every dump level)' },
  { flag: '--dump-dmesg', answer: 'use dumpsieve dmesg DUMP [OUT]' },
  { flag: '-X', answer: 'dumpsieve filters guest dumps, not Xen hypervisor dumps' },
];

/** The one line for an unsupported option. */
export function unsupportedMessage(u: UnsupportedOption): string {
  return `${u.flag} is not supported: ${u.answer}`;
}

/**
 * Throw the answer for the first unsupported option in `argv` (before a
 * `--`): `-x FILE`, `--split`, `--config=FILE`. No command of dumpsieve
 * has an option of these names, so the answer is the same whatever the
 * command.
 */
export function refuseUnsupported(argv: readonly string[]): void {
  const end = argv.indexOf('--');
  for (const a of end < 0 ? argv : argv.slice(0, end)) {
    const flag = a.startsWith('--') ? a.split('=', 1)[0]! : a;
    const u = UNSUPPORTED.find((x) => x.flag === flag);
    if (u) throw new UsageError(unsupportedMessage(u));
  }
}

/** Help-only declarations for `dumpsieve filter --help`, in their own group. */
export const UNSUPPORTED_GROUP = 'makedumpfile options dumpsieve does not have:';

export function unsupportedOptions(): Record<string, { describe: string; group: string }> {
  return Object.fromEntries(UNSUPPORTED.map((u) => [u.flag.replace(/^-+/, ''), { describe: `not supported: ${u.answer}`, group: UNSUPPORTED_GROUP }]));
}
