/**
 * The memory map as SVG: the pfn axis folded into rows, each cell a bucket
 * of pfns coloured by its most frequent class, with addresses down the
 * left and a legend of classes with their page counts. Adjacent cells of
 * one class in a row are drawn as one rectangle.
 */
import { formatBytes } from '../core/units.js';
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
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

export function renderMemoryMapSvg(r: AnalyzeReport, opts: { columns?: number } = {}): string {
  const buckets = r.map.buckets;
  const cols = opts.columns ?? Math.min(256, Math.max(1, buckets.length));
  const rows = Math.max(1, Math.ceil(buckets.length / cols));
  const cellW = Math.max(1, Math.floor(768 / cols));
  const cellH = Math.max(2, Math.min(12, Math.floor(512 / rows)));
  const left = 120;
  const top = 56;
  const mapW = cols * cellW;
  const mapH = rows * cellH;
  const ps = r.input.pageSize;
  const rowBytes = cols * r.map.bucketPfns * ps;
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
      `${formatBytes(r.input.maxPfn * ps)} of physical address space, ${formatBytes(r.ramPages * ps)} RAM; each row ${formatBytes(rowBytes)}, each cell ${formatBytes(r.map.bucketPfns * ps)}`,
    )}</text>`,
  );
  out.push(`<g id="map" shape-rendering="crispEdges">`);
  for (let row = 0; row < rows; row++) {
    let c = 0;
    while (c < cols) {
      const i = row * cols + c;
      if (i >= buckets.length) break;
      const k = buckets[i]!;
      let e = c + 1;
      while (e < cols && row * cols + e < buckets.length && buckets[row * cols + e] === k) e++;
      const name = ACLASS_NAMES[k]!;
      out.push(`<rect x="${left + c * cellW}" y="${top + row * cellH}" width="${(e - c) * cellW}" height="${cellH}" fill="${CLASS_COLORS[name]}"><title>${name}</title></rect>`);
      c = e;
    }
  }
  out.push(`</g>`);
  out.push(`<rect x="${left}" y="${top}" width="${mapW}" height="${mapH}" fill="none" stroke="#888"/>`);
  const labelEvery = Math.max(1, Math.ceil(rows / Math.max(1, Math.floor(mapH / 28))));
  for (let row = 0; row < rows; row += labelEvery) {
    const addr = row * rowBytes;
    out.push(`<text x="${left - 8}" y="${top + row * cellH + Math.min(cellH, 10)}" text-anchor="end" fill="#555" font-family="monospace" font-size="11">0x${addr.toString(16)}</text>`);
  }
  out.push(`<g id="legend">`);
  present.forEach((name, i) => {
    const y = legendTop + i * 20;
    const st = r.classes[name];
    out.push(`<rect x="${left}" y="${y - 11}" width="14" height="14" fill="${CLASS_COLORS[name]}" stroke="#666"/>`);
    out.push(
      `<text x="${left + 22}" y="${y}">${esc(`${LABELS[name]}: ${st.pages.toLocaleString('en-US')} pages (${formatBytes(st.bytes)})`)}</text>`,
    );
  });
  out.push(`</g>`);
  out.push(`</svg>`);
  return `${out.join('\n')}\n`;
}
