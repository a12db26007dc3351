/**
 * Regression pins: the exact bytes filterDump writes for fixed synthetic
 * guests in every output format. Restructuring the pipeline must not change
 * a byte; a deliberate change of output (or of synth) updates these hashes in
 * the same commit and says why. What the bytes mean is checked elsewhere, by
 * makedumpfile, libkdumpfile and drgn (test/interop) and the truth manifest.
 */
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { PassThrough } from 'node:stream';
import { filterDump, type FilterOptions } from '../../src/pipeline/filter.js';
import { buildGuest, GuestImageSource, type GuestOptions } from '../../src/synth/index.js';
import { MemorySink } from '../formats/kdump/memory-sink.js';

const GUESTS: Array<GuestOptions & { key: string }> = [
  { key: 'virtio-balloon 6.1 seed 3', scenario: 'virtio-balloon', kernel: '6.1', seed: 3, size: 64 << 20 },
  { key: 'xen-hvm-balloon 6.12 seed 5', scenario: 'xen-hvm-balloon', kernel: '6.12', seed: 5, size: 64 << 20 },
  { key: 'plain 5.10 seed 2', scenario: 'plain', kernel: '5.10', seed: 2, size: 48 << 20, memoryModel: 'flatmem', physBase: 2 << 20 },
];

type Mode = { name: string } & Partial<FilterOptions>;
const MODES: Mode[] = [
  ...(['none', 'zlib', 'lzo', 'snappy', 'zstd'] as const).flatMap((codec) => [1, 31].map((level) => ({ name: `kdump ${codec} -d ${level}`, codec, dumpLevel: level }))),
  { name: 'ELF -d 1', format: 'elf', dumpLevel: 1 },
  { name: 'ELF -d 31', format: 'elf', dumpLevel: 31 },
  { name: 'flattened lzo -d 31', codec: 'lzo', flattened: true, dumpLevel: 31 },
];

const PINS: Record<string, Record<string, string>> = {
  "virtio-balloon 6.1 seed 3": {
    "kdump none -d 1": "0280b04f945170359e0be17d0cf7c9a7cfdc0950945b35bcaa8a302f462de6ec",
    "kdump none -d 31": "a8721d7715e47315ecf3001432d6b492d145f3bf414bfa921d62e64b33aa8839",
    "kdump zlib -d 1": "99b16c9841cff54ae23fefe207a01eba99796d4508145ce33f696a02c4ad2942",
    "kdump zlib -d 31": "07364332d35b373059ed65f1066431c687720b1b949b0310e7de1cac78546240",
    "kdump lzo -d 1": "88593b46ca0e18a81bf0c23d8bccde535a41c7f8f995e5c75922842a6c253cbb",
    "kdump lzo -d 31": "705e67307370e0e72df8bfa17bfce6a2928cc1ac8271108f2ba9fbb66770eb46",
    "kdump snappy -d 1": "2d997c9e85868352857283ccbcc9f7bb5915a50440316a0f64732ff51adf0f21",
    "kdump snappy -d 31": "83c863bd8634a094db42aedb3596bc5239158b8a93983458dc1657f5a544fd85",
    "kdump zstd -d 1": "ebcc4a544128918eacb541ab4ac22bee12f03b85cfd39527b2d8c8a5bc59c7ba",
    "kdump zstd -d 31": "621d2aef227a2a5a295d30cf855074c0c0c21999ae8708b52ae81539ee191a2c",
    "ELF -d 1": "f5da6fb2840ce0240cc373b5e93777fc264a45e6cc8e0007a180d28e7fbf825b",
    "ELF -d 31": "fd52fe12bd1a4021c22c354a08b911c938ac1db0fb9ac7f744094d097ec3e3af",
    "flattened lzo -d 31": "4eff9df1b1a64d7bd5ab106a0b9fabfea30edf5b6eccf234a068f90717c43b97"
  },
  "xen-hvm-balloon 6.12 seed 5": {
    "kdump none -d 1": "487fad1eaf75dbb2515a3c517f36b0b3c0ff95de14339a209a13d3dc96b37bb6",
    "kdump none -d 31": "4471b1a937c6bc3840b66c4a42e84dda85d94c78f53d896a39bee745f1c42700",
    "kdump zlib -d 1": "c4216defa2dcd60ed3604ddee009c8cb717cd9264a0896de2caa3fb21816fb2b",
    "kdump zlib -d 31": "4e61a57eacfeec2ce6622da695fd1a8e806943eed2c8a7924eb634d1602c4081",
    "kdump lzo -d 1": "bf8572614e3d1cdfdeee2ec739e8331bfd6f78cf23c635207417f4ccd3c0926e",
    "kdump lzo -d 31": "2b8af283eb16ecee72f5e9f6b0be72b41af834a090a5b442e486b17e64434105",
    "kdump snappy -d 1": "a8909fbb7f9156f91272539be872dc796ebcbfd3519e2043099825e9e78f0ac4",
    "kdump snappy -d 31": "f14916fbf2b38ef80ebdd7b5bcd8ab8d23199c829a0822e66bea86cff43e84d1",
    "kdump zstd -d 1": "877a569c303061f4bbaf9d6543da5f89e88ee5e573420cb5db93a217ec83a7c4",
    "kdump zstd -d 31": "f69e5846640a24980511a35877960142d894d09282258aeb6a975476d65985d2",
    "ELF -d 1": "dcd790ebb441d1a45fbf841956415b200c7a7387855ef1a394f79e5b2d9f9f1f",
    "ELF -d 31": "be31a3cf38a57214f7bef6bd143b25312b4cd3c6a597ea24068146b810c77e58",
    "flattened lzo -d 31": "fe1f7464f3f27e877f97421977436dc5c014d3daa6b2cfb25d629ca2914a570e"
  },
  "plain 5.10 seed 2": {
    "kdump none -d 1": "31def28a8f6d79d9cf291797062e2a519e2e5f5dca790e5700dae6a164d13bff",
    "kdump none -d 31": "6f4bc6b3736a8dda9a0c551bd3fdcd5cd65f9b9defde6207253fedd06d3d926f",
    "kdump zlib -d 1": "8d5e0a2eb0d244cecec8e6a4273b1f73c00221e6c48bd549cae2ebfe59ad158f",
    "kdump zlib -d 31": "4744ccb7826e7ba724b5ae32297cba299bc47b78df80e43841dec06a03ad947a",
    "kdump lzo -d 1": "49e6fd4178f3dbb1e8c31afe17afa2f310c1e81e6e9c45d1be43f3dc1530ada3",
    "kdump lzo -d 31": "288bab905345cdaf4f612029b0072ea06804ff0dcec64b06530f698dd4cbc749",
    "kdump snappy -d 1": "3cf2e148dc332539e7cfd7bfea934c216519ea4167eb7a0d177bc141a1ebcfeb",
    "kdump snappy -d 31": "f76035ed9516632d75c255fd31188939eeaebe6576a25ca036096fc7744c74ba",
    "kdump zstd -d 1": "532a90838f47bf7cc92e5e6a27c9e39ad003892a8b56d47d7b452342ed877517",
    "kdump zstd -d 31": "a939ae2a8e00d1e3e04c4fb1278b22d196b7464adc994f71cefaf39f63415a35",
    "ELF -d 1": "c573143413863a2c0caeb4e0db7dadb9cc7b878ce82360ec8f3b433bf9d524e8",
    "ELF -d 31": "d4d98e3740152edaf9c8a2497648223c464ad332609024d1c3d0cd0d27857930",
    "flattened lzo -d 31": "a8fa5324bbe45e2077fc76a1d897344fd55c2d6fa1e4f153f2ad8fc27c340e21"
  }
};

describe('output bytes are pinned', () => {
  for (const gs of GUESTS) {
    it(gs.key, async () => {
      const g = buildGuest(gs);
      const got: Record<string, string> = {};
      for (const { name, ...opts } of MODES) {
        const h = createHash('sha256');
        if (opts.flattened) {
          const s = new PassThrough();
          s.on('data', (b: Buffer) => h.update(b));
          await filterDump({ ...opts, input: new GuestImageSource(g), stdout: s });
        } else {
          const s = new MemorySink();
          await filterDump({ ...opts, input: new GuestImageSource(g), sink: s });
          h.update(s.bytes);
        }
        got[name] = h.digest('hex');
      }
      expect(got).toEqual(PINS[gs.key]);
    });
  }

  // The write pass replays the plan pass's decisions when they fit the
  // budget; without room it classifies again: the same bytes either way.
  it('the same bytes when the write pass classifies again (no room to replay)', async () => {
    const gs = GUESTS[1]!;
    const g = buildGuest(gs);
    for (const { name, ...opts } of MODES.filter((m) => m.name === 'kdump lzo -d 31' || m.name === 'ELF -d 31' || m.name === 'kdump none -d 1')) {
      const s = new MemorySink();
      await filterDump({ ...opts, decisionsBudget: 0, input: new GuestImageSource(g), sink: s });
      expect(createHash('sha256').update(s.bytes).digest('hex'), name).toBe(PINS[gs.key]![name]);
    }
  });

  // The memory knobs move buffers and threads, never bytes: bitmaps
  // written 4 KiB at a time (--cyclic-buffer 4), no workers under
  // --memory-limit 64, workers by CPUs with room to spare.
  it('the same bytes whatever the memory knobs', async () => {
    const cpus = availableParallelism();
    const byCpus = cpus > 1 ? Math.min(4, cpus) : 0;
    let workerChecks = 0;
    for (const gs of GUESTS) {
      const g = buildGuest(gs);
      for (const { name, ...opts } of MODES.filter((m) => m.name === 'kdump zlib -d 1' || m.name === 'kdump zstd -d 31' || m.name === 'kdump none -d 31')) {
        const knobs: Array<[string, Partial<FilterOptions>, number | undefined]> = [
          ['--cyclic-buffer 4', { bitmapBuffer: 4096 }, undefined],
          ['--memory-limit 64', { memoryLimitMiB: 64 }, 0],
          ['--memory-limit 4096', { memoryLimitMiB: 4096 }, opts.codec === 'none' ? 0 : byCpus],
        ];
        for (const [knob, extra, workers] of knobs) {
          const s = new MemorySink();
          const r = await filterDump({ ...opts, ...extra, input: new GuestImageSource(g), sink: s });
          expect(createHash('sha256').update(s.bytes).digest('hex'), `${gs.key} ${name} ${knob}`).toBe(PINS[gs.key]![name]);
          if (workers !== undefined && r.pages.kept >= 4096) {
            expect(r.output.workers, `${gs.key} ${name} ${knob}`).toBe(workers);
            workerChecks++;
          }
        }
      }
    }
    expect(workerChecks).toBeGreaterThanOrEqual(4);
    // Bitmaps of several 4 KiB pieces each (the pinned guests' fit in one).
    const big = buildGuest({ scenario: 'virtio-balloon', kernel: '6.12', seed: 9, size: 384 << 20 });
    expect(Math.ceil(big.maxPfn / 8)).toBeGreaterThan(2 * 4096);
    const hashes = [];
    for (const bitmapBuffer of [undefined, 4096, 12288]) {
      const s = new MemorySink();
      await filterDump({ dumpLevel: 31, codec: 'lzo', bitmapBuffer, input: new GuestImageSource(big), sink: s });
      hashes.push(createHash('sha256').update(s.bytes).digest('hex'));
    }
    expect(new Set(hashes).size).toBe(1);
  });
});
