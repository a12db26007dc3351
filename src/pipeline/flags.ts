/** Page properties from a /proc/kpageflags-style table beside the image. */
import { KpageflagsTable } from '../formats/kpageflags/table.js';
import type { DumpReader } from '../formats/types.js';
import type { FlagSourceDescription, PageFlagSource } from '../classify/flagsource.js';
import { fillFromKpf } from '../classify/kpageflags.js';
import type { PropWindow } from '../kernel/props.js';
import { formatCount } from '../core/units.js';

export type KpfTable = KpageflagsTable;

export function openKpfTable(path: string): Promise<KpageflagsTable> {
  return KpageflagsTable.open(path);
}

class KpageflagsFlagSource implements PageFlagSource {
  readonly kind = 'kpageflags' as const;
  readonly warnings = new Map<string, number>();
  readonly freeAreaLength: number | undefined;
  private readonly lo: Uint32Array;
  private readonly hi: Uint32Array;

  constructor(
    private readonly table: KpageflagsTable,
    reader: DumpReader,
  ) {
    this.freeAreaLength = reader.info.vmcoreinfo?.length('zone.free_area');
    this.lo = new Uint32Array(32768);
    this.hi = new Uint32Array(32768);
  }

  describe(): FlagSourceDescription {
    return { kind: 'kpageflags', layout: `${this.table.file}, ${formatCount(this.table.entries)} entries` };
  }

  missingFor(): string[] {
    return [];
  }

  async fill(win: PropWindow): Promise<void> {
    if (this.lo.length < win.count) throw new RangeError('kpageflags window too large');
    const valid = await this.table.read(win.start, win.count, this.lo, this.hi);
    if (valid < win.count) {
      const key = 'pfns beyond the kpageflags table (kept)';
      this.warnings.set(key, (this.warnings.get(key) ?? 0) + (win.count - valid));
    }
    fillFromKpf(win, this.lo, this.hi, valid);
  }

  close(): Promise<void> {
    return this.table.close();
  }
}

export async function openFlagTable(path: string, reader: DumpReader): Promise<PageFlagSource> {
  return new KpageflagsFlagSource(await KpageflagsTable.open(path), reader);
}
