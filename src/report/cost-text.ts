/**
 * The reading-cost model as a table (analyze, and filter with --cost). It
 * is a model: page counts of this dump times per-operation costs that are
 * parameters (defaults are orders of magnitude, set with --cost-params),
 * not a measurement of any run. The heading says so and states them.
 */
import { formatBytes } from '../core/units.js';
import type { CostParams, StrategyCost } from '../pipeline/cost.js';
import { table } from './table.js';

function seconds(s: number): string {
  if (s >= 3600) return `${(s / 3600).toFixed(1)} h`;
  if (s >= 60) return `${(s / 60).toFixed(1)} min`;
  if (s >= 1) return `${s.toFixed(1)} s`;
  return `${(s * 1000).toFixed(1)} ms`;
}

/** The parameters, as the heading states them. */
export function describeCostParams(p: CostParams): string {
  return `${(p.callSeconds * 1e6).toFixed(1)} µs per pfn_is_ram answer, ${formatBytes(p.readBytesPerSecond)}/s reading, ${(p.fabricateSeconds * 1e3).toFixed(1)} ms per page the hypervisor fabricates`;
}

export interface CostContext {
  /** Dump level of the filter strategies. */
  level: number;
  /** The RAM oracle's name, if one was given. */
  oracle?: string | undefined;
  /** The strategy this run is (filter), marked in the table. */
  thisRun?: string | undefined;
}

export function renderCostModel(cost: { params: CostParams; strategies: StrategyCost[] }, c: CostContext): string[] {
  const out: string[] = [];
  out.push(`Reading-cost model (an estimate, not measured): this dump's page counts at -d ${c.level}${c.oracle ? ` with RAM oracle ${c.oracle}` : ' without a RAM oracle (unbacked pages unknown)'},`);
  out.push(`  priced at ${describeCostParams(cost.params)} (change with --cost-params)`);
  out.push(
    table(
      cost.strategies.map((s) => [s.name === c.thisRun ? `${s.name} (this run)` : s.name, s.calls, s.pagesRead, formatBytes(s.bytesRead), s.unbackedRead, seconds(s.seconds)]),
      { header: ['strategy', 'pfn_is_ram calls', 'pages read', 'bytes read', 'unbacked read', 'model time'], indent: '  ' },
    ),
  );
  for (const s of cost.strategies) out.push(`  ${s.name}: ${s.describe}`);
  return out;
}
