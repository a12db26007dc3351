/**
 * Every reference README.md and docs/**.md make to the repository
 * resolves inside it: markdown links (with their #anchors, against the
 * target's headings) and paths written as code (`docs/formats/truth.md`,
 * `src/synth/eras.ts`). Links to the web are not followed.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/built-cli.js';

function markdownFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? markdownFiles(p) : e.name.endsWith('.md') ? [p] : [];
  });
}

const FILES = [join(ROOT, 'README.md'), ...markdownFiles(join(ROOT, 'docs'))];

/** Top-level entries of the repository: a code path starting with one of them names a repository file. */
const TOP = new Set(['bench', 'bin', 'contrib', 'docs', 'samples', 'scripts', 'src', 'test', '.ci', 'README.md', 'package.json']);

/** The text without fenced code blocks (their content is not prose). */
function prose(text: string): string {
  return text.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
}

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/`/g, '')
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchorsOf(file: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of prose(readFileSync(file, 'utf8')).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const s = slug(m[1]!);
    const n = seen.get(s) ?? 0;
    seen.set(s, n + 1);
    out.add(n === 0 ? s : `${s}-${n}`);
  }
  return out;
}

interface Ref {
  file: string;
  line: number;
  target: string;
  kind: 'link' | 'code';
}

function refsOf(file: string): Ref[] {
  const text = prose(readFileSync(file, 'utf8'));
  const refs: Ref[] = [];
  const lineAt = (i: number): number => text.slice(0, i).split('\n').length;
  // Inline links and images outside code spans, and reference definitions.
  const noCode = text.replace(/`[^`\n]*`/g, (s) => ' '.repeat(s.length));
  for (const m of noCode.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) refs.push({ file, line: lineAt(m.index), target: m[1]!, kind: 'link' });
  for (const m of noCode.matchAll(/^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$/gm)) refs.push({ file, line: lineAt(m.index), target: m[1]!, kind: 'link' });
  // Paths written as code: `docs/x.md`, `src/a/b.ts`, `samples/regenerate.mjs`
  // (not the text of a link: [`src/kdumpfile/diskdump.c`](https://...) names another project's file).
  const noLinks = text.replace(/\[[^\]]*\]\([^)]*\)/g, (s) => ' '.repeat(s.length));
  for (const m of noLinks.matchAll(/`([^`\s]+)`/g)) {
    const t = m[1]!;
    if (!/^[\w.-]+(\/[\w.*-]+)*\/?$/.test(t)) continue;
    if (TOP.has(t.split('/')[0]!) || (t.includes('/') && t.endsWith('.md'))) refs.push({ file, line: lineAt(m.index), target: t, kind: 'code' });
  }
  return refs;
}

/** What a build step makes (git-ignored): named in the docs, absent from a fresh clone until built. */
const BUILT = ['bundle/', 'dist/', 'samples/out/'];

/** Why `ref` does not resolve inside the repository, or undefined if it does. */
function problem(ref: Ref): string | undefined {
  const { target } = ref;
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return undefined; // https:, mailto:
  if (ref.kind === 'code' && BUILT.some((b) => target === b.slice(0, -1) || target.startsWith(b))) return undefined;
  const [path, anchor] = target.split('#', 2) as [string, string | undefined];
  const candidates = ref.kind === 'code' ? [resolve(ROOT, path), resolve(dirname(ref.file), path)] : [path === '' ? ref.file : resolve(dirname(ref.file), path)];
  // A code path may name a glob (`src/pipeline/*.ts`): its folder must exist.
  const found = candidates.find((c) => existsSync(c.includes('*') ? dirname(c) : c));
  if (!found) return `${target} does not exist`;
  if (relative(ROOT, found).startsWith('..')) return `${target} is outside the repository`;
  if (anchor !== undefined && found.endsWith('.md') && statSync(found).isFile() && !anchorsOf(found).has(anchor)) return `${target}: no heading with the anchor #${anchor}`;
  return undefined;
}

describe('references in README.md and docs/ resolve inside the repository', () => {
  it('finds the documents and their references', () => {
    expect(FILES.length).toBeGreaterThan(10);
    expect(FILES.flatMap(refsOf).length).toBeGreaterThan(30);
  });

  for (const file of FILES) {
    it(relative(ROOT, file), () => {
      const bad = refsOf(file)
        .map((r) => [r, problem(r)] as const)
        .filter(([, p]) => p !== undefined)
        .map(([r, p]) => `${relative(ROOT, r.file)}:${r.line}: ${p}`);
      expect(bad).toEqual([]);
    });
  }

  it('the checker catches what it must: a missing file, a path outside, a missing anchor', () => {
    const at = (target: string, kind: Ref['kind'] = 'link'): string | undefined => problem({ file: join(ROOT, 'docs/scenarios.md'), line: 1, target, kind });
    expect(at('formats/truth.md')).toBeUndefined();
    expect(at('formats/nothing.md')).toMatch(/does not exist/);
    expect(at('../../etc/passwd')).toMatch(/outside the repository|does not exist/);
    expect(at('kdump.md#when-dumpsieve-fails')).toBeUndefined();
    expect(at('kdump.md#no-such-heading')).toMatch(/no heading/);
    expect(at('docs/formats/truth.md', 'code')).toBeUndefined();
    expect(at('research/makedumpfile-input.md', 'code')).toMatch(/does not exist/);
    expect(at('https://example.org/x')).toBeUndefined();
    expect(at('bundle/dumpsieve', 'code')).toBeUndefined();
    expect(at('bundles/dumpsieve', 'code')).toMatch(/does not exist/);
  });
});
