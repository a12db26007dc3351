/**
 * The memory map as SVG: the pfn axis folded into rows, each cell a bucket
 * of pfns coloured by its most frequent class, with addresses down the
 * left and a legend of classes with their page counts. Adjacent cells of
 * one class in a row are drawn as one rectangle.
 */
import { field } from './safe.js';
import { formatBytes, formatCount } from '../core/units.js';
import { ACLASS_NAMES, type AnalyzeReport, type AClassName } from '../pipeline/analyze.js';

export const CLASS_COLORS: Record<AClassName, string> = {
  hole: '#f2f2f2',
  absent: '#bdbdbd',
  kernel: '#3b6ea8',
  cache: '#4caf72',
  'cache-private': '#9ad4a8',
  user: '#e08a3c',
  free: '#c9c3e6',
  unaccepted: '#8c6d4f',
  hwpoison: '#d62728',
  offline: '#8e44ad',
  'offline-fallback': '#d2a8e6',
  'not-ram': '#262626',
  device: '#17becf',
};

const LABELS: Record<AClassName, string> = {
  hole: 'hole (not RAM in the image)',
  absent: 'RAM without data in the input',
  kernel: 'kernel and other kept pages',
  cache: 'page cache',
  'cache-private': 'page cache with private data',
  user: 'user data (anon, hugetlb)',
  free: 'free (buddy)',
  unaccepted: 'unaccepted',
  hwpoison: 'hwpoison',
  offline: 'offline (PG_offline)',
  'offline-fallback': 'offline, found without the VMCOREINFO key',
  'not-ram': 'not backed, not flagged (oracle)',
  device: 'device memory',
};

function esc(s: string): string {
  // Control characters are not allowed in XML 1.0: shown as \xNN.
  return field(s).replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

type Line = { kind: 'row'; start: number; cells: number[] } | { kind: 'gap'; pfns: number };

/** Most frequent value in cells[from, to), holes losing to any class. */
function mode(cells: readonly number[], from: number, to: number): number {
  const n = new Map<number, number>();
  for (let i = from; i < to; i++) n.set(cells[i]!, (n.get(cells[i]!) ?? 0) + 1);
  let best = 0;
  let bestN = 0;
  for (const [k, v] of n) if (k !== 0 && v > bestN) [best, bestN] = [k, v];
  return best;
}

/**
 * Rows of the map: one per window holding RAM (or k consecutive ones
 * folded together when there are many), with a gap line wherever the
 * address space skips windows without RAM.
 */
function layout(r: AnalyzeReport, maxRows: number): { lines: Line[]; rowPfns: number; cols: number } {
  const { windowPfns, windows } = r.map;
  const k = Math.max(1, Math.ceil(windows.length / maxRows));
  const cols = windows[0]?.cells.length ?? 256;
  const lines: Line[] = [];
  let next = 0;
  for (let g = 0; g < windows.length; g += k) {
    const group = windows.slice(g, g + k);
    const start = group[0]!.start;
    if (start > next) lines.push({ kind: 'gap', pfns: start - next });
    const fine = group.flatMap((w) => w.cells);
    const cells: number[] = [];
    for (let c = 0; c < cols; c++) cells.push(mode(fine, c * group.length, (c + 1) * group.length));
    lines.push({ kind: 'row', start, cells });
    next = group[group.length - 1]!.start + windowPfns;
  }
  if (r.input.maxPfn > next) lines.push({ kind: 'gap', pfns: r.input.maxPfn - next });
  return { lines, rowPfns: k * windowPfns, cols };
}

export function renderMemoryMapSvg(r: AnalyzeReport, opts: { maxRows?: number } = {}): string {
  const ps = r.input.pageSize;
  const { lines, rowPfns, cols } = layout(r, opts.maxRows ?? 160);
  const cellW = Math.max(1, Math.floor(768 / cols));
  const dataRows = lines.filter((l) => l.kind === 'row').length;
  const cellH = Math.max(3, Math.min(14, Math.floor(560 / Math.max(1, dataRows))));
  const gapH = 14;
  const left = 120;
  const top = 56;
  const mapW = cols * cellW;
  const yOf: number[] = [];
  let y = top;
  for (const l of lines) {
    yOf.push(y);
    y += l.kind === 'row' ? cellH : gapH;
  }
  const mapH = y - top;
  const present = ACLASS_NAMES.filter((n) => r.classes[n].pages > 0);
  const legendTop = top + mapH + 32;
  const height = legendTop + present.length * 20 + 24;
  const width = left + mapW + 24;

  const out: string[] = [];
  out.push(`<?xml version="1.0" encoding="UTF-8"?>`);
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<title>${esc(`Memory map of ${r.input.file}`)}</title>`);
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(
    `<text x="${left}" y="22" font-size="15" font-weight="bold">${esc(r.input.file)}${r.input.osrelease ? ` — Linux ${esc(r.input.osrelease)}` : ''}</text>`,
  );
  out.push(
    `<text x="${left}" y="40" fill="#555">${esc(
      `${formatBytes(r.ramPages * ps)} RAM in ${formatBytes(r.input.maxPfn * ps)} of physical address space; each row ${formatBytes(rowPfns * ps)}, each cell ${formatBytes((rowPfns / cols) * ps)}`,
    )}</text>`,
  );
  out.push(`<g id="map" shape-rendering="crispEdges">`);
  lines.forEach((l, li) => {
    const ly = yOf[li]!;
    if (l.kind === 'gap') {
      out.push(`<rect x="${left}" y="${ly}" width="${mapW}" height="${gapH}" fill="${CLASS_COLORS.hole}" stroke="#bbb" stroke-dasharray="4 3"/>`);
      out.push(`<text x="${left + mapW / 2}" y="${ly + gapH - 3}" text-anchor="middle" fill="#777" font-size="10">${esc(`no RAM for ${formatBytes(l.pfns * ps)}`)}</text>`);
      return;
    }
    let c = 0;
    while (c < cols) {
      const k = l.cells[c]!;
      let e = c + 1;
      while (e < cols && l.cells[e] === k) e++;
      const name = ACLASS_NAMES[k]!;
      out.push(`<rect x="${left + c * cellW}" y="${ly}" width="${(e - c) * cellW}" height="${cellH}" fill="${CLASS_COLORS[name]}"><title>${name}</title></rect>`);
      c = e;
    }
  });
  out.push(`</g>`);
  out.push(`<rect x="${left}" y="${top}" width="${mapW}" height="${mapH}" fill="none" stroke="#888"/>`);
  // Address labels: after every gap, and on data rows at least 28 px apart.
  let lastLabel = -Infinity;
  let afterGap = true;
  lines.forEach((l, li) => {
    if (l.kind === 'gap') {
      afterGap = true;
      return;
    }
    const ly = yOf[li]!;
    if (!afterGap && ly - lastLabel < 28) return;
    afterGap = false;
    lastLabel = ly;
    out.push(
      `<text x="${left - 8}" y="${ly + Math.min(cellH, 10)}" text-anchor="end" fill="#555" font-family="monospace" font-size="11">0x${(l.start * ps).toString(16)}</text>`,
    );
  });
  out.push(`<g id="legend">`);
  present.forEach((name, i) => {
    const ly = legendTop + i * 20;
    const st = r.classes[name];
    out.push(`<rect x="${left}" y="${ly - 11}" width="14" height="14" fill="${CLASS_COLORS[name]}" stroke="#666"/>`);
    out.push(`<text x="${left + 22}" y="${ly}">${esc(`${LABELS[name]}: ${formatCount(st.pages)} pages (${formatBytes(st.bytes)})`)}</text>`);
  });
  out.push(`</g>`);
  out.push(`</svg>`);
  return `${out.join('\n')}\n`;
}
