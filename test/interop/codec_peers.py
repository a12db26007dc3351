#!/usr/bin/python3
"""Judge dumpsieve's page codecs with the reference libraries.

stdin: {"dir": PATH, "pageSize": N, "count": N, "sets": [NAME, ...]}
In DIR: pages.bin (count raw pages); per set NAME.stored (stored pages
back to back), NAME.sizes and NAME.flags (u32 little-endian per page;
flags 0 = stored raw, else the page_desc flag of the codec).

Every stored page is decoded with liblzo2 (python3-lzo), libsnappy
(python3-snappy), libzstd (python3-zstandard) or zlib and compared with
the raw page. Every raw page is also compressed by the libraries and
written as ref-lzo, ref-snappy, ref-zstd (.stored/.sizes): liblzo2's
lzo1x_1_compress, snappy::RawCompress, ZSTD level 1.

stdout: {"checked": {NAME: n}, "mismatch": {NAME: [page, ...]}, "versions": {...}}
"""
import json
import os
import struct
import sys
import zlib

import lzo
import snappy
import zstandard

FLAG = {1: "zlib", 2: "lzo", 4: "snappy", 0x20: "zstd"}


def u32s(path, n):
    with open(path, "rb") as f:
        return list(struct.unpack("<%dI" % n, f.read(4 * n)))


def decode(codec, data, ps):
    if codec == "zlib":
        return zlib.decompress(data)
    if codec == "lzo":
        return lzo.decompress(data, False, ps)
    if codec == "snappy":
        return snappy.uncompress(data)
    return zstandard.ZstdDecompressor().decompress(data, max_output_size=ps)


def main():
    req = json.load(sys.stdin)
    d, ps, n = req["dir"], req["pageSize"], req["count"]
    with open(os.path.join(d, "pages.bin"), "rb") as f:
        pages = [f.read(ps) for _ in range(n)]
    checked, mismatch = {}, {}
    for name in req["sets"]:
        sizes = u32s(os.path.join(d, name + ".sizes"), n)
        flags = u32s(os.path.join(d, name + ".flags"), n)
        with open(os.path.join(d, name + ".stored"), "rb") as f:
            stored = f.read()
        at, bad, count = 0, [], 0
        for i in range(n):
            data = stored[at:at + sizes[i]]
            at += sizes[i]
            try:
                got = data if flags[i] == 0 else decode(FLAG[flags[i]], data, ps)
            except Exception:  # a reference decoder refusing the stream
                got = None
            if got != pages[i]:
                bad.append(i)
            count += 1
        checked[name], mismatch[name] = count, bad
    cctx = zstandard.ZstdCompressor(level=1)
    refs = {
        "ref-lzo": lambda p: lzo.compress(p, 1, False),
        "ref-snappy": snappy.compress,
        "ref-zstd": cctx.compress,
    }
    for name, fn in refs.items():
        out = [fn(p) for p in pages]
        with open(os.path.join(d, name + ".stored"), "wb") as f:
            f.write(b"".join(out))
        with open(os.path.join(d, name + ".sizes"), "wb") as f:
            f.write(struct.pack("<%dI" % n, *[len(o) for o in out]))
    versions = {"lzo": lzo.LZO_VERSION_STRING.decode() if isinstance(lzo.LZO_VERSION_STRING, bytes) else lzo.LZO_VERSION_STRING, "zstd": ".".join(map(str, zstandard.ZSTD_VERSION))}
    json.dump({"checked": checked, "mismatch": mismatch, "versions": versions}, sys.stdout)


if __name__ == "__main__":
    main()
