/**
 * The input of a pipeline: a path (opened by openInput: dump files and
 * their compressed copies) or a source the caller already has (an image
 * rendered in memory, a test's counting wrapper).
 */
import type { ByteSource } from '../io/source.js';
import { openDumpSource } from '../formats/registry.js';
import type { DumpReader } from '../formats/types.js';
import { openInput } from './input.js';

export type PipelineInput = string | ByteSource;

export function openPipelineInput(input: PipelineInput, wrap?: (src: ByteSource) => ByteSource): Promise<DumpReader> {
  if (typeof input === 'string') return openInput(input, wrap);
  return openDumpSource(wrap ? wrap(input) : input);
}

/** The path of an input, when it is a file (for checks against outputs). */
export function inputPath(input: PipelineInput): string | undefined {
  return typeof input === 'string' ? input : undefined;
}
