import type { PageEncode } from './table.js';

/**
 * `fast`, once its output for the first page equals `reference`'s (both
 * run on that page), else `reference` for every page: how a faster
 * implementation of a codec (WebAssembly, a kept zlib state) is trusted to
 * write the same bytes. Results are valid until the next call.
 */
export function checkedOnFirstPage(fast: PageEncode, reference: PageEncode): PageEncode {
  let encode: PageEncode = (page) => {
    const expected = reference(page);
    const got = fast(page);
    const same = Buffer.compare(got, expected) === 0;
    encode = same ? fast : reference;
    return same ? got : expected;
  };
  return (page) => encode(page);
}
