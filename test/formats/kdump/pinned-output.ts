/**
 * SHA-256 of dumpsieve filter output on the committed samples, as the
 * native codec add-ons (lzo 0.4.11, snappy 7.4.3, zstd-napi 0.0.13) wrote
 * it before the codecs were reimplemented: codec-identity.test.ts holds
 * the library to them, test/cli/codecs.test.ts the CLI (and the bundle).
 */
import type { Codec } from '../../../src/formats/types.js';

/** [sample, dump level, codec, SHA-256 of the kdump-compressed output, its size]. */
export const PINNED: Array<[string, number, Codec, string, number]> = [
  ['plain', 0, 'none', 'acfb5801f1c23096b3b98f41332fa97e361ca58f4e0a48055e8b0ce8752574eb', 31250104],
  ['plain', 0, 'zlib', '25c2f2f3a492c35c18adad7c264a75d33e8f1ea79b8eb015b60a2056b6f5c143', 10582304],
  ['plain', 0, 'lzo', 'bd7cbe4336cb57aefc3bbc6f26e1fa379aa2de7e5a4ad7388fea188b55252aeb', 11762767],
  ['plain', 0, 'snappy', '8744d260039dcf1efab02ac395a4aed9509af9a13a510db436a264f67add0544', 12474198],
  ['plain', 0, 'zstd', 'f1afae5da2abbf9ea9c32cad562d334bb8b064c5185758e02b996e79f2ef51ff', 10328117],
  ['xen-hvm-balloon', 31, 'none', '2bc22c2911dffd44ccf77be1512c2823bdc1eff09a503c55ecdeac996a46f749', 9598144],
  ['xen-hvm-balloon', 31, 'zlib', '03abd26d62e6a8de14fb23b0d0214bdabb85ea9c6bf180b97b36d6787b658354', 1479470],
  ['xen-hvm-balloon', 31, 'lzo', '384992968bf376a7d9f52b1d165972b8e2fdeab9c729caf425d1185897363e7a', 1773941],
  ['xen-hvm-balloon', 31, 'snappy', '959c9f8ef14d2688bfecf93fcfefafc0df66cd099fa650163004c92ea7de1b00', 2122810],
  ['xen-hvm-balloon', 31, 'zstd', 'd089ea86cae702cfb5950b711a42b55f5d8e703eae6984fe5bf1ee797c2244f9', 1370749],
];

/** The flattened stream (-F -z -d 31) of the plain sample. */
export const PINNED_FLAT_ZSTD = '2767824e8e07600354fa1e2f35a63ced7a0de507b592fc3b57655ece6beb44be';
