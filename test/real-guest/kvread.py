#!/usr/bin/python3
"""Kernel virtual memory of a dump through libkdumpfile and libaddrxlat
(their own page-table walk from VMCOREINFO: 4 or 5 levels, KASLR
phys_base), independently of dumpsieve.

stdin: {"dump": PATH,
        "reads": [[vaddr_hex, size], ...],       bytes at kernel virtual addresses
        "kernel_map": true|false}                physical pfn ranges of the kernel-text
                                                 mapping (__START_KERNEL_map, KERNEL_IMAGE_SIZE)
stdout: {"data": [hex or null, ...], "kernel_map": [[start_pfn, end_pfn], ...]}
"""
import json
import sys

import addrxlat
import kdumpfile

START_KERNEL_MAP = 0xFFFFFFFF80000000
PAGE = 4096
PMD = 2 << 20


def kernel_map(k):
    ctx = k.get_addrxlat_ctx()
    system = k.get_addrxlat_sys()

    def phys(v):
        try:
            fa = addrxlat.FullAddress(addrxlat.KVADDR, v)
            fa.conv(addrxlat.KPHYSADDR, ctx, system)
            return fa.addr
        except Exception:  # not mapped
            return None

    try:
        size = int(k.attr["linux.vmcoreinfo.NUMBER.KERNEL_IMAGE_SIZE"])
    except Exception:
        size = 1 << 30
    pfns = []
    for chunk in range(START_KERNEL_MAP, START_KERNEL_MAP + size, PMD):
        if phys(chunk) is None and phys(chunk + PMD - PAGE) is None:
            continue
        for v in range(chunk, chunk + PMD, PAGE):
            p = phys(v)
            if p is not None:
                pfns.append(p // PAGE)
    pfns.sort()
    ranges = []
    for p in pfns:
        if ranges and ranges[-1][1] == p:
            ranges[-1][1] = p + 1
        elif not ranges or ranges[-1][1] < p:
            ranges.append([p, p + 1])
    return ranges


def main():
    req = json.load(sys.stdin)
    k = kdumpfile.kdumpfile(req["dump"])
    k.attr["addrxlat.ostype"] = "linux"
    data = []
    for vaddr, size in req.get("reads", []):
        try:
            data.append(bytes(k.read(kdumpfile.KDUMP_KVADDR, int(vaddr, 16), size)).hex())
        except Exception:  # unmapped or excluded
            data.append(None)
    out = {"data": data}
    if req.get("kernel_map"):
        out["kernel_map"] = kernel_map(k)
    json.dump(out, sys.stdout)


main()
