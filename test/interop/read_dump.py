#!/usr/bin/python3
"""Read pages of a dump with libkdumpfile or drgn and print their SHA-1.

stdin: {"reader": "libkdumpfile"|"drgn", "dump": PATH, "ranges": [[start, end), ...]}
stdout: {"pages": [[pfn, sha1 or null, error or null], ...], "attrs": {...}}
Errors are classified: "excluded" (the reader says the page was filtered
out), "oob" (beyond max_pfn), "absent" (not in any segment), else the text.
"""
import hashlib
import json
import sys

PAGE = 4096


def classify(msg):
    m = msg.lower()
    if "excluded" in m:
        return "excluded"
    if "out-of-bounds" in m:
        return "oob"
    if "page not found" in m or "could not find memory segment" in m or "no data" in m:
        return "absent"
    return msg.strip()


def main():
    req = json.load(sys.stdin)
    reader, dump, ranges = req["reader"], req["dump"], req["ranges"]
    out = []
    attrs = {}
    if reader == "libkdumpfile":
        import kdumpfile
        k = kdumpfile.kdumpfile(dump)
        for key in ("arch.name", "arch.page_size", "max_pfn", "linux.uts.release", "file.format"):
            try:
                v = k.attr[key]
                attrs[key] = v if isinstance(v, (int, str)) else str(v)
            except Exception as e:  # attribute missing
                attrs[key] = None
        for start, end in ranges:
            for pfn in range(start, end):
                try:
                    data = k.read(kdumpfile.KDUMP_MACHPHYSADDR, pfn * PAGE, PAGE)
                    out.append([pfn, hashlib.sha1(bytes(data)).hexdigest(), None])
                except Exception as e:
                    out.append([pfn, None, classify(str(e))])
    elif reader == "drgn":
        import drgn
        prog = drgn.Program()
        prog.set_core_dump(dump)
        for start, end in ranges:
            for pfn in range(start, end):
                try:
                    data = prog.read(pfn * PAGE, PAGE, True)
                    out.append([pfn, hashlib.sha1(data).hexdigest(), None])
                except Exception as e:
                    out.append([pfn, None, classify(str(e))])
    else:
        raise SystemExit("unknown reader " + reader)
    json.dump({"pages": out, "attrs": attrs}, sys.stdout)


main()
