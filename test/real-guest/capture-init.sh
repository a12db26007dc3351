#!/bin/busybox sh
# /init of a crash guest's capture (kdump) kernel: busybox sh, PID 1 of the
# kernel that `kexec -p` loaded and the panic started.
#
# Mounts the crash disk (ext2, /dev/vdb), saves the ELF headers of
# /proc/vmcore, runs each collector of COLLECTORS on /proc/vmcore in turn
# (dumpsieve through the bundle's launcher, then makedumpfile), each
# writing DISK/NAME.kdump with its report in DISK/NAME.log, and powers off.
# Lines starting "@@DS capture " are for the harness:
#   @@DS capture boot uptime=SECONDS         init started (seconds since the capture kernel booted)
#   @@DS capture meminfo WHEN KEY N kB       /proc/meminfo at start (after the initramfs is unpacked) and at the end
#   @@DS capture dmesg LINE                  kernel messages: memory at boot, initramfs, virtio_mem
#   @@DS capture vmcore bytes=N              the size of /proc/vmcore
#   @@DS capture start NAME                  a collector starts
#   @@DS capture run NAME exit=RC seconds=S hwm=KB samples=N
#                                            a collector's exit status, wall time, and the largest
#                                            VmHWM seen by polling /proc/PID/status every 0.2 s
#   @@DS capture hwm VmHWM=KB ...            dumpsieve's own /proc/self/status at exit (hwm.mjs)
#   @@DS capture log NAME begin|end          the collector's report, printed between these
#   @@DS capture end uptime=SECONDS
#   @@DS capture done
# Settings come from /capture.env (MODULES, COLLECTORS, ARGS).

/bin/busybox mkdir -p /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
. /capture.env

say() { echo "@@DS capture $*"; }
uptime_s() { cut -d' ' -f1 /proc/uptime; }
meminfo() { grep -E '^(MemTotal|MemFree|MemAvailable|Shmem|Slab|KernelStack|PageTables):' /proc/meminfo | sed "s/^/@@DS capture meminfo $1 /"; }
finish() {
  say "end uptime=$(uptime_s)"
  say "done"
  poweroff -f
}

say "boot uptime=$(uptime_s)"
say "cmdline $(cat /proc/cmdline)"
meminfo start
for m in $MODULES; do
  insmod "/lib/modules/$m.ko" || { say "error insmod $m"; finish; }
done
n=0
while [ ! -b /dev/vdb ]; do
  n=$((n + 1))
  [ $n -gt 200 ] && { say "error no /dev/vdb"; finish; }
  sleep 0.1
done
# The kernel's memory at boot ("Memory: ..."), the initramfs, and
# virtio_mem, which in a kdump kernel plugs nothing: it registers a
# pfn_is_ram callback that asks the device, per device block, whether
# /proc/vmcore may read it (drivers/virtio/virtio_mem.c,
# virtio_mem_init_kdump, 5.16).
dmesg | grep -E 'virtio_mem|Memory: |initrd|initramfs|software IO TLB' | sed 's/^/@@DS capture dmesg /'
mkdir -p /disk
mount -t ext2 /dev/vdb /disk || { say "error mount /dev/vdb"; finish; }
# Collectors kept on the disk (as on a root file system): link them into /.
if [ -d /disk/root ]; then
  (cd /disk/root && find . -type f) | while read -r f; do
    f=${f#./}
    mkdir -p "/${f%/*}"
    ln -sf "/disk/root/$f" "/$f"
  done
fi
say "vmcore bytes=$(stat -c %s /proc/vmcore)"
# The ELF header and program headers (x86: PT_NOTE then one PT_LOAD per
# System RAM range, elfcorehdr built by the crashed kernel or kexec-tools).
dd if=/proc/vmcore of=/disk/vmcore.head bs=4096 count=4 2> /dev/null

# Run "$@" in the background; poll its VmHWM (gone from /proc/PID/status
# once the process has exited, so this misses at most the last 0.2 s; the
# capture kernel has one CPU, which the polling shares).
run() {
  name=$1
  shift
  say "start $name"
  t0=$(uptime_s)
  "$@" > "/disk/$name.log" 2>&1 &
  pid=$!
  hwm=0
  samples=0
  state=R
  while [ "$state" != Z ] && [ -e "/proc/$pid/status" ]; do
    while read -r k v u; do
      case $k in
      State:) state=$v ;;
      VmHWM:) [ "$v" -gt "$hwm" ] && hwm=$v ;;
      esac
    done < "/proc/$pid/status" 2> /dev/null
    samples=$((samples + 1))
    [ "$state" != Z ] && sleep 0.2
  done
  wait $pid
  rc=$?
  t1=$(uptime_s)
  sync
  say "run $name exit=$rc seconds=$(awk "BEGIN { print $t1 - $t0 }") hwm=$hwm samples=$samples"
  say "log $name begin"
  cat "/disk/$name.log"
  say "log $name end"
}

for c in $COLLECTORS; do
  case $c in
  dumpsieve)
    # NODE_OPTIONS adds the exit hook to the launcher's own V8 flags.
    export NODE_OPTIONS=--import=/capture/hwm.mjs
    run dumpsieve /usr/lib/dumpsieve/dumpsieve filter $ARGS /proc/vmcore /disk/dumpsieve.kdump
    unset NODE_OPTIONS
    ;;
  makedumpfile)
    run makedumpfile /usr/sbin/makedumpfile $ARGS /proc/vmcore /disk/makedumpfile.kdump
    ;;
  esac
done
meminfo end
umount /disk
finish
