/**
 * Each validate check alone: a window built by hand with one planted fault
 * is found at exactly the planted pfns, the same window without the fault
 * gives nothing, and the check says what it needs when an input is missing.
 * (test/pipeline/validate.test.ts runs them all on synthetic guests.)
 */
import { describe, expect, it } from 'vitest';
import { RangeSet } from '../../src/core/rangeset.js';
import { PfnState, type DumpReader } from '../../src/formats/types.js';
import { Reason } from '../../src/classify/reasons.js';
import { KPF } from '../../src/classify/kpageflags.js';
import { Prop } from '../../src/kernel/props.js';
import { RangesModel } from '../../src/ram/models.js';
import { CHECKS, type Check, type CheckInputs, type CheckWindow } from '../../src/pipeline/checks/index.js';
import type { MemMapFlagSource } from '../../src/classify/flagsource.js';
import type { KpfTable } from '../../src/pipeline/flags.js';

const N = 64;
const START = 0x1000;

function check(id: string): Check {
  return CHECKS.find((c) => c.id === id)!;
}

/** A window of N RAM pfns at START: plain kernel pages, kept at every level, all backed. */
function window(edit?: (w: CheckWindow) => void): CheckWindow {
  const props = new Uint16Array(N);
  const w: CheckWindow = {
    start: START,
    count: N,
    states: new Uint8Array(N).fill(PfnState.PRESENT),
    props,
    r31: new Uint8Array(N).fill(Reason.KEPT),
    r16: new Uint8Array(N).fill(Reason.KEPT),
    notRam: new Uint8Array(N),
    p2mInvalid: new Uint8Array(N),
    unplugged: new Uint8Array(N),
    isOffline: (i) => (props[i]! & (Prop.OFFLINE | Prop.OFFLINE_FALLBACK)) !== 0,
    isDevice: (i) => (props[i]! & Prop.DEVICE) !== 0,
  };
  edit?.(w);
  return w;
}

/** Page data: zeros except where `nonzero` says. */
function reader(nonzero: ReadonlySet<number> = new Set()): DumpReader {
  return {
    info: { pageSize: 4096 },
    async readPages(pfn: number, count: number, into: Uint8Array): Promise<void> {
      into.fill(0, 0, count * 4096);
      for (let k = 0; k < count; k++) if (nonzero.has(pfn + k)) into[k * 4096 + 7] = 0x5a;
    },
  } as unknown as DumpReader;
}

function inputs(over: Partial<CheckInputs> = {}): CheckInputs {
  return {
    reader: reader(),
    memmap: {} as MemMapFlagSource,
    oracle: undefined,
    xenPv: undefined,
    virtioMem: undefined,
    kpageflags: undefined,
    kexecSegments: undefined,
    protect: undefined,
    balloonPages: undefined,
    readUnbacked: false,
    maxRanges: 8,
    ...over,
  };
}

async function run(c: Check, x: CheckInputs, ...wins: CheckWindow[]) {
  expect(c.needs(x)).toBeUndefined();
  const s = c.start(x);
  for (const w of wins) await s.scan?.(w);
  return s.finish();
}

const at = (i: number, n = 1): [number, number] => [START + i, START + i + n];
/** An oracle backing everything but [START+i, START+i+n). */
const unbackedAt = (i: number, n: number) =>
  new RangesModel('test', [
    { start: 0, end: START + i },
    { start: START + i + n, end: 1 << 30 },
  ]);

describe('every check has a planted-fault test here', () => {
  it('the registry holds the eleven checks, each once', () => {
    expect(CHECKS.map((c) => c.id).sort()).toEqual(
      [
        'content-not-ram',
        'device-in-dump',
        'kexec-overlap',
        'kpageflags-memmap',
        'offline-backed',
        'offline-total',
        'protected-excluded',
        'type-overlap',
        'unbacked-unflagged',
        'virtio-mem',
        'xen-pv-p2m',
      ].sort(),
    );
  });
});

describe('offline-backed', () => {
  const c = check('offline-backed');
  it('finds offline pages the oracle backs, and not unbacked ones', async () => {
    const w = window((w) => {
      w.props!.fill(Prop.OFFLINE, 10, 14);
      w.props!.fill(Prop.OFFLINE, 20, 24);
      w.notRam.fill(1, 20, 24);
    });
    const r = await run(c, inputs({ oracle: unbackedAt(20, 4) }), w);
    expect(r).toMatchObject({ count: 4, ranges: [at(10, 4)] });
    expect(c.needs(inputs())).toBe('needs --ram-oracle');
  });
});

describe('unbacked-unflagged', () => {
  const c = check('unbacked-unflagged');
  it('finds unbacked pages neither offline, device nor free; free ones are a note', async () => {
    const w = window((w) => {
      w.notRam.fill(1, 5, 15);
      w.props!.fill(Prop.OFFLINE, 5, 7);
      w.props!.fill(Prop.DEVICE, 7, 8);
      w.r16.fill(Reason.FREE, 8, 10);
    });
    const r = await run(c, inputs({ oracle: unbackedAt(5, 10) }), w);
    expect(r).toMatchObject({ count: 5, ranges: [at(10, 5)] });
    expect(r.notes?.join()).toMatch(/^2 free pages are not backed/);
  });
});

describe('xen-pv-p2m', () => {
  const c = check('xen-pv-p2m');
  it('finds offline pages with a valid P2M entry and invalid entries not offline', async () => {
    const w = window((w) => {
      w.props!.fill(Prop.OFFLINE, 0, 8);
      w.p2mInvalid.fill(1, 0, 6);
      w.p2mInvalid.fill(1, 30, 31);
    });
    const r = await run(c, inputs({ xenPv: unbackedAt(0, 6) }), w);
    expect(r).toMatchObject({ count: 3, ranges: [at(6, 2), at(30)] });
    expect(c.needs(inputs({ oracle: unbackedAt(0, 1) }))).toBe('needs a xen-pv:FILE oracle');
  });
});

describe('virtio-mem', () => {
  const c = check('virtio-mem');
  it('finds unplugged pages in the device not flagged offline; plugged offline pages are fine', async () => {
    const device = { inDevice: (pfn: number) => pfn >= START + 16 } as unknown as CheckInputs['virtioMem'];
    const w = window((w) => {
      w.unplugged.fill(1, 0, 40);
      w.props!.fill(Prop.OFFLINE, 16, 30);
      w.props!.fill(Prop.OFFLINE, 50, 52);
    });
    const r = await run(c, inputs({ virtioMem: device }), w);
    expect(r).toMatchObject({ count: 10, ranges: [at(30, 10)] });
  });
});

describe('kpageflags-memmap', () => {
  const c = check('kpageflags-memmap');
  /** A table whose entries say what `flags(pfn)` gives (low word), everything else zero. */
  const table = (flags: (pfn: number) => number): KpfTable =>
    ({
      entries: START + N,
      async read(start: number, count: number, lo: Uint32Array, hi: Uint32Array): Promise<number> {
        for (let i = 0; i < count; i++) {
          lo[i] = flags(start + i);
          hi[i] = 0;
        }
        return count;
      },
      async close(): Promise<void> {},
    }) as unknown as KpfTable;
  it('an offline disagreement is always a finding', async () => {
    const w = window((w) => w.props!.fill(Prop.OFFLINE, 3, 5));
    const r = await run(c, inputs({ kpageflags: table((p) => (p >= START + 3 && p < START + 6 ? 1 << KPF.OFFLINE : 0)) }), w);
    expect(r).toMatchObject({ count: 1, ranges: [at(5)] });
  });
  it('a few buddy disagreements are drift (a note); many are a finding', async () => {
    const few = await run(c, inputs({ kpageflags: table((p) => (p === START + 9 ? 1 << KPF.BUDDY : 0)) }), window());
    expect(few.count).toBe(0);
    expect(few.notes?.join()).toMatch(/^1 pages changed buddy\/slab state/);
    const many = await run(c, inputs({ kpageflags: table(() => 1 << KPF.BUDDY) }), window());
    expect(many).toMatchObject({ count: N, ranges: [at(0, N)] });
  });
});

describe('kexec-overlap', () => {
  const c = check('kexec-overlap');
  it('finds segment pfns that are offline or unbacked, only inside the segments', async () => {
    const w = window((w) => {
      w.props!.fill(Prop.OFFLINE, 2, 4);
      w.notRam.fill(1, 40, 42);
      w.props!.fill(Prop.OFFLINE, 60, 62);
    });
    const segs = [
      { mem: (START + 0) * 4096, memsz: 8 * 4096 },
      { mem: (START + 40) * 4096, memsz: 4096 },
    ];
    const r = await run(c, inputs({ kexecSegments: segs }), w);
    expect(r).toMatchObject({ count: 3, ranges: [at(2, 2), at(40)] });
  });
});

describe('device-in-dump and type-overlap', () => {
  it('device-in-dump finds ZONE_DEVICE pages in the image', async () => {
    const r = await run(check('device-in-dump'), inputs(), window((w) => w.props!.fill(Prop.DEVICE, 32, 48)));
    expect(r).toMatchObject({ count: 16, ranges: [at(32, 16)] });
  });
  it('type-overlap finds pages with two page types', async () => {
    const r = await run(check('type-overlap'), inputs(), window((w) => w.props!.fill(Prop.TYPE_OVERLAP, 1, 2)));
    expect(r).toMatchObject({ count: 1, ranges: [at(1)] });
    expect(check('type-overlap').severity).toBe('warning');
  });
});

describe('content-not-ram', () => {
  const c = check('content-not-ram');
  it('reads only the unbacked pages, and finds those that are not zero', async () => {
    const read: number[] = [];
    const base = reader(new Set([START + 12]));
    const counting = {
      ...base,
      info: base.info,
      readPages: async (pfn: number, count: number, into: Uint8Array) => {
        for (let k = 0; k < count; k++) read.push(pfn + k);
        await base.readPages(pfn, count, into);
      },
    } as unknown as DumpReader;
    const w = window((w) => w.notRam.fill(1, 10, 14));
    const r = await run(c, inputs({ reader: counting, oracle: unbackedAt(10, 4), readUnbacked: true }), w);
    expect(r).toMatchObject({ count: 1, ranges: [at(12)] });
    expect(read).toEqual([START + 10, START + 11, START + 12, START + 13]);
    expect(c.needs(inputs({ oracle: unbackedAt(10, 4) }))).toBe('needs --read-unbacked');
  });
});

describe('protected-excluded', () => {
  const c = check('protected-excluded');
  it('finds protected pages missing without a status, and pages a content rule drops; status exclusions are fine', async () => {
    const w = window((w) => {
      w.states.fill(PfnState.ABSENT, 0, 4); // missing, kept by the rules: a finding
      w.states.fill(PfnState.ABSENT, 4, 6);
      w.r31.fill(Reason.OFFLINE, 4, 6); // missing because offline: fine
      w.r31.fill(Reason.CACHE, 6, 9); // a -d 31 filter would drop them: a finding
      w.r31.fill(Reason.CACHE, 50, 52); // not protected
    });
    const r = await run(c, inputs({ protect: RangeSet.single(START, START + 32) }), w);
    expect(r).toMatchObject({ count: 7, ranges: [at(0, 4), at(6, 3)] });
    expect(c.needs(inputs())).toMatch(/no protected ranges/);
  });
});

describe('offline-total', () => {
  const c = check('offline-total');
  it('compares the offline count with the balloon, within 1 % or 512 pages', async () => {
    const w = window((w) => w.props!.fill(Prop.OFFLINE, 0, 64));
    const ok = await run(c, inputs({ balloonPages: 64 + 512 }), w, w);
    expect(ok.count).toBe(0);
    const bad = await run(c, inputs({ balloonPages: 128 + 600 }), w, w);
    expect(bad.count).toBe(600);
    expect(bad.detail).toBe('128 pages flagged offline, balloon holds 728 pages (difference 600, tolerance 512)');
    expect(c.needs(inputs())).toBe('needs --balloon-size');
  });
});
