# Guest job (linux-peer run, trixie kernel): the Linux host authenticates to our target with
# DH-HMAC-CHAP. Args: PORT NQN HOSTNQN1 SECRET1 HOSTNQN2 SECRET2 CTRL_SECRET2 WRONG_SECRET.
# Host 1 is unidirectional; host 2 bidirectional (our target proves itself with CTRL_SECRET2).
# Prints "CHECK PASS|FAIL what" lines and "AUTH-HOST-DONE" at the end.
set -u
port=$1 nqn=$2 h1=$3 k1=$4 h2=$5 k2=$6 c2=$7 bad=$8
kmod_load nvme-tcp 2>/dev/null || true
check() { if [[ $1 == 0 ]]; then echo "CHECK PASS $2"; else echo "CHECK FAIL $2"; fi; }
uuid_of() { echo "${1##*:uuid:}"; }
connect() {  # HOSTNQN ARGS...
  local h=$1; shift
  timeout 60 nvme connect -t tcp -a 10.0.2.2 -s "$port" -n "$nqn" --hostnqn "$h" --hostid "$(uuid_of "$h")" \
    --ctrl-loss-tmo 1 --reconnect-delay 1 "$@" 2>&1
}
disconnect() { nvme disconnect -n "$nqn" >/dev/null 2>&1; sleep 0.5; }
io_ok() {  # a fio write-and-verify job through the namespace's block device
  local dev
  dev=$(nvme_dev "$nqn" 10) || { echo "no block device for $nqn"; return 1; }
  fio --name=auth --filename="$dev" --direct=1 --ioengine=libaio --size=4M --bs=4k --iodepth=8 \
    --rw=randwrite --verify=crc32c --do_verify=1 --output-format=terse >/run/job/fio.out 2>&1 ||
    { cat /run/job/fio.out; return 1; }
}

connect "$h1" --dhchap-secret "$k1"; rc=$?
[[ $rc == 0 ]] && { io_ok; rc=$?; }
check $rc "Linux host, unidirectional DH-HMAC-CHAP: connect, write, read back"
disconnect

connect "$h2" --dhchap-secret "$k2" --dhchap-ctrl-secret "$c2" -i 2; rc=$?
[[ $rc == 0 ]] && { io_ok; rc=$?; }
check $rc "Linux host, bidirectional DH-HMAC-CHAP (our target proves itself), 2 I/O queues: connect, write, read back"
disconnect

connect "$h1" --dhchap-secret "$bad"; rc=$?
disconnect
check $((rc == 0)) "Linux host with a wrong secret is refused"

connect "$h2" --dhchap-secret "$k2" --dhchap-ctrl-secret "$bad"; rc=$?
disconnect
check $((rc == 0)) "Linux host refuses our target when it expects another controller secret"

connect "$h1"; rc=$?
disconnect
check $((rc == 0)) "Linux host without a secret is refused"
echo AUTH-HOST-DONE
