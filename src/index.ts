/**
 * dumpsieve as a library: every command is a call here.
 */
export { filterDump, type FilterOptions, type FilterReport, type OutputFormat } from './pipeline/filter.js';
export { analyzeDump, type AnalyzeOptions, type AnalyzeReport } from './pipeline/analyze.js';
export { validateDump, type ValidateOptions, type ValidateReport, type Finding } from './pipeline/validate.js';
export { inspectDump, type InfoReport } from './pipeline/info.js';
export type { Triage } from './pipeline/triage.js';
export { readKernelLog, readKernelLogOf, type KernelLogReport, type KernelLogRecord } from './pipeline/dmesg.js';
export { openInput } from './pipeline/input.js';
export { openDump, openDumpSource } from './formats/registry.js';
export { synthesize, SCENARIOS, ERAS, FAULTS } from './synth/index.js';
export { oracleFromSpecs } from './ram/chain.js';
export type { RamOracle, RamSpan } from './ram/oracle.js';
export { DumpError, UsageError, InputError, type DumpErrorCode } from './core/errors.js';
export { RangeSet } from './core/rangeset.js';
export type { DumpReader, DumpInfo, DumpWriter, Codec } from './formats/types.js';
export { renderMemoryMapSvg } from './report/svg.js';
