# The guest's own page-flag truth, from a /proc/kpageflags snapshot piped
# through `od -A d -t x8` (busybox od: two u64 per line, offsets in decimal,
# repeated lines folded into "*", which keeps long runs of identical flags —
# holes, free memory — cheap to scan under TCG).
#
# Prints on the console:
#   @@DS kpf entries N
#   @@DS kpf bit B COUNT        for every bit 0..26 set in at least one entry
#   @@DS kpf offline START LEN  for every run of KPF_OFFLINE (bit 23) pfns
#   @@DS kpf word HEX COUNT     every distinct flag word and its count
# Bit numbers: include/uapi/linux/kernel-page-flags.h.

function hexval(s,    i, v) {
  v = 0
  for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
  return v
}

# One word at pfn, repeated n times (n > 0).
function add(w, n, p,    o) {
  h[w] += n
  o = (substr(w, 11, 1) in OFF)
  if (o && !inrun) { start = p; inrun = 1 }
  else if (!o && inrun) { print "@@DS kpf offline " start " " (p - start); inrun = 0 }
}

BEGIN {
  # Hex digit 11 of 16 holds bits 20..23: KPF_OFFLINE (23) is its top bit.
  split("8 9 a b c d e f", d, " ")
  for (i in d) OFF[d[i]] = 1
  inrun = 0; star = 0; nw = 0; lastoff = -1
}

$1 == "*" { star = 1; next }

{
  # Offsets are zero-padded decimal: strip the zeros (awk may read them as octal).
  o0 = $1; sub(/^0+/, "", o0); off = o0 + 0
  if (star && nw > 0) {
    # The last line (nw words at lastoff) repeats until this offset.
    reps = (off - lastoff) / (8 * nw) - 1
    p = lastoff / 8 + nw
    if (nw == 1 || (substr(lw[1], 11, 1) in OFF) == (substr(lw[2], 11, 1) in OFF)) {
      for (k = 1; k <= nw; k++) add(lw[k], reps, p + k - 1)
    } else {
      for (r = 0; r < reps; r++) for (k = 1; k <= nw; k++) add(lw[k], 1, p + r * nw + k - 1)
    }
  }
  star = 0
  nw = NF - 1
  for (k = 2; k <= NF; k++) { lw[k - 1] = $k; add($k, 1, off / 8 + k - 2) }
  lastoff = off
  total = off / 8
}

END {
  if (inrun) print "@@DS kpf offline " start " " (total - start)
  print "@@DS kpf entries " total
  for (w in h) {
    print "@@DS kpf word " w " " h[w]
    v = hexval(substr(w, 9, 8))
    for (b = 0; b <= 26; b++) if (and(v, lshift(1, b))) bits[b] += h[w]
  }
  for (b = 0; b <= 26; b++) if (bits[b]) print "@@DS kpf bit " b " " bits[b]
}
