/**
 * The LZO1X-1 compressor of ./lzo.ts as WebAssembly, assembled here at
 * load time from the instructions below (no toolchain, no binary in the
 * tree): the same algorithm, step for step, so the same bytes as liblzo2.
 * On a guest's kept pages JavaScript's version takes 4.9–5.3 µs a page,
 * this one 3.1–3.3 µs, liblzo2 2.6–2.9 µs (bench/README.md); it is what
 * -l uses when WebAssembly is there. Its output is checked against the
 * JavaScript compressor on the first page of every compressor (and in
 * tests on thousands of pages), and liblzo2 judges what -l writes
 * (test/interop/codec-peers.test.ts).
 *
 * Linear memory: the dictionary (2^14 16-bit positions) at 0, the page at
 * IN, the output at OUT. `compress(in, len, out)` returns the output
 * length. Addresses are absolute in memory; the dictionary holds positions
 * relative to the block, as liblzo2's does.
 */
import type { PageEncode } from './table.js';
import { checkedOnFirstPage } from './checked.js';
import { Lzo1xCompressor, lzoBound } from './lzo.js';

// --- A minimal WebAssembly assembler: bytes of instructions, sections, a module.

type Code = Array<number | Code>;

const flat = (c: Code): number[] => c.flatMap((x) => (typeof x === 'number' ? [x] : flat(x)));

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const I32 = 0x7f;
const I64 = 0x7e;
const VOID = 0x40;

// Instructions (the subset used).
const get = (l: number): Code => [0x20, ...uleb(l)];
const set = (l: number, ...value: Code): Code => [...value, 0x21, ...uleb(l)];
const tee = (l: number, ...value: Code): Code => [...value, 0x22, ...uleb(l)];
const c32 = (v: number): Code => [0x41, ...sleb(v | 0)];
const load8 = (...addr: Code): Code => [...addr, 0x2d, 0, 0];
const load16 = (...addr: Code): Code => [...addr, 0x2f, 0, 0];
const load32 = (...addr: Code): Code => [...addr, 0x28, 0, 0];
const load64 = (...addr: Code): Code => [...addr, 0x29, 0, 0];
const store8 = (addr: Code, value: Code): Code => [...addr, ...value, 0x3a, 0, 0];
const store16 = (addr: Code, value: Code): Code => [...addr, ...value, 0x3b, 0, 0];
const bin = (op: number) => (a: Code, b: Code): Code => [...a, ...b, op];
const add = bin(0x6a);
const sub = bin(0x6b);
const mul = bin(0x6c);
const and = bin(0x71);
const or = bin(0x72);
const shl = bin(0x74);
const shrS = bin(0x75);
const shrU = bin(0x76);
const eq = bin(0x46);
const ne = bin(0x47);
const ltS = bin(0x48);
const leU = bin(0x4d);
const geS = bin(0x4e);
const gtS = bin(0x4a);
const xor64 = bin(0x85);
const ctz64 = (a: Code): Code => [...a, 0x7a];
const eqz64 = (a: Code): Code => [...a, 0x50];
const wrap = (a: Code): Code => [...a, 0xa7];
const select = (a: Code, b: Code, cond: Code): Code => [...a, ...b, ...cond, 0x1b];
const block = (...body: Code): Code => [0x02, VOID, ...body, 0x0b];
const loop = (...body: Code): Code => [0x03, VOID, ...body, 0x0b];
const if_ = (cond: Code, then: Code, otherwise?: Code): Code => [...cond, 0x04, VOID, ...then, ...(otherwise ? [0x05, ...otherwise] : []), 0x0b];
const br = (depth: number): Code => [0x0c, ...uleb(depth)];
const brIf = (depth: number, cond: Code): Code => [...cond, 0x0d, ...uleb(depth)];
const call = (fn: number, ...args: Code): Code => [...args, 0x10, ...uleb(fn)];
const memFill = (dst: Code, value: Code, n: Code): Code => [...dst, ...value, ...n, 0xfc, 0x0b, 0x00];
const memCopy = (dst: Code, src: Code, n: Code): Code => [...dst, ...src, ...n, 0xfc, 0x0a, 0x00, 0x00];
const inc = (l: number, by: number): Code => set(l, add(get(l), c32(by)));

// --- The compressor (constants and steps as in ./lzo.ts).

const D_BITS = 14;
const DICT_BYTES = 2 << D_BITS;
const BLOCK = 49152;

// putRun(op, n) -> op: a length above the short range, a 0 byte per 255 then the rest.
const P_OP = 0;
const P_N = 1;
const putRun: Code = [
  block(loop(brIf(1, leU(get(P_N), c32(255))), set(P_N, sub(get(P_N), c32(255))), store8(get(P_OP), c32(0)), inc(P_OP, 1), br(0))),
  store8(get(P_OP), get(P_N)),
  add(get(P_OP), c32(1)),
];

// compress(inp, len, outp) -> bytes written at outp.
const [INP, LEN, OUTP] = [0, 1, 2];
const [OP, IP, LEFT, T, LL, BASE, IN_END, IP_END, II, P, MISS, DV, SLOT, MPOS, LIT, MLEN, EQ, MOFF] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20];
const V = 21;

/** Pending literals `count` at `from`: their length code (in the last instruction when 1–3), then the bytes. */
const literals = (count: number, from: number, first: Code): Code => [
  if_(
    first,
    [store8(get(OP), add(c32(17), get(count))), inc(OP, 1)],
    [
      if_(
        leU(get(count), c32(3)),
        [store8(sub(get(OP), c32(2)), or(load8(sub(get(OP), c32(2))), get(count)))],
        [
          if_(
            leU(get(count), c32(18)),
            [store8(get(OP), sub(get(count), c32(3))), inc(OP, 1)],
            [store8(get(OP), c32(0)), inc(OP, 1), set(OP, call(0, get(OP), sub(get(count), c32(18))))],
          ),
        ],
      ),
    ],
  ),
  memCopy(get(OP), get(from), get(count)),
  set(OP, add(get(OP), get(count))),
];

/** A match of MLEN bytes MOFF back (M2, M3 or M4). */
const match: Code = [
  if_(
    and(leU(get(MLEN), c32(8)), leU(get(MOFF), c32(0x800))),
    [
      set(MOFF, sub(get(MOFF), c32(1))),
      store8(get(OP), or(shl(sub(get(MLEN), c32(1)), c32(5)), shl(and(get(MOFF), c32(7)), c32(2)))),
      store8(add(get(OP), c32(1)), shrU(get(MOFF), c32(3))),
      inc(OP, 2),
    ],
    [
      if_(
        leU(get(MOFF), c32(0x4000)),
        [
          set(MOFF, sub(get(MOFF), c32(1))),
          if_(
            leU(get(MLEN), c32(33)),
            [store8(get(OP), or(c32(32), sub(get(MLEN), c32(2)))), inc(OP, 1)],
            [store8(get(OP), c32(32)), inc(OP, 1), set(OP, call(0, get(OP), sub(get(MLEN), c32(33))))],
          ),
        ],
        [
          set(MOFF, sub(get(MOFF), c32(0x4000))),
          if_(
            leU(get(MLEN), c32(9)),
            [store8(get(OP), or(or(c32(16), and(shrU(get(MOFF), c32(11)), c32(8))), sub(get(MLEN), c32(2)))), inc(OP, 1)],
            [store8(get(OP), or(c32(16), and(shrU(get(MOFF), c32(11)), c32(8)))), inc(OP, 1), set(OP, call(0, get(OP), sub(get(MLEN), c32(9))))],
          ),
        ],
      ),
      store8(get(OP), shl(get(MOFF), c32(2))),
      store8(add(get(OP), c32(1)), shrU(get(MOFF), c32(6))),
      inc(OP, 2),
    ],
  ),
];

/** One block [BASE, IN_END) with T literals pending from the block before. */
const oneBlock: Code = [
  memFill(c32(0), c32(0), c32(DICT_BYTES)),
  set(IN_END, add(get(BASE), get(LL))),
  set(IP_END, sub(get(IN_END), c32(20))),
  set(II, get(BASE)),
  set(P, add(get(BASE), select(sub(c32(4), get(T)), c32(0), ltS(get(T), c32(4))))),
  set(MISS, c32(1)),
  block(
    loop(
      if_(get(MISS), [set(P, add(add(get(P), c32(1)), shrS(sub(get(P), get(II)), c32(5))))]),
      set(MISS, c32(1)),
      brIf(1, geS(get(P), get(IP_END))),
      set(DV, load32(get(P))),
      set(SLOT, shl(shrU(mul(get(DV), c32(0x1824429d)), c32(32 - D_BITS)), c32(1))),
      set(MPOS, add(get(BASE), load16(get(SLOT)))),
      store16(get(SLOT), sub(get(P), get(BASE))),
      brIf(0, ne(get(DV), load32(get(MPOS)))),
      // A match: the pending literals first.
      set(II, sub(get(II), get(T))),
      set(T, c32(0)),
      set(LIT, sub(get(P), get(II))),
      if_(ne(get(LIT), c32(0)), literals(LIT, II, c32(0))),
      // Extend 8 bytes at a time; stop after the first whole 8 that reach IP_END.
      set(MLEN, c32(4)),
      block(
        loop(
          if_(eqz64(tee(V, xor64(load64(add(get(P), get(MLEN))), load64(add(get(MPOS), get(MLEN)))))), [], [set(EQ, shrU(wrap(ctz64(get(V))), c32(3))), br(2)]),
          set(MLEN, add(get(MLEN), c32(8))),
          if_(geS(add(get(P), get(MLEN)), get(IP_END)), [set(EQ, c32(0)), br(2)]),
          br(0),
        ),
      ),
      set(MLEN, add(get(MLEN), get(EQ))),
      set(MOFF, sub(get(P), get(MPOS))),
      set(P, add(get(P), get(MLEN))),
      set(II, get(P)),
      match,
      set(MISS, c32(0)),
      br(0),
    ),
  ),
  set(T, sub(get(IN_END), sub(get(II), get(T)))),
];

const compress: Code = [
  set(OP, get(OUTP)),
  set(IP, get(INP)),
  set(LEFT, get(LEN)),
  set(T, c32(0)),
  block(
    loop(
      brIf(1, leU(get(LEFT), c32(20))),
      set(LL, select(get(LEFT), c32(BLOCK), leU(get(LEFT), c32(BLOCK)))),
      set(BASE, get(IP)),
      oneBlock,
      set(IP, add(get(IP), get(LL))),
      set(LEFT, sub(get(LEFT), get(LL))),
      br(0),
    ),
  ),
  set(T, add(get(T), get(LEFT))),
  if_(gtS(get(T), c32(0)), [set(II, sub(add(get(INP), get(LEN)), get(T))), literals(T, II, and(eq(get(OP), get(OUTP)), leU(get(T), c32(238))))]),
  store8(get(OP), c32(0x11)),
  store8(add(get(OP), c32(1)), c32(0)),
  store8(add(get(OP), c32(2)), c32(0)),
  sub(add(get(OP), c32(3)), get(OUTP)),
];

function body(localsI32: number, localsI64: number, code: Code): number[] {
  const locals = [[...uleb(localsI32), I32], ...(localsI64 > 0 ? [[...uleb(localsI64), I64]] : [])];
  const b = [...vec(locals), ...flat(code), 0x0b];
  return [...uleb(b.length), ...b];
}

/** The module's bytes, with memory for pages of `pageSize` bytes. */
function moduleBytes(memPages: number): Uint8Array {
  const types = vec([
    [0x60, ...vec([[I32], [I32]]), ...vec([[I32]])],
    [0x60, ...vec([[I32], [I32], [I32]]), ...vec([[I32]])],
  ]);
  const name = (s: string): number[] => [...uleb(s.length), ...Buffer.from(s, 'latin1')];
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, types),
    ...section(3, vec([[0], [1]])),
    ...section(5, vec([[0x00, ...uleb(memPages)]])),
    ...section(7, vec([[...name('mem'), 0x02, 0], [...name('compress'), 0x00, 1]])),
    ...section(10, vec([body(0, 0, putRun), body(V - 3, 1, compress)])),
  ]);
}

/** The part of the WebAssembly global used here (the project's type libraries do not declare it). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, unknown> };
}

/**
 * An LZO1X-1 compressor of `pageSize`-byte pages in WebAssembly, or
 * undefined where WebAssembly is missing or refuses the module. The result
 * is a view of the module's memory, valid until the next call.
 */
export function lzoWasmCompressor(pageSize: number): PageEncode | undefined {
  const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  if (!wasm) return undefined;
  const IN = DICT_BYTES;
  const OUT = IN + pageSize + 64;
  const pages = Math.ceil((OUT + lzoBound(pageSize) + 64) / 65536);
  let exports: Record<string, unknown>;
  try {
    exports = new wasm.Instance(new wasm.Module(moduleBytes(pages))).exports;
  } catch {
    return undefined;
  }
  const mem = new Uint8Array((exports.mem as { buffer: ArrayBuffer }).buffer);
  const run = exports.compress as (inp: number, len: number, outp: number) => number;
  return (page) => {
    mem.set(page, IN);
    const n = run(IN, page.length, OUT);
    return mem.subarray(OUT, OUT + n);
  };
}

/**
 * The LZO1X-1 page compressor -l uses: the WebAssembly one when it loads
 * and gives the JavaScript one's bytes on the first page (both run on it),
 * else the JavaScript one. The result is valid until the next call.
 */
export function lzoPageCompressor(pageSize: number): PageEncode {
  const c = new Lzo1xCompressor();
  const out = new Uint8Array(lzoBound(pageSize));
  const js: PageEncode = (page) => out.subarray(0, c.compress(page, page.length, out));
  const wasm = lzoWasmCompressor(pageSize);
  if (!wasm) return js;
  return checkedOnFirstPage(wasm, js);
}
