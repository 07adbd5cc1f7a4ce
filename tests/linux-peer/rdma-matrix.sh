# NVMe/RDMA against Linux over Soft-RoCE, all in one guest (this machine's kernel has no
# RDMA), run by scripts/linux-rdma-test as
#   linux-peer run tests/linux-peer/rdma-matrix.sh BUILD_DIR SIZE_MIB
# Brings rxe0 up, then checks, printing "CHECK PASS|FAIL <what>":
#  1. the kernel's nvme-rdma host against nvmf-target (listening on RDMA and TCP at once):
#     discover, then with 1 and with 4 I/O queues connect, id-ctrl, fio write-and-verify at
#     4 KiB, 128 KiB and 1 MiB, disconnect, and a kernel log free of NVMe errors;
#  2. nvmfctl against nvmf-target over RDMA (verify at 4 KiB, 128 KiB and 1 MiB, 1 and 4
#     queues), and one namespace served over TCP and RDMA at once: concurrent verifies on
#     both transports, and data written over RDMA read back over TCP;
#  3. failures: a host killed mid-I/O (the target serves the next one), a target killed
#     mid-I/O (with --ctrl-loss-tmo 0 the host fails promptly, with an error), a connection over the target's
#     limit (rejected with the binding's status, which the host reports), poll mode;
#  4. nvmfctl against the kernel's nvmet-rdma: discover, identify, verify (1 and 4 queues).
# Exits non-zero when anything failed.
build=$1 size=${2:-8}
B=$build/tools
nqn=nqn.2024-01.io.nvmf:rdma-test
knqn=nqn.2024-01.io.nvmf:rdma-kernel-target
failed=0
check() {  # check NAME COMMAND...
  local name=$1; shift
  if "$@" >/run/job/check.out 2>&1; then echo "CHECK PASS $name"; else
    echo "CHECK FAIL $name"; sed 's/^/    /' /run/job/check.out | tail -30; failed=1; return 1; fi
}
echo
rdma_up || { echo "CHECK FAIL rxe0 up"; exit 1; }
kmod_load nvme-rdma || { echo "CHECK FAIL cannot load nvme-rdma"; exit 1; }
dmesg -n 1
echo "rxe0 at $TRADDR"

$B/nvmf-target --listen "rdma:$TRADDR:4420" --listen "tcp:$TRADDR:4422" --nqn "$nqn" \
  --ns mem:$(( size * 8 ))M >/run/job/target.log 2>&1 &
target_pid=$!
if ! rdma_wait_listen 4420 60 "$target_pid"; then
  echo "CHECK FAIL nvmf-target listens on RDMA"; cat /run/job/target.log; exit 1
fi
echo "CHECK PASS nvmf-target listens on rdma:$TRADDR:4420 and tcp:$TRADDR:4422"

# ---- 1. the kernel host against nvmf-target
discover() {
  nvme discover -t rdma -a "$TRADDR" -s 4420 | tee /run/job/discover.txt &&
    awk -v n="$nqn" '/^trtype:/{t=$2} /^subnqn:/{ if ($2 == n) print t }' /run/job/discover.txt |
      sort | tr '\n' ' ' | grep -qx 'rdma tcp ' &&
    grep -qE 'rdma_qptype: *connected' /run/job/discover.txt &&
    grep -qE 'rdma_cms: *rdma-cm' /run/job/discover.txt
}
check "kernel: nvme discover over RDMA lists $nqn on its RDMA and TCP ports" discover
fio_job() {  # NAME fio-arguments...
  local name=$1; shift
  fio --name="$name" --filename="$DEV" --direct=1 --ioengine=libaio --size="${size}M" \
    --verify=crc32c --do_verify=1 --verify_fatal=1 --output-format=terse --terse-version=3 "$@" \
    >/run/job/fio.out 2>&1 || { cat /run/job/fio.out; return 1; }
  awk -F';' '{ printf "    fio %s: read %s KiB/s, write %s KiB/s\n", $3, $7, $48 }' /run/job/fio.out
}
idctrl() { nvme id-ctrl "$DEV" | tee /run/job/idctrl.txt | grep -E '^(mn|subnqn|sgls|ioccsz|mdts)' &&
  grep -q '^mn *: nvmf' /run/job/idctrl.txt && grep -q "^subnqn *: $nqn" /run/job/idctrl.txt &&
  grep -qE '^sgls *: (0x)?0*100005' /run/job/idctrl.txt; }
quiet() { ! dmesg | grep -iE 'nvme.*(error|fail|reset|timeout)'; }
for queues in 1 4; do
  name="kernel host, $queues I/O queue(s)"
  dmesg -C
  check "$name: connect" nvme connect -t rdma -a "$TRADDR" -s 4420 -n "$nqn" -i "$queues" || continue
  if ! DEV=$(nvme_dev "$nqn" 10); then echo "CHECK FAIL $name: no block device"; failed=1; nvme disconnect -n "$nqn"; continue; fi
  check "$name: id-ctrl shows this target and keyed SGLs" idctrl
  check "$name: fio 4k random writes qd16, verified" fio_job r4k --rw=randwrite --bs=4k --iodepth=16
  check "$name: fio 128k sequential writes qd8, verified" fio_job s128k --rw=write --bs=128k --iodepth=8
  check "$name: fio 1m writes qd4, verified" fio_job b1m --rw=write --bs=1m --iodepth=4
  check "$name: disconnect" nvme disconnect -n "$nqn"
  check "$name: no NVMe errors, resets or timeouts in the kernel log" quiet
done

# ---- 2. our host against our target
verify() {  # TRANSPORT PORT ARGS...
  local t=$1 p=$2; shift 2
  timeout 300 $B/nvmfctl verify -t "$t" -a "$TRADDR" -s "$p" -n "$nqn" --size "${size}M" "$@"
}
check "nvmfctl over RDMA: verify 4k qd16, 1 queue" verify rdma 4420 --bs 4k --qd 16 -i 1
check "nvmfctl over RDMA: verify 128k qd8, 4 queues" verify rdma 4420 --bs 128k --qd 8 -i 4
check "nvmfctl over RDMA: verify 1m qd4, 4 queues" verify rdma 4420 --bs 1m --qd 4 -i 4
others() {  # list, perf: every nvmfctl subcommand works over RDMA
  $B/nvmfctl list -t rdma -a "$TRADDR" -s 4420 -n "$nqn" | tee /dev/stderr | grep -qE '^1 ' &&
    timeout 60 $B/nvmfctl perf -t rdma -a "$TRADDR" -s 4420 -n "$nqn" --rw randrw --bs 4k --qd 8 \
      --time 2 | tee /dev/stderr | grep -qE 'total +[1-9][0-9]* IOPS'
}
check "nvmfctl list and perf over RDMA" others
both() {
  verify rdma 4420 --bs 64k --qd 8 -i 2 --start 0 >/run/job/v-rdma.out 2>&1 & local a=$!
  verify tcp 4422 --bs 64k --qd 8 -i 2 --start "$(( size * 2 ))M" >/run/job/v-tcp.out 2>&1 & local b=$!
  local ra=0 rb=0
  wait "$a" || ra=$?
  wait "$b" || rb=$?
  cat /run/job/v-rdma.out /run/job/v-tcp.out
  [[ $ra == 0 && $rb == 0 ]]
}
check "one namespace over RDMA and TCP at once: concurrent verifies pass" both
cross() {
  head -c 1048576 /dev/urandom >/run/job/pattern
  $B/nvmfctl write -t rdma -a "$TRADDR" -s 4420 -n "$nqn" -b 4096 -c 2048 -d /run/job/pattern &&
    $B/nvmfctl read -t tcp -a "$TRADDR" -s 4422 -n "$nqn" -b 4096 -c 2048 -d /run/job/back &&
    cmp /run/job/pattern /run/job/back
}
check "1 MiB written over RDMA reads back over TCP" cross
target_log_errors() { ! grep -iE 'error|refused|cannot' /run/job/target.log; }
check "nvmf-target logged no errors" target_log_errors

# ---- 3. failures
vanish_host() {
  verify rdma 4420 --bs 4k --qd 16 -i 2 --size "$(( size * 8 ))M" >/run/job/v.out 2>&1 & local v=$!
  sleep 3
  kill -9 "$v"; wait "$v"
  verify rdma 4420 --bs 64k --qd 8 -i 1 && grep -c 'closed' /run/job/target.log
}
check "a host killed mid-I/O: the target serves the next host" vanish_host
vanish_target() {
  $B/nvmf-target --listen "rdma:$TRADDR:4424" --nqn "$nqn" --ns mem:64M >/run/job/t2.log 2>&1 & local t=$!
  rdma_wait_listen 4424 30 "$t" || return 1
  (timeout 120 $B/nvmfctl verify -t rdma -a "$TRADDR" -s 4424 -n "$nqn" --size 64M --bs 4k --qd 16 --ctrl-loss-tmo 0 \
     >/run/job/v.out 2>&1; echo $? >/run/job/v.rc) & local v=$!
  sleep 3
  kill -9 "$t"; wait "$t"
  local start=$SECONDS
  wait "$v"
  local rc; rc=$(cat /run/job/v.rc)
  cat /run/job/v.out
  echo "nvmfctl exit $rc, $(( SECONDS - start )) s after the target died"
  [[ $rc != 0 && $rc != 124 ]] && (( SECONDS - start < 40 ))
}
check "a target killed mid-I/O: the host fails with an error, promptly" vanish_target
refused() {
  $B/nvmf-target --listen "rdma:$TRADDR:4426" --nqn "$nqn" --ns mem:16M --max-connections 2 \
    >/run/job/t3.log 2>&1 & local t=$!
  rdma_wait_listen 4426 30 "$t" || return 1
  local out rc=0
  out=$(timeout 60 $B/nvmfctl verify -t rdma -a "$TRADDR" -s 4426 -n "$nqn" --size 1M -i 4 2>&1) || rc=$?
  kill "$t"; wait "$t"
  echo "$out"; cat /run/job/t3.log
  [[ $rc != 0 ]] && grep -q 'rejected the connection: no resources' <<<"$out" &&
    grep -q 'connection limit' /run/job/t3.log
}
check "a connection over the target's limit is rejected, and the host says why" refused
nolistener() {
  local out rc=0
  out=$(timeout 60 $B/nvmfctl identify -t rdma -a "$TRADDR" -s 4499 -n "$nqn" 2>&1) || rc=$?
  echo "$out"
  [[ $rc != 0 ]] && grep -q 'nothing listens for NVMe/RDMA' <<<"$out"
}
check "a port nobody listens on: the host says so" nolistener
polled() {
  $B/nvmf-target --poll --listen "rdma:$TRADDR:4428" --nqn "$nqn" --ns mem:64M >/run/job/t4.log 2>&1 & local t=$!
  rdma_wait_listen 4428 30 "$t" || return 1
  local rc=0
  timeout 300 $B/nvmfctl verify --poll -t rdma -a "$TRADDR" -s 4428 -n "$nqn" --size "${size}M" --bs 16k --qd 8 || rc=$?
  kill "$t"; wait "$t"
  return $rc
}
check "poll mode (target and host): verify 16k qd8" polled
stopped() {
  kill "$target_pid"; local rc=0; wait "$target_pid" || rc=$?
  cat /run/job/t2.log /run/job/t3.log /run/job/t4.log >>/run/job/target.log
  ! grep -E 'Sanitizer|runtime error' /run/job/target.log && [[ $rc == 0 ]]
}
check "nvmf-target stops cleanly: exit 0, no sanitizer report from any target" stopped

# ---- 4. our host against the kernel's nvmet-rdma
dev=$(ramdisk $(( size * 4 ))) && nvmet_export "$knqn" "$dev" "" 2 "$TRADDR" 4430 rdma &&
  rdma_wait_listen 4430 30 || { echo "CHECK FAIL nvmet-rdma export"; exit 1; }
kdiscover() {
  timeout 120 $B/nvmfctl discover -t rdma -a "$TRADDR" -s 4430 | tee /dev/stderr | grep -q "subnqn: *$knqn"
}
check "nvmfctl discover against nvmet-rdma" kdiscover
kidentify() {
  timeout 120 $B/nvmfctl identify -t rdma -a "$TRADDR" -s 4430 -n "$knqn" | tee /dev/stderr | grep -q '^mdts'
}
check "nvmfctl identify against nvmet-rdma" kidentify
kverify() { timeout 300 $B/nvmfctl verify -t rdma -a "$TRADDR" -s 4430 -n "$knqn" --size "${size}M" "$@"; }
check "nvmfctl verify against nvmet-rdma: 4k qd16, 1 queue" kverify --bs 4k --qd 16 -i 1
check "nvmfctl verify against nvmet-rdma: 128k qd8, 4 queues" kverify --bs 128k --qd 8 -i 4
check "nvmfctl verify against nvmet-rdma: 1m qd4, 4 queues" kverify --bs 1m --qd 4 -i 4
exit $failed
