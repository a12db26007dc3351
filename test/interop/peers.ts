/**
 * The real tools that judge format correctness: Debian's makedumpfile,
 * python3-libkdumpfile and python3-drgn, and for the page codecs the
 * reference libraries through python3-lzo, python3-snappy and
 * python3-zstandard. Interop suites run only when they
 * are installed; without them they skip with a loud notice, and with
 * DUMPSIEVE_REQUIRE_PEERS=1 (set by .ci/run) a missing peer fails the run.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const PYTHON = '/usr/bin/python3';
export const REQUIRE_PEERS = process.env.DUMPSIEVE_REQUIRE_PEERS === '1';
export const READ_DUMP_PY = join(dirname(fileURLToPath(import.meta.url)), 'read_dump.py');

function has(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return r.status === 0;
}

export const peers = {
  makedumpfile: has('makedumpfile', ['-v']),
  libkdumpfile: has(PYTHON, ['-c', 'import kdumpfile']),
  drgn: has(PYTHON, ['-c', 'import drgn']),
  codecs: has(PYTHON, ['-c', 'import lzo, snappy, zstandard']),
  /** initramfs-tools' hook functions, busybox, and root (for chroot and mknod). */
  initramfs: existsSync('/usr/share/initramfs-tools/hook-functions') && has('busybox', ['true']) && process.getuid?.() === 0,
};

export type PeerName = keyof typeof peers;

/** The Debian packages of every peer (.ci/run installs them). */
export const INSTALL = 'makedumpfile python3-libkdumpfile python3-drgn python3-lzo python3-snappy python3-zstandard initramfs-tools-core busybox-static';

/**
 * True if every named peer is installed. Otherwise prints a notice, or
 * throws when peers are required, so that the calling suite fails instead of
 * skipping.
 */
export function havePeers(suite: string, ...names: PeerName[]): boolean {
  const missing = names.filter((n) => !peers[n]);
  if (missing.length === 0) return true;
  const msg =
    `\n*** INTEROP SKIPPED: ${suite}: missing ${missing.join(', ')}.\n` +
    `*** Install with: apt-get install -y ${INSTALL}\n`;
  if (REQUIRE_PEERS) throw new Error(`${suite}: required peers missing: ${missing.join(', ')} (DUMPSIEVE_REQUIRE_PEERS=1)`);
  process.stderr.write(msg);
  return false;
}

export function makedumpfileVersion(): string {
  return execFileSync('makedumpfile', ['-v'], { encoding: 'utf8' }).split('\n')[0] ?? '';
}

export interface PageReadResult {
  /** pfn -> sha1 hex of the page, or an error class ('excluded', 'oob', 'absent', or a message). */
  pages: Map<number, { ok: true; sha1: string } | { ok: false; error: string }>;
  attrs: Record<string, unknown>;
}

/**
 * Read pages of a dump with a real reader. `ranges` are [start, end) pfn
 * ranges. reader: 'libkdumpfile' (KDUMP_MACHPHYSADDR) or 'drgn'.
 */
export function readWithPeer(reader: 'libkdumpfile' | 'drgn', dump: string, ranges: Array<[number, number]>): PageReadResult {
  const input = JSON.stringify({ reader, dump, ranges });
  const r = spawnSync(PYTHON, [READ_DUMP_PY], { input, encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`read_dump.py (${reader}) failed: ${r.stderr}`);
  const out = JSON.parse(r.stdout) as { pages: Array<[number, string | null, string | null]>; attrs: Record<string, unknown> };
  const pages = new Map<number, { ok: true; sha1: string } | { ok: false; error: string }>();
  for (const [pfn, sha1, err] of out.pages) {
    pages.set(pfn, sha1 !== null ? { ok: true, sha1 } : { ok: false, error: err ?? 'unknown' });
  }
  return { pages, attrs: out.attrs };
}
