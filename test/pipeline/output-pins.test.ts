/**
 * Regression pins: the exact bytes filterDump writes for fixed synthetic
 * guests in every output format. Restructuring the pipeline must not change
 * a byte; a deliberate change of output (or of synth) updates these hashes in
 * the same commit and says why. What the bytes mean is checked elsewhere, by
 * makedumpfile, libkdumpfile and drgn (test/interop) and the truth manifest.
 */
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
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
    "kdump none -d 1": "66b2d46178eb2e7d63b8495a4860857318d11facd11b5435ff7a12b0aa0fed39",
    "kdump none -d 31": "662a982b41599210b72feb18cab2100f03f8be2bea57a11d8a26374a58255564",
    "kdump zlib -d 1": "dab7593ef2300b36a1fe2e04e9fbbede66426cd30b925131ee03c768d8eac1db",
    "kdump zlib -d 31": "2e5f7c2f9d3a6303799b562ec2284bc77ddd7b354fa1ab70859555ed1169d009",
    "kdump lzo -d 1": "dbaba7ea08740b67d7c320753764186774308acf4b9950eeba6bef5699988db7",
    "kdump lzo -d 31": "1afee5541a5059c503f643c8603de523e09ac83c0509b77c0cef12938eb96151",
    "kdump snappy -d 1": "f9546ea706cb0a8ae8ae4084b6f171432bfa08889cce8c827c6b12ee9435018b",
    "kdump snappy -d 31": "713a47c2625e0443e1947650c459da2e8536406671e159d8bca9aedba3c89370",
    "kdump zstd -d 1": "d11d2f4654ded7706d9bce609570b5aee3d4aaab62de9d4909090404f5fc31fe",
    "kdump zstd -d 31": "bc62214efcb6996871ff14dabb027973bf1ef4ff2bf2bc85a3940af5758284cf",
    "ELF -d 1": "d61c726df5184bc6b54abda66c53c9677cd5c5dd185b946a10af4cdf754468ec",
    "ELF -d 31": "8f1900ffcbf2ccf71230b218d49f9bba8e60efa22114f10ab1153300d2a59f13",
    "flattened lzo -d 31": "4ba4b7ad880635cdd5d4cf54920f3794c2e368d6d539ae73b11230e93605614f"
  },
  "xen-hvm-balloon 6.12 seed 5": {
    "kdump none -d 1": "f24f35bb7f5940034ef854342e841cab4ccc90e5c831445c0cfe431fa735cc0e",
    "kdump none -d 31": "e449898c5c7fa6fc691cb229c257d29e737c5b8e8dfc71bd050f9e2bba22ea34",
    "kdump zlib -d 1": "b4e098327561c87b1ad73c6e2bfe1079c6747ceb9bbbfb53c87a6b2d3ec12177",
    "kdump zlib -d 31": "8543461fe896751362435b869b24941aea02afd7327096c83cc496f53e45707e",
    "kdump lzo -d 1": "2015c294e5fbc2cf2af3debf9526dcc09176cb54e4740dccc63724627af6cca3",
    "kdump lzo -d 31": "4f47835e788926d1567f303a2f97b31960017faccbf8f7bfaca793b450b71729",
    "kdump snappy -d 1": "ad44d0e07e47859cedc02ea75f7c51b25cab0e69c94a614c6cab5e1c8f604966",
    "kdump snappy -d 31": "754c25d533166372a135a33f5a6465bc84b3adc3c2011ee08842b1809e80d910",
    "kdump zstd -d 1": "087069f1252aef17703c7002c9a05eee1050e4ec23c566dcd00879303bb29a1e",
    "kdump zstd -d 31": "cc6f9efcb3cc7486da2eead4190c7464fbb10fb5486814a5359e74bbcef1034c",
    "ELF -d 1": "bd42b8c97fa79541f9d9b0ef27582cf48817fbdf0734fc39de5ea4a43e247dc5",
    "ELF -d 31": "e9d6bc5e52b52b3eecd2ebb37c1e27d6d216e9d418bf1492c58eac7e5a4e9bab",
    "flattened lzo -d 31": "1a43b0dd9c312da5d9df534570e6156b680b14b3c1c92e08b488fb938cf5fd33"
  },
  "plain 5.10 seed 2": {
    "kdump none -d 1": "19f3fb1f1adb0aa7d11196d048fc234dc9759728945a47cce2b322d4fc5c69b8",
    "kdump none -d 31": "b90b68166ac5fc36d9bcb20dc370bdc9e0faa0b0a1df2f5952d0f21bafddfad2",
    "kdump zlib -d 1": "6a6bb5e97fd6f4808565cc19f948b0d0a8543515621018ad5f21db142b3aed04",
    "kdump zlib -d 31": "bea284ba20c8a22ccb1cb4031353b055f1dfc6c06c43540d289c6e69847e5b09",
    "kdump lzo -d 1": "7cbc802016ec0899a95174d49a5246f6de568e36c803cf1fc6796226ff82a107",
    "kdump lzo -d 31": "362333dfcf9f4fa29b9abe5021fe98ed09f92d84b983b659901c2e0a97476e79",
    "kdump snappy -d 1": "d3087bf0db3e570cd5c87ecfefd3e47ecb09bcbf7d5f911d982c72dd59c44ce1",
    "kdump snappy -d 31": "27929b138c1bba327710b03a33dcbfaa1b7dfa65a3c6bcdf5d7f16257c3cb28f",
    "kdump zstd -d 1": "c8f189a7bd5ec369d94d0ce2d3c634380c20850ae68d6bade2d5c8f2bf525390",
    "kdump zstd -d 31": "aea2713f5ed1634bf36f200d699337656139c89d21a55f019095ed9f00f3d395",
    "ELF -d 1": "45e0d7d9b0490e3397b685b0b9616be7c520432cc2e65814f3cd15e481c05fe4",
    "ELF -d 31": "d00b2531023e6473d38d16878b7617db2d7a2ea6492b3a79bffe1bc5e5fb1428",
    "flattened lzo -d 31": "0cd3aa576472622028adfcefdd21d422df6982dcc7b51951921b8fc22ef0a26c"
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
});
