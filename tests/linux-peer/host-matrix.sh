# The Linux kernel's NVMe/TCP host against nvmf-target, run in the guest by
#   linux-peer run tests/linux-peer/host-matrix.sh PORT NQN JOBS SIZE_MIB EXTRAS COMBO...
# EXTRAS is "-" or a comma-separated list asking for extra checks at the end:
# PRIVATE_NQN=nqn (a subsystem this host may not use: connect must be refused),
# KATO_IDLE=seconds (an idle connection stays up across keep-alive periods), RESTART=1 (the
# host reconnects across a restart of nvmf-target, which the host script performs when
# it reads "REQUEST-RESTART" on the console, a fio verify job running across it finishes
# without an error, and the data written before reads back),
# RECONFIGURE=1 (while fio verifies namespace 1, namespace 2 is added and then removed
# over the target's control socket: the kernel sees the block device appear and go without
# reconnecting, and namespace 1's I/O sees no error), MULTIPATH=1 (native multipath over
# the target's two ports, PORT and PORT+1, with ANA: a fio verify job keeps running while
# one path turns inaccessible and back, and while the other's listener is removed and
# added back), RESV=1 (persistent reservations from two host NQNs and host IDs: host A
# registers and takes a Write Exclusive reservation with nvme resv-*, resv-report shows
# both registrants and A as holder, a write from host B is refused with Reservation
# Conflict while B's read works, and after A releases B's write succeeds). The guest asks the host script for target changes with a console line
# "REQUEST-CTL ARGS...", which it runs as nvmf-targetctl ARGS.
# where each COMBO is "name|nvme connect flags" (e.g. "digests|-g -G -i 4 -Q 32") and JOBS
# is "basic" (one 4 KiB random write-and-verify job) or "full" (4 KiB random writes at
# QD32, 128 KiB sequential writes, 1 MiB writes, and a 70/30 random read/write mix, all
# verified). For every combination: nvme connect, id-ctrl and id-ns, the fio jobs, nvme
# disconnect, and no NVMe errors, resets or timeouts in the kernel log. Prints
# "CHECK PASS|FAIL <what>" lines; exits non-zero when anything failed.
port=$1 nqn=$2 jobs=$3 size=$4 extras=$5
shift 5
PRIVATE_NQN= KATO_IDLE= RESTART= RECONFIGURE= MULTIPATH= RESV=
if [[ $extras != - ]]; then IFS=, read -r -a kv <<<"$extras"; for x in "${kv[@]}"; do declare "$x"; done; fi
failed=0
check() {  # check NAME COMMAND...
  local name=$1; shift
  if "$@" >/run/job/check.out 2>&1; then echo "CHECK PASS $name"; else
    echo "CHECK FAIL $name"; sed 's/^/    /' /run/job/check.out | tail -30; failed=1; return 1; fi
}
echo  # the console may still hold boot output on this line
kmod_load nvme-tcp || { echo "CHECK FAIL cannot load nvme-tcp"; exit 1; }
dmesg -n 1

discover() {
  nvme discover -t tcp -a 10.0.2.2 -s "$port" | tee /run/job/discover.txt &&
    grep -q "subnqn: *$nqn" /run/job/discover.txt && grep -q "trsvcid: *$port" /run/job/discover.txt
}
check "nvme discover lists $nqn on port $port" discover

device() {
  local d
  for _ in $(seq 100); do
    d=$(nvme list -o json 2>/dev/null | python3 -c 'import json,sys
d=json.load(sys.stdin); print(next((x["DevicePath"] for x in d.get("Devices",[])),""))' 2>/dev/null)
    [[ -n $d && -b $d ]] && { echo "$d"; return 0; }
    sleep 0.1
  done
  return 1
}

fio_job() {  # NAME fio-arguments...
  local name=$1; shift
  fio --name="$name" --filename="$DEV" --direct=1 --ioengine=libaio --size="${size}M" \
    --verify=crc32c --do_verify=1 --verify_fatal=1 --output-format=terse --terse-version=3 "$@" \
    >/run/job/fio.out 2>&1 || { cat /run/job/fio.out; return 1; }
  awk -F';' '{ printf "    fio %s: read %s KiB/s, write %s KiB/s\n", $3, $7, $48 }' /run/job/fio.out
}

idctrl() { nvme id-ctrl "$DEV" | tee /run/job/idctrl.txt | grep -E '^(mn|subnqn|cntlid|mdts)' &&
  grep -q '^mn *: nvmf' /run/job/idctrl.txt && grep -q "^subnqn *: $nqn" /run/job/idctrl.txt; }
# nsze in 512-byte blocks is the block device's size in sectors.
idns() { nvme id-ns "$DEV" | tee /run/job/idns.txt | grep -E '^(nsze|lbaf  0)' &&
  grep -q "^nsze *: 0x$(printf '%x' "$(cat "/sys/block/${DEV#/dev/}/size")")" /run/job/idns.txt; }

for combo in "$@"; do
  name=${combo%%|*} flags=${combo#*|}
  echo "== $name: nvme connect $flags"
  dmesg -C
  if ! check "$name: connect" nvme connect -t tcp -a 10.0.2.2 -s "$port" -n "$nqn" $flags; then continue; fi
  if ! DEV=$(device); then echo "CHECK FAIL $name: no block device"; failed=1; nvme disconnect -n "$nqn"; continue; fi
  check "$name: id-ctrl shows this target" idctrl
  check "$name: id-ns shows the namespace" idns
  check "$name: fio 4k random writes qd32, verified" fio_job rand4k --rw=randwrite --bs=4k --iodepth=32
  if [[ $jobs == full ]]; then
    check "$name: fio 128k sequential writes, verified" fio_job seq128k --rw=write --bs=128k --iodepth=8
    check "$name: fio 1m writes, verified" fio_job big1m --rw=write --bs=1m --iodepth=4
    check "$name: fio 70/30 random read/write, verified" fio_job mix --rw=randrw --rwmixread=70 --bs=8k --iodepth=16
  fi
  check "$name: disconnect" nvme disconnect -n "$nqn"
  quiet() { ! dmesg | grep -iE 'nvme.*(error|fail|reset|timeout)' ; }
  check "$name: no NVMe errors, resets or timeouts in the kernel log" quiet
done

if [[ -n ${PRIVATE_NQN:-} ]]; then
  echo "== a host that is not allowed"
  dmesg -C
  refused() { ! nvme connect -t tcp -a 10.0.2.2 -s "$port" -n "$PRIVATE_NQN" && sleep 0.5 &&
    dmesg | tee /dev/stderr | grep -qiE 'not allowed|invalid host'; }
  check "connect to $PRIVATE_NQN is refused as an invalid host" refused
fi

if [[ -n ${KATO_IDLE:-} ]]; then
  echo "== an idle connection across keep-alive periods (kato 2 s, idle ${KATO_IDLE} s)"
  dmesg -C
  if check "connect with -k 2" nvme connect -t tcp -a 10.0.2.2 -s "$port" -n "$nqn" -k 2; then
    DEV=$(device)
    ctrl=$(basename "$(ls -d /sys/class/nvme/nvme* | head -1)")
    sleep "$KATO_IDLE"
    live() { [[ $(cat "/sys/class/nvme/$ctrl/state") == live ]] && dd if="$DEV" of=/dev/null bs=4k count=1 iflag=direct &&
      ! dmesg | grep -iE 'nvme.*(error|fail|reset|timeout|reconnect)'; }
    check "still live after ${KATO_IDLE} s idle, no resets" live
    check "disconnect" nvme disconnect -n "$nqn"
  fi
fi

if [[ -n ${RECONFIGURE:-} ]]; then
  echo "== namespaces added and removed while the host is connected (asynchronous events)"
  dmesg -C
  if check "connect" nvme connect -t tcp -a 10.0.2.2 -s "$port" -n "$nqn" -i 2; then
    DEV=$(device)
    ctrl=$(basename "$(ls -d /sys/class/nvme/nvme* | head -1)")
    N2=${DEV%n1}n2  # namespace 2's block device: the same name with the other NSID
    # Namespace 1 keeps working through both changes.
    fio --name=busy --filename="$DEV" --direct=1 --ioengine=libaio --rw=randwrite --bs=4k --iodepth=8       --size=8M --time_based --runtime=20 --verify=crc32c --do_verify=1 --verify_fatal=1       --output-format=terse >/run/job/busy.out 2>&1 &
    busy=$!
    sleep 1
    echo "REQUEST-CTL ns-add $nqn mem:32M --nsid 2"
    appeared() { for _ in $(seq 300); do [[ -b $N2 ]] && return 0; sleep 0.1; done
      ls /dev/nvme*; return 1; }
    if check "namespace 2 appears as $N2 without reconnecting" appeared; then
      n2io() { fio --name=n2 --filename="$N2" --direct=1 --ioengine=libaio --rw=randwrite --bs=4k         --iodepth=8 --size=4M --verify=crc32c --do_verify=1 --verify_fatal=1 --output-format=terse         >/run/job/n2.out 2>&1 || { cat /run/job/n2.out; return 1; }; }
      check "namespace 2: fio 4k random writes, verified" n2io
    fi
    echo "REQUEST-CTL ns-remove $nqn 2"
    gone() { for _ in $(seq 300); do [[ ! -e $N2 ]] && return 0; sleep 0.1; done; return 1; }
    check "namespace 2 disappears" gone
    busy_ok() { wait "$busy" || { cat /run/job/busy.out; return 1; }; }
    check "namespace 1: fio verify ran through both changes without an error" busy_ok
    live() { [[ $(cat "/sys/class/nvme/$ctrl/state") == live ]] &&
      ! dmesg | grep -iE 'nvme.*(error|fail|reset|timeout|reconnect)'; }
    check "the controller stayed live: no resets or errors in the kernel log" live
    dmesg | grep -iE 'nvme' | tail -6 | sed 's/^/    kernel: /'
    check "disconnect" nvme disconnect -n "$nqn"
  fi
fi

if [[ -n ${MULTIPATH:-} ]]; then
  echo "== ANA multipath: two paths, a fio verify job across path changes"
  dmesg -C
  port2=$((port + 1))
  path_of() {  # TRSVCID -> the controller (nvmeN) of that path
    local c
    for c in /sys/class/nvme/nvme*; do
      grep -q "trsvcid=$1\b" "$c/address" 2>/dev/null && { basename "$c"; return 0; }
    done
    return 1
  }
  # The path device of controller $1 for namespace 1 (nvmeXcYn1), and its ANA state.
  ana_of() { local p; p=$(ls -d /sys/class/nvme/"$1"/nvme*c*n1 2>/dev/null | head -1) &&
    cat "$p/ana_state"; }
  state_of() { cat "/sys/class/nvme/$1/state" 2>/dev/null; }
  wait_for() {  # TENTHS COMMAND...: until COMMAND succeeds
    local n=$1; shift
    for _ in $(seq "$n"); do "$@" && return 0; sleep 0.1; done
    "$@"
  }
  both() {
    nvme connect -t tcp -a 10.0.2.2 -s "$port" -n "$nqn" -i 2 --reconnect-delay=1 --ctrl-loss-tmo=120 &&
      nvme connect -t tcp -a 10.0.2.2 -s "$port2" -n "$nqn" -i 2 --reconnect-delay=1 --ctrl-loss-tmo=120 &&
      [[ $(cat /sys/module/nvme_core/parameters/multipath) == Y ]] && sleep 1 &&
      A=$(path_of "$port") && B=$(path_of "$port2") && echo "paths: $A (port $port), $B (port $port2)" &&
      [[ $(ana_of "$A") == optimized && $(ana_of "$B") == optimized ]]
  }
  if check "both paths connected, one multipath device, ANA optimized on each" both; then
    DEV=$(device)
    echo "    device $DEV"
    fio --name=paths --filename="$DEV" --direct=1 --ioengine=libaio --rw=randwrite --bs=4k --iodepth=16 \
      --size=16M --time_based --runtime=40 --verify=crc32c --do_verify=1 --verify_fatal=1 \
      --output-format=terse >/run/job/paths.out 2>&1 &
    job=$!
    sleep 2
    is() { [[ $(ana_of "$1") == "$2" ]]; }
    # I/O goes to the optimized path: with port 2 non-optimized, its path carries none.
    writes_of() { local p; p=$(ls -d /sys/class/nvme/"$1"/nvme*c*n1 | head -1); awk '{print $5}' "$p/stat"; }
    echo "REQUEST-CTL ana-state 2 non-optimized"
    optimized_carries() {
      wait_for 200 is "$B" non-optimized || return 1
      sleep 1
      local a0 b0 a1 b1
      a0=$(writes_of "$A") b0=$(writes_of "$B"); sleep 2; a1=$(writes_of "$A") b1=$(writes_of "$B")
      echo "    writes in 2 s: $((a1 - a0)) on the optimized path ($A), $((b1 - b0)) on the non-optimized ($B)"
      ((a1 - a0 > 100 && b1 - b0 == 0))
    }
    check "port 2 non-optimized: I/O goes to the optimized path only" optimized_carries
    echo "REQUEST-CTL ana-state 2 optimized"
    check "port 2 optimized again" wait_for 200 is "$B" optimized
    echo "REQUEST-CTL ana-state 1 inaccessible"
    check "port 1 inaccessible: the host sees its path inaccessible" wait_for 200 is "$A" inaccessible
    sleep 2
    echo "REQUEST-CTL ana-state 1 optimized"
    check "port 1 optimized again" wait_for 200 is "$A" optimized
    sleep 1
    echo "REQUEST-CTL listener-remove 2"
    not_live() { [[ $(state_of "$B") != live ]]; }
    check "port 2 removed: its path is no longer live" wait_for 200 not_live
    sleep 3
    echo "REQUEST-CTL listener-add 2 127.0.0.1:$port2"
    live() { [[ $(state_of "$B") == live ]]; }
    check "port 2 back: its path reconnects" wait_for 300 live
    job_ok() { wait "$job" || { cat /run/job/paths.out; return 1; }
      awk -F';' '{ printf "    fio: %s write KiB/s, %s errors\n", $48, $5 }' /run/job/paths.out; }
    check "the fio verify job ran through every change without an error" job_ok
    no_io_errors() { ! dmesg | grep -iE 'I/O error|blk_update_request|Buffer I/O'; }
    check "no I/O errors in the kernel log" no_io_errors
    dmesg | grep -iE 'nvme' | tail -8 | sed 's/^/    kernel: /'
  fi
  nvme disconnect -n "$nqn" >/dev/null 2>&1
fi

if [[ -n ${RESV:-} ]]; then
  echo "== persistent reservations from two hosts"
  dmesg -C
  hostA=nqn.2024-01.io.nvmf:resv-host-a hostB=nqn.2024-01.io.nvmf:resv-host-b
  idA=0a0a0a0a-0000-4000-8000-00000000000a idB=0b0b0b0b-0000-4000-8000-00000000000b
  ctrl_of() {  # HOSTNQN -> its controller (nvmeN); commands go through that host's own controller
    local c
    for c in /sys/class/nvme/nvme*; do
      [[ $(cat "$c/hostnqn" 2>/dev/null) == "$1" ]] && { basename "$c"; return 0; }
    done
    return 1
  }
  # Host B comes in through the subsystem's second port: nvme-cli (2.3) refuses a second
  # connection to the same address and subsystem as "already connected", whatever the host.
  two() {
    nvme connect -t tcp -a 10.0.2.2 -s "$port" -n "$nqn" --hostnqn="$hostA" --hostid="$idA" &&
      nvme connect -t tcp -a 10.0.2.2 -s "$((port + 1))" -n "$nqn" --hostnqn="$hostB" --hostid="$idB" &&
      sleep 1 &&
      A=$(ctrl_of "$hostA") && B=$(ctrl_of "$hostB") && echo "host A: $A, host B: $B"
  }
  if check "two hosts connected to $nqn" two; then
    head -c 512 /dev/urandom >/run/job/block
    # One block at LBA 0 through a host's own controller (its I/O queue; the subsystem has
    # one namespace).
    blk() {  # CTRL read|write
      if [[ $2 == write ]]; then
        nvme io-passthru "/dev/$1" -n 1 -o 0x01 -l 512 -w -i /run/job/block --cdw10=0 --cdw11=0 --cdw12=0
      else
        nvme io-passthru "/dev/$1" -n 1 -o 0x02 -l 512 -r --cdw10=0 --cdw11=0 --cdw12=0 >/dev/null
      fi
    }
    check "host A: resv-register key 0xA" nvme resv-register "/dev/$A" -n 1 --nrkey=0xA --rrega=0
    check "host B: resv-register key 0xB" nvme resv-register "/dev/$B" -n 1 --nrkey=0xB --rrega=0
    check "host A: resv-acquire write exclusive" nvme resv-acquire "/dev/$A" -n 1 --crkey=0xA --rtype=1 --racqa=0
    report() { nvme resv-report "/dev/$B" -n 1 -e | tee /dev/stderr | tr -s ' ' >/run/job/report.txt &&
      grep -qiE '^rtype ?: ?1' /run/job/report.txt && grep -qiE '^regctl ?: ?2' /run/job/report.txt; }
    check "resv-report (extended) shows write exclusive and two registrants" report
    grep -iE 'gen|rtype|regctl|rcsts|hostid|rkey' /run/job/report.txt | head -12 | sed 's/^/    report: /'
    refused() { ! blk "$B" write >/run/job/w.out 2>&1 && cat /run/job/w.out &&
      grep -qiE 'reservation.?conflict|0x83|83h' /run/job/w.out; }
    check "host B's write is refused with Reservation Conflict" refused
    sed 's/^/    refused: /' /run/job/w.out | head -3
    check "host B may still read" blk "$B" read
    check "host A, the holder, writes" blk "$A" write
    check "host A: resv-release" nvme resv-release "/dev/$A" -n 1 --crkey=0xA --rtype=1 --rrela=0
    check "host B's write succeeds after the release" blk "$B" write
    check "host B: resv-release clear (unregisters both)" nvme resv-release "/dev/$B" -n 1 --crkey=0xB --rrela=1
    dmesg | grep -iE 'nvme' | tail -6 | sed 's/^/    kernel: /'
  fi
  nvme disconnect -n "$nqn" >/dev/null 2>&1
fi

if [[ -n ${RESTART:-} ]]; then
  echo "== reconnect after nvmf-target restarts on the same port"
  dmesg -C
  if check "connect with reconnect delay 1 s" nvme connect -t tcp -a 10.0.2.2 -s "$port" -n "$nqn" --reconnect-delay=1 --ctrl-loss-tmo=120; then
    DEV=$(device)
    ctrl=$(basename "$(ls -d /sys/class/nvme/nvme* | head -1)")
    persist() { fio --name=persist --filename="$DEV" --direct=1 --ioengine=libaio --rw=write --bs=64k \
      --size=8M --offset=16M --verify=crc32c --do_verify=0 --randseed=7 --output-format=terse >/run/job/fio.out 2>&1 || {
      cat /run/job/fio.out; return 1; }; }
    check "write 8 MiB before the restart" persist
    # A verify job runs across the restart: the kernel holds its I/O while it reconnects.
    fio --name=across --filename="$DEV" --direct=1 --ioengine=libaio --rw=randwrite --bs=4k --iodepth=8 \
      --size=8M --offset=0 --time_based --runtime=15 --verify=crc32c --do_verify=1 --verify_fatal=1 \
      --output-format=terse >/run/job/across.out 2>&1 &
    across=$!
    sleep 2
    echo "REQUEST-RESTART"
    back() {
      for _ in $(seq 600); do
        [[ $(cat "/sys/class/nvme/$ctrl/state") != live ]] && break; sleep 0.1; done
      for _ in $(seq 1200); do
        [[ $(cat "/sys/class/nvme/$ctrl/state") == live ]] && return 0; sleep 0.1; done
      return 1
    }
    check "the host reconnected" back
    across_ok() { wait "$across" || { cat /run/job/across.out; return 1; }; }
    check "a fio verify job running across the restart finished without an error" across_ok
    readback() { fio --name=persist --filename="$DEV" --direct=1 --ioengine=libaio --rw=write --bs=64k \
      --size=8M --offset=16M --verify=crc32c --verify_only --randseed=7 --verify_fatal=1 \
      --output-format=terse >/run/job/fio.out 2>&1 || { cat /run/job/fio.out; return 1; }; }
    check "data written before the restart reads back" readback
    dmesg | grep -iE 'nvme' | tail -8 | sed 's/^/    kernel: /'
    check "disconnect" nvme disconnect -n "$nqn"
  fi
fi
exit $failed
