# A Linux kernel NVMe/TCP target (nvmet-tcp) for scripts/linux-peer-test, run in the guest by
#   linux-peer run --fwd HOSTPORT:4420 tests/linux-peer/nvmet-target.sh NQN [SIZE_MIB] [debug]
# Namespace 1 of NQN is a SIZE_MIB (default 64) ram disk, any host may connect. Prints a
# line starting with READY once the port listens, then streams the kernel log to the
# console (so nvmet-tcp's complaints reach the test's log) until the guest is stopped.
# With "debug", nvmet and nvmet_tcp debug messages are switched on too (very chatty).
nqn=$1 size=${2:-64} debug=${3:-}
dev=$(ramdisk "$size") || { echo "nvmet-target: no ram disk"; exit 1; }
nvmet_export "$nqn" "$dev" || { echo "nvmet-target: nvmet setup failed"; dmesg | tail -20; exit 1; }
if [[ $debug == debug ]]; then
  mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
  echo 'module nvmet +p; module nvmet_tcp +p' > /sys/kernel/debug/dynamic_debug/control ||
    echo "nvmet-target: cannot enable debug messages"
fi
dmesg | grep -iE 'nvme|nvmet' | sed 's/^/guest-kernel: /'
dmesg -C
dmesg -n 1  # the kernel's own console output would repeat what follows, unprefixed
echo "READY nvmet-tcp nqn=$nqn size=${size}MiB dev=$dev kernel=$(uname -r)"
exec dmesg -w | sed -u 's/^/guest-kernel: /'
