#!/usr/bin/python3
"""Kernel virtual memory of a dump through libkdumpfile (libaddrxlat,
its own page-table walk from VMCOREINFO: 4 or 5 levels, KASLR
phys_base), independently of dumpsieve.

stdin: {"dump": PATH, "reads": [[vaddr_hex, size], ...]}
stdout: {"data": [hex or null (unmapped or excluded), ...]}
"""
import json
import sys

import kdumpfile


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
    json.dump({"data": data}, sys.stdout)


main()
