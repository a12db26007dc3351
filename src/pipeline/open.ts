/**
 * The input of a pipeline: what openInput opens (a dump, the parts of a
 * split set, `-` for standard input, or a spec with a work directory), or
 * a source the caller already has (an image rendered in memory, a test's
 * counting wrapper).
 */
import type { ByteSource } from '../io/source.js';
import { openDumpSource } from '../formats/registry.js';
import type { DumpReader } from '../formats/types.js';
import { describeInput, inputSpec, openInput, type DumpInput } from './input.js';

export type PipelineInput = DumpInput | ByteSource;

function isSource(input: PipelineInput): input is ByteSource {
  return typeof input === 'object' && 'read' in input && typeof input.read === 'function';
}

export function openPipelineInput(input: PipelineInput, wrap?: (src: ByteSource) => ByteSource): Promise<DumpReader> {
  if (isSource(input)) return openDumpSource(wrap ? wrap(input) : input);
  return openInput(input, wrap);
}

/** The files an input reads (for checks against outputs); none for a source or standard input. */
export function inputPaths(input: PipelineInput): string[] {
  return isSource(input) ? [] : inputSpec(input).paths.filter((p) => p !== '-');
}

/** The input as the user named it. */
export function describePipelineInput(input: PipelineInput): string {
  return isSource(input) ? input.name : describeInput(input);
}
