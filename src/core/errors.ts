/**
 * Errors with a stable code, the file and the byte offset they concern.
 *
 * Every failure a user can cause (bad input, bad arguments, an unsupported
 * feature) is a DumpError; anything else is a bug and keeps its stack.
 * The one-line rendering reads outer context first:
 *   `vmcore: offset 0x40: program header 3: PT_LOAD extends past end of file`
 */

export type DumpErrorCode =
  /** The file ends before a structure it announces. */
  | 'DUMP_TRUNCATED'
  /** A structure holds a value that cannot be right. */
  | 'DUMP_CORRUPT'
  /** A valid file using something dumpsieve does not handle. */
  | 'DUMP_UNSUPPORTED'
  /** A header-derived size is above the bound dumpsieve accepts. */
  | 'DUMP_LIMIT_EXCEEDED'
  /** VMCOREINFO lacks what an operation needs. */
  | 'VMCOREINFO_MISSING'
  /** A kernel virtual address does not translate. */
  | 'ADDRESS_UNMAPPED'
  /** Reading or writing a file failed at the system level. */
  | 'IO'
  /** Bad command-line arguments or library options. */
  | 'USAGE'
  /** A side input (oracle model, segment list, flag table) is malformed. */
  | 'INPUT_INVALID'
  /** The run was interrupted (SIGINT). */
  | 'INTERRUPTED';

export interface DumpErrorContext {
  /** File the error concerns, as the user named it. */
  file?: string | undefined;
  /** Byte offset in that file. */
  offset?: number | undefined;
  /** Line number (1-based) for text inputs. */
  line?: number | undefined;
  cause?: unknown;
}

export class DumpError extends Error {
  readonly code: DumpErrorCode;
  readonly file: string | undefined;
  readonly offset: number | undefined;
  readonly line: number | undefined;
  /** The message without file/offset prefix. */
  readonly detail: string;

  constructor(code: DumpErrorCode, detail: string, ctx: DumpErrorContext = {}) {
    super(renderMessage(detail, ctx), ctx.cause === undefined ? undefined : { cause: ctx.cause });
    this.name = 'DumpError';
    this.code = code;
    this.detail = detail;
    this.file = ctx.file;
    this.offset = ctx.offset;
    this.line = ctx.line;
  }

  /** The same error with outer context (file, offset) filled in where missing. */
  withContext(ctx: DumpErrorContext): DumpError {
    if (this.file !== undefined && this.offset !== undefined) return this;
    const err = new DumpError(this.code, this.detail, {
      file: this.file ?? ctx.file,
      offset: this.offset ?? ctx.offset,
      line: this.line ?? ctx.line,
      cause: this.cause,
    });
    return err;
  }
}

/**
 * Whether an error is about the dump's content (a page it lacks, a
 * structure it holds damaged), which a reader may take as "not there",
 * rather than about the run itself (a read error, a codec this node
 * cannot run, an interruption, a bug), which must not be taken so.
 */
export function isDumpContentError(err: unknown): err is DumpError {
  return err instanceof DumpError && err.code !== 'IO' && err.code !== 'USAGE' && err.code !== 'INTERRUPTED';
}

/** A usage error: wrong arguments or options. Exit code 2. */
export class UsageError extends DumpError {
  constructor(detail: string, ctx: DumpErrorContext = {}) {
    super('USAGE', detail, ctx);
    this.name = 'UsageError';
  }
}

/** A side input (oracle model file, segment list, ...) that cannot be used. Exit code 2. */
export class InputError extends DumpError {
  constructor(detail: string, ctx: DumpErrorContext = {}) {
    super('INPUT_INVALID', detail, ctx);
    this.name = 'InputError';
  }
}

function renderMessage(detail: string, ctx: DumpErrorContext): string {
  const parts: string[] = [];
  if (ctx.file !== undefined) parts.push(ctx.file);
  if (ctx.line !== undefined) parts.push(`line ${ctx.line}`);
  if (ctx.offset !== undefined) parts.push(`offset ${hex(ctx.offset)}`);
  parts.push(detail);
  return printable(parts.join(': '));
}

/**
 * One line whatever the input held: control characters (a newline in a
 * corrupt header string, say, or a C1 CSI) are shown as \xNN escapes.
 */
export function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export function hex(n: number | bigint): string {
  return `0x${n.toString(16)}`;
}

/** Exit codes shared by every command. */
export const EXIT = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
  FINDINGS: 3,
  INTERRUPTED: 130,
} as const;

export function exitCodeFor(err: unknown): number {
  if (err instanceof DumpError) {
    if (err.code === 'USAGE' || err.code === 'INPUT_INVALID') return EXIT.USAGE;
    if (err.code === 'INTERRUPTED') return EXIT.INTERRUPTED;
    return EXIT.FAILURE;
  }
  return EXIT.FAILURE;
}

/** Re-throw `err` with file/offset context if it is a DumpError lacking them. */
export function inContext(err: unknown, ctx: DumpErrorContext): never {
  if (err instanceof DumpError) throw err.withContext(ctx);
  throw err;
}

/** Turn a Node system error into a DumpError naming the file. */
export function ioError(err: unknown, file: string, what: string): DumpError {
  if (err instanceof DumpError) return err;
  const e = err as NodeJS.ErrnoException;
  const reason = e && typeof e.code === 'string' ? `${e.code}${e.message ? ` (${stripErrno(e.message)})` : ''}` : String(err);
  return new DumpError('IO', `${what}: ${reason}`, { file, cause: err });
}

function stripErrno(msg: string): string {
  // "ENOENT: no such file or directory, open 'x'" -> "no such file or directory"
  const m = /^[A-Z]+: ([^,]+)/.exec(msg);
  return m?.[1] ?? msg;
}
