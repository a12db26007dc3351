/**
 * CPU registers in a dump's ELF notes (x86_64):
 *
 * - NT_PRSTATUS ("CORE", type 1): struct elf_prstatus, one per CPU, written
 *   by crash_save_cpu() (the panicking CPU's registers come from
 *   crash_setup_regs(), the others from the crash NMI) or by QEMU's
 *   dump-guest-memory. pr_pid at offset 32, pr_reg (struct
 *   user_regs_struct: r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi
 *   rdi orig_rax rip cs eflags rsp ss fs_base gs_base ds es fs gs) at 112.
 * - "QEMU" (type 0): QEMU's QEMUCPUState (target/i386/arch_dump.c), one per
 *   CPU in the same order: version, size, rax…r15, rip, rflags, ten
 *   segment descriptors of 24 bytes, then cr[5] at offset 392 — the only
 *   place a dump carries CR2 besides the Oops text.
 */
import { parseNotes, NT_PRSTATUS } from '../formats/elf/elf.js';

const PR_PID = 32;
const PR_REG = 112;
const REG_NAMES = ['r15', 'r14', 'r13', 'r12', 'rbp', 'rbx', 'r11', 'r10', 'r9', 'r8', 'rax', 'rcx', 'rdx', 'rsi', 'rdi', 'orig_rax', 'rip', 'cs', 'eflags', 'rsp', 'ss'] as const;
const QEMU_CR = 392;

export interface CpuRegisters {
  /** Index of the CPU's NT_PRSTATUS note (0-based, in note order). */
  index: number;
  pid: number;
  regs: Record<(typeof REG_NAMES)[number], bigint>;
  /** Control registers from QEMU's note for the same CPU, when present. */
  cr?: { cr0: bigint; cr2: bigint; cr3: bigint; cr4: bigint } | undefined;
}

/** Registers of every CPU in the notes; damaged notes are skipped. */
export function cpuRegisters(notes: Uint8Array): { cpus: CpuRegisters[]; qemu: boolean } {
  let parsed;
  try {
    parsed = parseNotes(notes, (_off, what) => new Error(what));
  } catch {
    return { cpus: [], qemu: false };
  }
  const dv = new DataView(notes.buffer, notes.byteOffset, notes.byteLength);
  const cpus: CpuRegisters[] = [];
  const qemu: Array<CpuRegisters['cr']> = [];
  for (const n of parsed) {
    if (n.name === 'CORE' && n.type === NT_PRSTATUS && n.descSize >= PR_REG + REG_NAMES.length * 8) {
      const regs = {} as CpuRegisters['regs'];
      REG_NAMES.forEach((r, i) => {
        regs[r] = dv.getBigUint64(n.descOffset + PR_REG + i * 8, true);
      });
      cpus.push({ index: cpus.length, pid: dv.getUint32(n.descOffset + PR_PID, true), regs });
    } else if (n.name === 'QEMU' && n.descSize >= QEMU_CR + 40) {
      const cr = (i: number): bigint => dv.getBigUint64(n.descOffset + QEMU_CR + i * 8, true);
      qemu.push({ cr0: cr(0), cr2: cr(2), cr3: cr(3), cr4: cr(4) });
    }
  }
  cpus.forEach((c, i) => {
    c.cr = qemu[i];
  });
  return { cpus, qemu: qemu.length > 0 };
}
