/**
 * `synth`: synthetic guest images with a truth manifest.
 *
 * synthesize() checks its options (UsageError before anything is written),
 * plans the guest, then streams OUT (an ELF /proc/vmcore-style image) and
 * its side files OUT.truth, OUT.kpageflags, OUT.backed and, per scenario,
 * OUT.memtypes, OUT.p2m, OUT.virtio-mem, OUT.kexec. Every file goes
 * through an atomic sink: a failure leaves none of them behind.
 */
import { AtomicFileSink } from '../io/sink.js';
import { checkOutputs } from '../io/paths.js';
import { KpageflagsTableWriter } from '../formats/kpageflags/table.js';
import { ERAS as ERA_DEFS, DEFAULT_ERA } from './eras.js';
import { FAULT_DEFS } from './faults.js';
import { buildGuest, type Guest, type GuestOptions } from './guest.js';
import { writeImage } from './image.js';
import type { PageClass } from './plan.js';
import { SCENARIO_DEFS } from './scenarios.js';
import { sideFileSuffixes, textSideFiles, writeGuestKpageflags, writeGuestTruth } from './side-files.js';

export { buildGuest, type Guest, type GuestOptions } from './guest.js';
export { openTruth, readTruth, type TruthHeader, type TruthRun, type TruthReader } from './truth.js';
export { PAGE_CLASSES, MEMMAP_STATES, type PageClass, type MemmapState } from './plan.js';
export { stampedPfn } from './content.js';
export { GuestImageSource } from './source.js';
export { imageLayout, imageSegments, type ImageSegment } from './image.js';

export interface SynthOptions extends GuestOptions {
  /** Path of the image; side files are written next to it (OUT.truth, …). */
  out: string;
  /** Replace existing files (the image and its side files). */
  force?: boolean;
  onProgress?: (doneBytes: number, totalBytes: number) => void;
}

export interface SynthResult {
  /** Paths written: image first. */
  files: { image: string; truth: string; kpageflags: string; [side: string]: string };
  scenario: string;
  kernel: string;
  seed: number;
  /** Guest RAM in bytes. */
  size: number;
  /** Pfns the truth and the kpageflags table cover. */
  maxPfn: number;
  /** PT_LOAD segments of the image. */
  ptLoads: number;
  /** Pages per class. */
  pages: Record<PageClass, number>;
  /** Pages in the image that carry data (the rest are zero holes). */
  dataPages: number;
  /** Apparent size of the image file and bytes actually written. */
  imageBytes: number;
  writtenBytes: number;
}

export interface NamedItem {
  name: string;
  description: string;
}

/** Scenarios, for the CLI's help and validation. */
export const SCENARIOS: readonly NamedItem[] = SCENARIO_DEFS.map((s) => ({ name: s.name, description: s.description }));

/** Kernel eras (`--kernel`); the default is DEFAULT_KERNEL. */
export const ERAS: readonly NamedItem[] = ERA_DEFS.map((e) => ({ name: e.name, description: e.description }));
export const DEFAULT_KERNEL = DEFAULT_ERA;

/** Fault knobs (`--fault`), with the scenarios that can host each. */
export const FAULTS: readonly (NamedItem & { hosts: readonly string[] })[] = FAULT_DEFS.map((f) => ({
  name: f.name,
  description: f.description,
  hosts: f.hosts,
}));

export async function synthesize(opts: SynthOptions): Promise<SynthResult> {
  const g = buildGuest(opts);
  const out = opts.out;
  const suffixes = sideFileSuffixes(g);
  await checkOutputs({ outputs: [out, ...['.truth', '.kpageflags', ...suffixes].map((x) => `${out}${x}`)], inputs: [], force: opts.force ?? false });
  const image = await AtomicFileSink.create(out);
  const sinks: Array<{ abort(): Promise<void> }> = [image];
  try {
    const truth = await AtomicFileSink.create(`${out}.truth`);
    sinks.push(truth);
    const kpf = await KpageflagsTableWriter.create(`${out}.kpageflags`, g.maxPfn);
    sinks.push(kpf);
    const textSinks = new Map<string, AtomicFileSink>();
    for (const suffix of suffixes) {
      const s = await AtomicFileSink.create(`${out}${suffix}`);
      sinks.push(s);
      textSinks.set(suffix, s);
    }
    const stats = await writeImage(g, image, opts.onProgress);
    await writeGuestTruth(g, truth);
    await writeGuestKpageflags(g, kpf);
    for (const t of textSideFiles(g)) {
      const s = textSinks.get(t.suffix)!;
      const b = Buffer.from(t.text, 'utf8');
      await s.write(b, 0);
      await s.setLength(b.length);
    }
    // Side files first: the image appears last, when everything beside it is in place.
    await truth.commit();
    await kpf.commit();
    for (const s of textSinks.values()) await s.commit();
    await image.commit();
    const files: SynthResult['files'] = { image: out, truth: `${out}.truth`, kpageflags: `${out}.kpageflags` };
    for (const suffix of suffixes) files[suffix.slice(1)] = `${out}${suffix}`;
    return summary(g, files, stats.fileSize, stats.written, stats.loadPages - stats.zeroPages);
  } catch (err) {
    await Promise.all(sinks.map((s) => s.abort()));
    throw err;
  }
}

function summary(g: Guest, files: SynthResult['files'], imageBytes: number, writtenBytes: number, dataPages: number): SynthResult {
  return {
    files,
    scenario: g.scenario,
    kernel: g.era.name,
    seed: g.seed,
    size: g.size,
    maxPfn: g.maxPfn,
    ptLoads: g.loads.length + (g.textLoad ? 1 : 0),
    pages: g.plan.classCounts(),
    dataPages,
    imageBytes,
    writtenBytes,
  };
}
