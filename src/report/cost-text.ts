/** The reading-cost comparison as a table (filter and analyze reports). */
import { formatBytes } from '../core/units.js';
import type { CostParams, StrategyCost } from '../pipeline/cost.js';
import { table } from './table.js';

function seconds(s: number): string {
  if (s >= 3600) return `${(s / 3600).toFixed(1)} h`;
  if (s >= 60) return `${(s / 60).toFixed(1)} min`;
  if (s >= 1) return `${s.toFixed(1)} s`;
  return `${(s * 1000).toFixed(1)} ms`;
}

export function renderCostTable(cost: { params: CostParams; strategies: StrategyCost[] }): string[] {
  const out: string[] = [];
  out.push(
    table(
      cost.strategies.map((s) => [s.name, s.calls, s.pagesRead, formatBytes(s.bytesRead), s.unbackedRead, seconds(s.seconds)]),
      { header: ['strategy', 'pfn_is_ram calls', 'pages read', 'bytes read', 'unbacked read', 'est. time'], indent: '  ' },
    ),
  );
  const p = cost.params;
  out.push(`  (per call ${(p.callSeconds * 1e6).toFixed(1)} µs, reading ${formatBytes(p.readBytesPerSecond)}/s, per fabricated page ${(p.fabricateSeconds * 1e3).toFixed(1)} ms; change with --cost)`);
  for (const s of cost.strategies) out.push(`  ${s.name}: ${s.describe}`);
  return out;
}
