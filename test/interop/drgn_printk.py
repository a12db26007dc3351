#!/usr/bin/python3
"""Print the kernel log of a dump with drgn's own printk helper.

drgn.helpers.linux.printk.get_printk_records() needs the kernel's types and
symbols, which a vmlinux's debug info would give. A synthetic guest has no
vmlinux, so this script gives drgn the same facts another way: the C
structures of the era, transcribed from the kernel sources (kernel/printk/
printk_ringbuffer.h from 5.10, kernel/printk/printk.c before 5.10), as drgn
types, and the variables at the addresses VMCOREINFO's SYMBOL() lines give,
as drgn objects. drgn then reads the ring with its own code.

usage: drgn_printk.py DUMP ERA   (ERA: log_buf | lockless-5.10 | lockless-6)
stdout: JSON list of records {text (hex), facility, level, seq, timestamp,
caller_tid, caller_cpu, continuation, context}
"""
import json
import sys

import drgn
from drgn import FindObjectFlags, Object, Program, TypeEnumerator, TypeKind, TypeMember
from drgn.helpers.linux.printk import get_printk_records


def main():
    dump, era = sys.argv[1], sys.argv[2]
    prog = Program()
    prog.set_core_dump(dump)
    vmcoreinfo = {}
    # drgn parses VMCOREINFO itself but does not expose SYMBOL() lines; read the note.
    with open(dump, "rb") as f:
        data = f.read(1 << 20)
    at = data.find(b"VMCOREINFO\0")
    text = data[at + 12 : data.find(b"\0", at + 12)].decode("latin1")
    for line in text.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            vmcoreinfo[k] = v

    def sym(name):
        return int(vmcoreinfo["SYMBOL(%s)" % name], 16)

    lang = drgn.Language.C
    u8 = prog.int_type("unsigned char", 1, False)
    u16 = prog.int_type("unsigned short", 2, False)
    u32 = prog.int_type("unsigned int", 4, False)
    u64 = prog.int_type("unsigned long long", 8, False)
    ulong = prog.int_type("unsigned long", 8, False)
    long_ = prog.int_type("long", 8, True)
    char = prog.int_type("char", 1, True)
    int_ = prog.int_type("int", 4, True)
    types = {(TypeKind.INT, "unsigned long"): ulong, (TypeKind.INT, "char"): char, (TypeKind.INT, "int"): int_, (TypeKind.INT, "unsigned int"): u32}
    bf = lambda t, n: Object(prog, t, bit_field_size=n)
    atomic_long = prog.struct_type(None, 8, [TypeMember(long_, "counter", 0)])
    atomic_long_t = prog.typedef_type("atomic_long_t", atomic_long)
    enum_flags = prog.enum_type("log_flags", u32, [TypeEnumerator("LOG_NEWLINE", 2), TypeEnumerator("LOG_CONT", 8)])
    enum_state = prog.enum_type(
        "desc_state",
        int_,
        [TypeEnumerator("desc_miss", -1), TypeEnumerator("desc_reserved", 0), TypeEnumerator("desc_committed", 1), TypeEnumerator("desc_finalized", 2), TypeEnumerator("desc_reusable", 3)],
    )
    objects = {}
    constants = {"LOG_NEWLINE": Object(prog, enum_flags, 2), "LOG_CONT": Object(prog, enum_flags, 8)}
    if era == "log_buf":
        # struct printk_log (kernel/printk/printk.c, 3.11-5.9), __packed __aligned(4) on x86_64.
        printk_log = prog.struct_type(
            "printk_log",
            16,
            [
                TypeMember(u64, "ts_nsec", 0),
                TypeMember(u16, "len", 64),
                TypeMember(u16, "text_len", 80),
                TypeMember(u16, "dict_len", 96),
                TypeMember(u8, "facility", 112),
                TypeMember(bf(u8, 5), "flags", 120),
                TypeMember(bf(u8, 3), "level", 125),
            ],
        )
        types[(TypeKind.STRUCT, "printk_log")] = printk_log
        objects["log_buf"] = Object(prog, prog.pointer_type(char), address=sym("log_buf"))
        objects["log_first_idx"] = Object(prog, u32, address=sym("log_first_idx"))
        objects["log_next_idx"] = Object(prog, u32, address=sym("log_next_idx"))
        # log_first_seq is not in VMCOREINFO; the synthetic kernel keeps it 0x1c0 bytes into its printk data page.
        objects["log_first_seq"] = Object(prog, u64, address=(sym("log_buf") & ~0xFFF) + 0x1C0)
    else:
        dev_info = prog.struct_type(
            "dev_printk_info", 64, [TypeMember(prog.array_type(char, 16), "subsystem", 0), TypeMember(prog.array_type(char, 48), "device", 128)]
        )
        printk_info = prog.struct_type(
            "printk_info",
            88,
            [
                TypeMember(u64, "seq", 0),
                TypeMember(u64, "ts_nsec", 64),
                TypeMember(u16, "text_len", 128),
                TypeMember(u8, "facility", 144),
                TypeMember(bf(u8, 5), "flags", 152),
                TypeMember(bf(u8, 3), "level", 157),
                TypeMember(u32, "caller_id", 160),
                TypeMember(dev_info, "dev_info", 192),
            ],
        )
        lpos = prog.struct_type("prb_data_blk_lpos", 16, [TypeMember(ulong, "begin", 0), TypeMember(ulong, "next", 64)])
        desc = prog.struct_type("prb_desc", 24, [TypeMember(atomic_long_t, "state_var", 0), TypeMember(lpos, "text_blk_lpos", 64)])
        data_ring = prog.struct_type(
            "prb_data_ring",
            32,
            [TypeMember(u32, "size_bits", 0), TypeMember(prog.pointer_type(char), "data", 64), TypeMember(atomic_long_t, "head_lpos", 128), TypeMember(atomic_long_t, "tail_lpos", 192)],
        )
        ring_members = [
            TypeMember(u32, "count_bits", 0),
            TypeMember(prog.pointer_type(desc), "descs", 64),
            TypeMember(prog.pointer_type(printk_info), "infos", 128),
            TypeMember(atomic_long_t, "head_id", 192),
            TypeMember(atomic_long_t, "tail_id", 256),
        ]
        if era == "lockless-6":
            # atomic_long_t last_finalized_id (2022; last_finalized_seq from 6.9).
            ring_members.append(TypeMember(atomic_long_t, "last_finalized_id", 320))
        ring_size = 8 * len(ring_members)
        desc_ring = prog.struct_type("prb_desc_ring", ring_size, ring_members)
        rb = prog.struct_type(
            "printk_ringbuffer",
            ring_size + 40,
            [TypeMember(desc_ring, "desc_ring", 0), TypeMember(data_ring, "text_data_ring", ring_size * 8), TypeMember(atomic_long_t, "fail", (ring_size + 32) * 8)],
        )
        objects["prb"] = Object(prog, prog.pointer_type(rb), address=sym("prb"))
        for e in ("desc_miss", "desc_reserved", "desc_committed", "desc_finalized", "desc_reusable"):
            constants[e] = Object(prog, enum_state, [v.value for v in enum_state.enumerators if v.name == e][0])

    def find_type(kind, name, filename):
        return types.get((kind, name))

    def find_object(prog_, name, flags, filename):
        if flags & FindObjectFlags.CONSTANT and name in constants:
            return constants[name]
        if flags & FindObjectFlags.VARIABLE and name in objects:
            return objects[name]
        return None

    # A /proc/vmcore written by the kernel (kexec-tools' ELF headers) maps the
    # kernel text too; synthetic images carry only the direct map, so map
    # __START_KERNEL_map onto phys_base as that segment would.
    phys_base = int(vmcoreinfo.get("NUMBER(phys_base)", "0"), 0)
    start_kernel_map = 0xFFFFFFFF80000000
    prog.add_memory_segment(
        start_kernel_map, 1 << 30, lambda address, count, offset, physical: prog.read(phys_base + offset, count, True), False
    )
    prog.add_type_finder(find_type)
    prog.add_object_finder(find_object)
    out = []
    for r in get_printk_records(prog):
        out.append(
            {
                "text": r.text.hex(),
                "facility": r.facility,
                "level": r.level,
                "seq": r.seq,
                "timestamp": r.timestamp,
                "caller_tid": r.caller_tid,
                "caller_cpu": r.caller_cpu,
                "continuation": r.continuation,
                "context": {k.decode("latin1"): v.decode("latin1") for k, v in r.context.items()},
            }
        )
    json.dump(out, sys.stdout)


main()
