#!/bin/busybox sh
# /init of a dumpsieve real guest (busybox sh, PID 1).
#
# Talks to the harness over the serial console: lines starting "@@DS " are
# for it; it answers "go NAME" when the guest may pass the step NAME.
#   1. (EARLY_DUMP=1) wait "early": the harness dumps the guest before
#      qemu_fw_cfg is loaded, so that dump has no VMCOREINFO;
#   2. load the modules, fill page cache (tmpfs: random, patterned and zero
#      data) and anonymous memory, wait "filled" (the harness inflates the
#      balloon and resizes virtio-mem);
#   3. print /proc/meminfo, /proc/iomem, the kernel image symbols, the
#      memory blocks, the guest's own counts and offline ranges from
#      /proc/kpageflags; save /proc/kpageflags to the virtio-blk disk last;
#      print "ready" and wait (the harness pauses and dumps).
# A crash guest (CRASH=1) also loads its capture kernel with `kexec -s -p`
# from the crash disk (/dev/vdb) after step 2, and after "ready" waits
# "crash" (the harness has taken its reference dump) and panics
# (sysrq c): the capture kernel's /init is capture-init.sh.
# Settings come from /guest.env (written by the harness per guest).

/bin/busybox mkdir -p /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
. /guest.env
stty -echo 2>/dev/null

say() { echo "@@DS $*"; }
wait_go() {
  say "wait $1"
  while read -r line; do
    case "$line" in "go $1") return 0 ;; esac
  done
  say "error console closed"
  poweroff -f
}
fail() {
  say "error $*"
  poweroff -f
}

say "boot release=$(uname -r)"
# The kernel turns THP off below 512 MiB of RAM (hugepage_init); the
# guests want anonymous THPs like a bigger machine's.
[ -n "$THP" ] && echo "$THP" > /sys/kernel/mm/transparent_hugepage/enabled
say "cmdline $(cat /proc/cmdline)"
[ "$EARLY_DUMP" = 1 ] && wait_go early

for m in $MODULES; do
  insmod "/lib/modules/$m.ko" || fail "insmod $m"
done
n=0
while [ ! -b /dev/vda ]; do
  n=$((n + 1))
  [ $n -gt 200 ] && fail "no /dev/vda"
  sleep 0.1
done
say "modules $MODULES"

# Page cache (tmpfs: shmem pages) with known contents.
mkdir -p /fill
mount -t tmpfs -o size=$((FILL_RANDOM_MB + FILL_PATTERN_MB + FILL_ZERO_MB + 8))m fill /fill || fail "tmpfs"
dd if=/dev/urandom of=/fill/random bs=1M count="$FILL_RANDOM_MB" 2>/dev/null || fail "random fill"
yes 'dumpsieve real guest: page cache with a known pattern.' | head -c $((FILL_PATTERN_MB << 20)) > /fill/pattern
head -c $((FILL_ZERO_MB << 20)) /dev/zero > /fill/zero
# Anonymous memory: dd holds a copy of the random data in its buffer,
# blocked writing to a fifo whose only reader never reads.
mkfifo /tmp/hold
sleep 2147483647 < /tmp/hold &
dd if=/fill/random of=/tmp/hold bs="${ANON_MB}M" count=1 2>/dev/null &
# Processes: kernel stacks, page tables, task structs (unmovable memory).
i=0
while [ $i -lt "${PROCESSES:-0}" ]; do
  sleep 2147483647 &
  i=$((i + 1))
done
sleep 2
say "filled"
wait_go filled
sleep 1

if [ "$CRASH" = 1 ]; then
  # After the balloon and virtio-mem have settled: kexec_file_load builds
  # the capture kernel's ELF headers from the System RAM ranges of now.
  mkdir -p /crash
  mount -t ext2 -o ro /dev/vdb /crash || fail "mounting the crash disk"
  kexec -s -p /crash/vmlinuz --initrd=/crash/capture.cpio.zst --append="$CRASH_APPEND" 2>&1 | sed 's/^/@@DS kexec /'
  umount /crash
  [ "$(cat /sys/kernel/kexec_crash_loaded)" = 1 ] || fail "kexec -p did not load the capture kernel"
  say "crash loaded size=$(cat /sys/kernel/kexec_crash_size)"
fi

sed 's/^/@@DS meminfo /' /proc/meminfo
sed 's/^/@@DS iomem /' /proc/iomem
# Kernel image bounds (virtual; /proc/iomem gives the physical "Kernel code" start).
grep -E ' (_text|_etext|_sdata|_edata|__init_begin|__init_end|__bss_start|__bss_stop|_end)$' /proc/kallsyms | sed 's/^/@@DS ksym /' 
say "thp $(cat /sys/kernel/mm/transparent_hugepage/enabled)"
say "memblock size 0x$(cat /sys/devices/system/memory/block_size_bytes)"
for b in /sys/devices/system/memory/memory*; do
  say "memblock ${b##*/memory} $(cat "$b/state") $(cat "$b/valid_zones" 2>/dev/null | tr ' ' ,)"
done

# The guest's own page flags. The counts and offline ranges printed come
# from one pass over /proc/kpageflags; the copy saved to the disk is taken
# last, straight to the device (O_DIRECT: no page cache), so that it shows
# the memory as the dump will.
say "kpageflags bytes=$(wc -c < /proc/kpageflags)"
od -A d -t x8 /proc/kpageflags | awk -f /kpageflags.awk
dd if=/proc/kpageflags of=/dev/vda bs=4k oflag=direct 2> /dev/null || fail "saving kpageflags"
say "ready"
if [ "$CRASH" = 1 ]; then
  wait_go crash
  echo c > /proc/sysrq-trigger
fi
wait_go never
