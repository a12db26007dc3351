/**
 * The exclusion-reason map (`filter --reasons FILE`): which pages were
 * dropped and why, as run-length text beside the dump. Format
 * (docs/formats/reasons.md):
 *
 *   # dumpsieve-reasons 1
 *   # input=vmcore dump_level=31 page_size=4096 max_pfn=0x48000
 *   0x1 0x9f kept
 *   0x9f 0x100 hole        (holes are listed too, so the map covers every pfn)
 *
 * One line per maximal run of one reason, hex pfns, end exclusive.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { InputError } from '../core/errors.js';
import { AtomicFileSink } from '../io/sink.js';
import { REASON_NAMES, reasonByName, type ReasonCode } from '../classify/reasons.js';

const MAGIC = '# dumpsieve-reasons 1';
const FLUSH = 1 << 20;

export class ReasonsMapWriter {
  private text = '';
  private pos = 0;
  private runStart = -1;
  private runReason = -1;
  private runEnd = 0;

  private constructor(private readonly sink: AtomicFileSink) {}

  static async create(path: string, input: string, level: number, pageSize = 4096): Promise<ReasonsMapWriter> {
    const w = new ReasonsMapWriter(await AtomicFileSink.create(path));
    w.text = `${MAGIC}\n# input=${input.replace(/\s/g, '_')} dump_level=${level} page_size=${pageSize}\n`;
    return w;
  }

  /** Reasons of pfns [start, start+count); windows in ascending order. */
  async window(start: number, count: number, reasons: Uint8Array): Promise<void> {
    for (let i = 0; i < count; ) {
      const r = reasons[i]!;
      let j = i + 1;
      while (j < count && reasons[j] === r) j++;
      const s = start + i;
      if (r === this.runReason && s === this.runEnd) this.runEnd = start + j;
      else {
        this.emit();
        this.runStart = s;
        this.runEnd = start + j;
        this.runReason = r;
      }
      i = j;
    }
    if (this.text.length >= FLUSH) await this.flush();
  }

  private emit(): void {
    if (this.runStart < 0) return;
    this.text += `0x${this.runStart.toString(16)} 0x${this.runEnd.toString(16)} ${REASON_NAMES[this.runReason]}\n`;
  }

  private async flush(): Promise<void> {
    const b = Buffer.from(this.text, 'latin1');
    await this.sink.write(b, this.pos);
    this.pos += b.length;
    this.text = '';
  }

  async commit(): Promise<void> {
    this.emit();
    this.runStart = -1;
    await this.flush();
    await this.sink.commit();
  }

  abort(): Promise<void> {
    return this.sink.abort();
  }
}

export interface ReasonRun {
  start: number;
  end: number;
  reason: ReasonCode;
}

/** Read a reasons map back (tests, tooling). Runs must be sorted and disjoint. */
export async function* readReasonsMap(path: string): AsyncGenerator<ReasonRun> {
  const rl = createInterface({ input: createReadStream(path, 'latin1'), crlfDelay: Infinity });
  let line = 0;
  let last = -1;
  for await (const text of rl) {
    line++;
    if (line === 1) {
      if (text !== MAGIC) throw new InputError(`not a dumpsieve reasons map (first line '${text.slice(0, 40)}')`, { file: path, line });
      continue;
    }
    if (text.startsWith('#') || text.trim() === '') continue;
    const m = /^0x([0-9a-f]+) 0x([0-9a-f]+) ([a-z-]+)$/.exec(text);
    const reason = m ? reasonByName(m[3]!) : undefined;
    if (!m || reason === undefined) throw new InputError(`malformed run '${text.slice(0, 60)}'`, { file: path, line });
    const start = Number.parseInt(m[1]!, 16);
    const end = Number.parseInt(m[2]!, 16);
    if (end <= start || start < last) throw new InputError('runs must be non-empty, sorted and disjoint', { file: path, line });
    last = end;
    yield { start, end, reason };
  }
}
