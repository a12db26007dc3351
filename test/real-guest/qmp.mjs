/**
 * A minimal QMP client (QEMU Machine Protocol: one JSON object per line;
 * docs/interop/qmp-spec.rst). Commands are answered in order; events
 * (lines with "event") are kept for whoever waits on them.
 */
import { createConnection } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export class Qmp {
  constructor(socket) {
    this.socket = socket;
    this.pending = [];
    this.events = [];
    this.buffer = '';
    this.closed = false;
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('close', () => {
      this.closed = true;
      for (const p of this.pending.splice(0)) p.reject(new Error('QMP connection closed'));
    });
    socket.on('error', () => undefined);
  }

  /** Connect to a QMP unix socket (retrying while QEMU starts) and negotiate capabilities. */
  static async connect(path, timeoutMs = 30_000) {
    const t0 = Date.now();
    for (;;) {
      try {
        const socket = await new Promise((resolve, reject) => {
          const s = createConnection(path);
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        });
        const qmp = new Qmp(socket);
        await qmp.greeting();
        await qmp.execute('qmp_capabilities');
        return qmp;
      } catch (err) {
        if (Date.now() - t0 > timeoutMs) throw new Error(`QMP socket ${path}: ${err.message}`);
        await sleep(200);
      }
    }
  }

  greeting() {
    return new Promise((resolve, reject) => this.pending.push({ resolve, reject, greeting: true }));
  }

  onData(chunk) {
    this.buffer += chunk;
    let nl;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (!line) continue;
      const msg = JSON.parse(line);
      if (msg.event) {
        this.events.push(msg);
        continue;
      }
      const p = this.pending.shift();
      if (!p) continue;
      if (p.greeting) p.resolve(msg.QMP);
      else if (msg.error) p.reject(new Error(`QMP ${p.command}: ${msg.error.class}: ${msg.error.desc}`));
      else p.resolve(msg.return);
    }
  }

  execute(command, args) {
    if (this.closed) return Promise.reject(new Error(`QMP ${command}: connection closed`));
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject, command });
      this.socket.write(JSON.stringify(args ? { execute: command, arguments: args } : { execute: command }) + '\n');
    });
  }

  /** Poll `fn` until it returns a value other than undefined. */
  async until(what, fn, timeoutMs, everyMs = 250) {
    const t0 = Date.now();
    for (;;) {
      const v = await fn();
      if (v !== undefined) return v;
      if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
      await sleep(everyMs);
    }
  }

  /** Dump guest memory to `path` (QEMU's dump-guest-memory, paging off) and wait until it is written. */
  async dump(path, format, timeoutMs = 600_000) {
    const args = { paging: false, protocol: `file:${path}`, detach: true };
    if (format) args.format = format;
    await this.execute('dump-guest-memory', args);
    const st = await this.until(
      `dump to ${path}`,
      async () => {
        const q = await this.execute('query-dump');
        return q.status === 'completed' || q.status === 'failed' ? q : undefined;
      },
      timeoutMs,
      200,
    );
    if (st.status !== 'completed') throw new Error(`dump-guest-memory ${format ?? 'elf'} failed`);
  }

  close() {
    this.socket.end();
  }
}
