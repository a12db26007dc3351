/**
 * SHA-256 of dumpsieve filter output on the committed samples, as the
 * native codec add-ons (lzo 0.4.11, snappy 7.4.3, zstd-napi 0.0.13) wrote
 * it before the codecs were reimplemented (recomputed with those add-ons
 * when the samples were regenerated): codec-identity.test.ts holds
 * the library to them, test/cli/codecs.test.ts the CLI (and the bundle).
 */
import type { Codec } from '../../../src/formats/types.js';

/** [sample, dump level, codec, SHA-256 of the kdump-compressed output, its size]. */
export const PINNED: Array<[string, number, Codec, string, number]> = [
['plain', 0, 'none', '17b88aeac5866bbc6cd6efdecfd5e3b5372b9df2de12e1942bf27e7be06279e6', 31233624],
  ['plain', 0, 'zlib', 'bdf1b28fb6aab0820144cc79491234ae8596857bbd4a0c2afd7f23326f0eeb14', 10800521],
  ['plain', 0, 'lzo', '66c419fcb9f23b98761388158393aabfad4695bba425f6a98e953601a5cabde9', 11917724],
  ['plain', 0, 'snappy', '53c4c7681f4003db3dc43c4672b6dcd048cb0902e7a9b83c50a7b94c59bde7da', 12617202],
  ['plain', 0, 'zstd', '338ab5fcf7cb2a5a19a1f98102292401d71c044b1ddd39af52224fcc3eceda1b', 10549649],
  ['xen-hvm-balloon', 31, 'none', 'f714787db6768a93eb0b9b07795f10c1e1feeca7bcd243f05ead1be7fee0fe23', 8852472],
  ['xen-hvm-balloon', 31, 'zlib', '6f76ffc6086bc40f19cbcbfcd72916982eec47e016e7db03a2296baf62d00774', 1288896],
  ['xen-hvm-balloon', 31, 'lzo', '6d8b1a7e8fac639a02000320eaca0b9958d78dc8bc129aff0a35b80a57453aa3', 1543976],
  ['xen-hvm-balloon', 31, 'snappy', 'f48f338acbcf57b131bbf701bacf74fe1d95ec66fd313ccea20b639701b7c242', 1862326],
  ['xen-hvm-balloon', 31, 'zstd', '77f0621209c0ce91c6825711be7a80121386c64b0f60df65b61e90718b8a4578', 1189099],
];

/** The flattened stream (-F -z -d 31) of the plain sample. */
export const PINNED_FLAT_ZSTD = '4a17d5325f07bfb56387941bcfc8bd76265a9277ab2a33fa29c29192c193fe17';
