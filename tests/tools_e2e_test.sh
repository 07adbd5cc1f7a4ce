#!/usr/bin/env bash
# nvmfctl against nvmf-target, both as built, over loopback: every subcommand, human and
# JSON output, and the errors a user meets first. Usage: tools_e2e_test.sh BUILD_DIR
set -uo pipefail
build=$1
tgt=$build/tools/nvmf-target ctl=$build/tools/nvmfctl
nqn=nqn.2024-01.io.nvmf:tools-e2e
work=$(mktemp -d)
fails=0
pid=
trap '[[ -n $pid ]] && kill -TERM $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

check() {  # NAME COMMAND... : passes when the command succeeds
  local name=$1; shift
  if "$@" >"$work/out" 2>&1; then echo "PASS $name"; else
    echo "FAIL $name"; sed 's/^/  | /' "$work/out" | tail -20; fails=$((fails + 1)); fi
}

"$tgt" --listen 127.0.0.1:0 --nqn "$nqn" --ns mem:64M --ns null:1G --allow-host nqn.2024-01.io.nvmf:tools \
  >"$work/target.out" 2>"$work/target.log" &
pid=$!
for _ in $(seq 100); do grep -q ready "$work/target.out" && break; sleep 0.05; done
port=$(sed -nE 's/.* on [^ ]*:([0-9]+).*/\1/p' "$work/target.out")
[[ -n $port ]] || { echo "FAIL nvmf-target did not start"; cat "$work/target.log"; exit 1; }
C=(-t tcp -a 127.0.0.1 -s "$port" -q nqn.2024-01.io.nvmf:tools)
N=("${C[@]}" -n "$nqn")

check "discover lists the subsystem" bash -c "'$ctl' discover ${C[*]} | grep -q 'subnqn: *$nqn'"
check "discover --json" bash -c "'$ctl' discover ${C[*]} --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert any(e[\"subnqn\"]==\"$nqn\" for e in d[\"records\"]), d'"
check "identify shows the model and NQN" bash -c "'$ctl' identify ${N[*]} | grep -q '^mn *: nvmf' && '$ctl' identify ${N[*]} | grep -q '$nqn'"
check "identify --ns 2 --json gives the size" bash -c "'$ctl' identify ${N[*]} --ns 2 --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[\"nsze\"]==2097152, d'"
check "list shows two namespaces" bash -c "[ \$('$ctl' list ${N[*]} --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[\"namespaces\"]))') = 2 ]"
head -c 1048576 /dev/urandom >"$work/in.bin"
check "write a file" "$ctl" write "${N[@]}" --ns 1 -b 100 -c 2048 -d "$work/in.bin"
check "read it back" "$ctl" read "${N[@]}" --ns 1 -b 100 -c 2048 -d "$work/back.bin"
check "the file round-trips" cmp "$work/in.bin" "$work/back.bin"
check "verify 32 MiB with digests on 2 queues" bash -c "'$ctl' verify ${N[*]} --size 32M --bs 64k --qd 16 -i 2 -g -G | grep -q '0 mismatched'"
check "perf --json reports IOPS and percentiles" bash -c "'$ctl' perf ${N[*]} --rw randrw --bs 4k --qd 8 --time 1 --ns 2 --json | python3 -c 'import json,sys; d=json.load(sys.stdin); t=d[\"total\"]; assert t[\"iops\"]>0 and t[\"lat_us\"][\"p99\"]>0, d'"
check "a host that is not allowed is refused" bash -c "'$ctl' identify -a 127.0.0.1 -s $port -n $nqn -q nqn.2024-01.io.nvmf:stranger 2>&1 | grep -q 'Invalid Host'; [ \${PIPESTATUS[0]} -ne 0 ]"
check "an unknown subsystem is a clear error" bash -c "'$ctl' identify ${C[*]} -n nqn.2024-01.io.nvmf:nowhere 2>&1 | grep -qi 'connect'; [ \${PIPESTATUS[0]} -ne 0 ]"
check "a bad flag exits 2" bash -c "'$ctl' perf ${N[*]} --rw sideways; [ \$? -eq 2 ]"
check "a read past the end is refused" bash -c "'$ctl' read ${N[*]} --ns 1 -b 131071 -c 8 -d /dev/null 2>&1 | grep -q 'outside namespace 1'; [ \${PIPESTATUS[0]} -ne 0 ]"

# Reservations: two hosts (one host NQN, two host IDs), A holds Write Exclusive on namespace 1.
A=("${N[@]}" -I 0a0a0a0a-0000-4000-8000-00000000000a) B=("${N[@]}" -I 0b0b0b0b-0000-4000-8000-00000000000b)
head -c 512 /dev/urandom >"$work/blk.bin"
check "resv-register (A, B)" bash -c "'$ctl' resv-register ${A[*]} --namespace-id 1 --nrkey 0xa && '$ctl' resv-register ${B[*]} --namespace-id 1 --nrkey 0xb"
check "resv-register with a wrong key is a Reservation Conflict" bash -c "'$ctl' resv-register ${A[*]} --namespace-id 1 -r 2 -c 0x99 --nrkey 0xc 2>&1 | grep -q 'Reservation Conflict'; [ \${PIPESTATUS[0]} -eq 1 ]"
check "resv-acquire write exclusive (A)" "$ctl" resv-acquire "${A[@]}" --namespace-id 1 -c 0xa --rtype 1
check "resv-report lists both, A holding" bash -c "'$ctl' resv-report ${B[*]} --namespace-id 1 | tee /dev/stderr | grep -q 'Write Exclusive' && '$ctl' resv-report ${B[*]} --namespace-id 1 | grep -E '0a0a0a0a-0000-4000-8000-00000000000a +0xa .* yes'"
check "resv-report -o json" bash -c "'$ctl' resv-report ${B[*]} --namespace-id 1 -o json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[\"rtype\"]==1 and len(d[\"registrants\"])==2 and sum(r[\"holder\"] for r in d[\"registrants\"])==1, d'"
check "B's write is refused" bash -c "'$ctl' write ${B[*]} --ns 1 -d '$work/blk.bin' 2>&1 | grep -q 'Reservation Conflict'; [ \${PIPESTATUS[0]} -ne 0 ]"
check "B reads" "$ctl" read "${B[@]}" --ns 1 -d /dev/null
check "A writes" "$ctl" write "${A[@]}" --ns 1 -d "$work/blk.bin"
check "resv-acquire preempt (B takes it from A)" "$ctl" resv-acquire "${B[@]}" --namespace-id 1 -c 0xb -p 0xa --rtype 2 --racqa 1
check "A, preempted, cannot read under Exclusive Access" bash -c "! '$ctl' read ${A[*]} --ns 1 -d /dev/null"
check "resv-release clear (B)" "$ctl" resv-release "${B[@]}" --namespace-id 1 -c 0xb -r 1
check "after the clear A writes again" "$ctl" write "${A[@]}" --ns 1 -d "$work/blk.bin"

kill -TERM $pid; wait $pid; rc=$?; pid=
check "nvmf-target stops cleanly on SIGTERM" bash -c "[ $rc -eq 0 ] && grep -q stopped '$work/target.out'"

# A target restarted under a running job: verify and perf reconnect, submit again what was
# in flight, say so, and finish; with --ctrl-loss-tmo 0 they fail at once instead.
truncate -s 512M "$work/ns.img"  # at QD1, a verify of it runs for seconds
start_file_target() {  # PORT
  "$tgt" --listen "127.0.0.1:$1" --nqn "$nqn" --ns "file:$work/ns.img" >"$work/t2.out" 2>>"$work/target.log" &
  pid=$!
  for _ in $(seq 100); do grep -q ready "$work/t2.out" && return 0; sleep 0.05; done
  return 1
}
restart_under() {  # SECONDS-BEFORE COMMAND...: runs COMMAND while the target is killed and started again
  local before=$1; shift
  "$@" >"$work/job.out" 2>&1 & local job=$!
  sleep "$before"
  kill -KILL $pid; wait $pid 2>/dev/null
  sleep 1.5
  start_file_target "$port2" || return 1
  wait $job; local rc=$?
  cat "$work/job.out"
  [[ $rc == 0 ]] && grep -q 'reconnected after' "$work/job.out" && grep -q 'reconnected 1 time' "$work/job.out"
}
port2=$((20000 + RANDOM % 20000))
for _ in 1 2 3 4 5; do start_file_target "$port2" && break; port2=$((20000 + RANDOM % 20000)); done
R=(-t tcp -a 127.0.0.1 -s "$port2" -n "$nqn" --reconnect-delay 1)
check "verify rides through a target restart (file namespace), every block checked" \
  restart_under 1 "$ctl" verify "${R[@]}" --size 512M --bs 4k --qd 1 -i 2
check "perf rides through a target restart and reports it" restart_under 1 "$ctl" perf "${R[@]}" --rw randwrite --bs 4k --qd 8 --time 4
gone_fast() {
  "$ctl" verify "${R[@]}" --ctrl-loss-tmo 0 --size 512M --bs 4k --qd 1 >"$work/job.out" 2>&1 & local job=$!
  sleep 1
  kill -KILL $pid; wait $pid 2>/dev/null; pid=
  local t0=$SECONDS
  wait $job; local rc=$?
  cat "$work/job.out"
  [[ $rc != 0 ]] && ((SECONDS - t0 < 10))
}
check "with --ctrl-loss-tmo 0 a lost target fails the job at once" gone_fast

# Two paths (--path) to a target changed over its control socket (nvmf-targetctl): the
# first path's listener goes and comes back under a running verify; its commands move to
# the second path and every block checks.
targetctl=$build/tools/nvmf-targetctl
p1=$((20000 + RANDOM % 20000)); p2=$((p1 + 1))
cat >"$work/mp.json" <<JSON
{ "ports": [ { "portid": 1, "addr": { "traddr": "127.0.0.1", "trsvcid": "$p1" }, "subsystems": [ "$nqn" ] },
             { "portid": 2, "addr": { "traddr": "127.0.0.1", "trsvcid": "$p2" }, "subsystems": [ "$nqn" ] } ],
  "subsystems": [ { "nqn": "$nqn", "attr": { "allow_any_host": "1" },
                    "namespaces": [ { "nsid": 1, "device": { "path": "file:$work/ns.img" } } ] } ] }
JSON
"$tgt" --config "$work/mp.json" --control-socket "$work/ctl.sock" >"$work/t3.out" 2>>"$work/target.log" &
pid=$!
for _ in $(seq 100); do grep -q ready "$work/t3.out" && break; sleep 0.05; done
multipath_failover() {
  "$ctl" verify -a 127.0.0.1 -s "$p1" -n "$nqn" --path "127.0.0.1:$p2" --reconnect-delay 1 --size 512M --bs 4k \
    --qd 1 >"$work/job.out" 2>&1 & local job=$!
  sleep 1
  "$targetctl" -s "$work/ctl.sock" listener-remove 1 || return 1
  sleep 2
  "$targetctl" -s "$work/ctl.sock" listener-add 1 "127.0.0.1:$p1" || return 1
  wait $job; local rc=$?
  cat "$work/job.out"
  [[ $rc == 0 ]] && grep -q '0 mismatched' "$work/job.out" && grep -q 'moved to another path' "$work/job.out"
}
check "verify over two paths rides through one path's listener removed and added back" multipath_failover
check "nvmf-targetctl refuses a bad request with the target's message" \
  bash -c "'$targetctl' -s '$work/ctl.sock' ns-remove $nqn 9 2>&1 | grep -q 'namespace 9 of $nqn does not exist'; [ \${PIPESTATUS[0]} -eq 1 ]"
check "nvmf-targetctl save writes what nvmf-target --config loads" \
  bash -c "'$targetctl' -s '$work/ctl.sock' save '$work/saved.json' && python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d[\"ports\"])==2, d' '$work/saved.json'"
"$targetctl" -s "$work/ctl.sock" ns-add "$nqn" null:2G --nsid 5 >/dev/null
"$targetctl" -s "$work/ctl.sock" save "$work/saved.json" >/dev/null
kill -TERM $pid; wait $pid; pid=
from_saved() {  # the saved file starts a target that serves what the first one served last
  "$tgt" --config "$work/saved.json" >"$work/t4.out" 2>>"$work/target.log" & pid=$!
  for _ in $(seq 100); do grep -q ready "$work/t4.out" && break; sleep 0.05; done
  "$ctl" list -a 127.0.0.1 -s "$p2" -n "$nqn" | tee /dev/stderr | grep -qE '^5 +2 GiB'
}
check "nvmf-target --config serves what nvmf-targetctl save wrote (namespace added at run time)" from_saved
[[ -n $pid ]] && { kill -TERM $pid; wait $pid; pid=; }
# DH-HMAC-CHAP: keys from gen-dhchap-key, given in files, required by the target.
auth_host=nqn.2014-08.org.nvmexpress:uuid:0c0c0c0c-0000-4000-8000-00000000000c
check "gen-dhchap-key prints a DHHC-1 secret" bash -c "'$ctl' gen-dhchap-key -m 2 | grep -Eq '^DHHC-1:02:[A-Za-z0-9+/]{70}==:\$'"
"$ctl" gen-dhchap-key -m 1 >"$work/host.key"
chmod 644 "$work/host.key"
check "nvmf-target refuses a key file others may read" \
  bash -c "'$tgt' --listen 127.0.0.1:0 --nqn '$nqn' --dhchap-key '$auth_host=@$work/host.key' 2>&1 | grep -q 'chmod 600'; [ \${PIPESTATUS[0]} -ne 0 ]"
chmod 600 "$work/host.key"
"$tgt" --listen 127.0.0.1:0 --nqn "$nqn" --ns mem:16M --dhchap-key "$auth_host=@$work/host.key" \
  --dhchap-dhgroup ffdhe2048 >"$work/t6.out" 2>>"$work/target.log" & pid=$!
for _ in $(seq 100); do grep -q ready "$work/t6.out" && break; sleep 0.05; done
p6=$(sed -nE 's/.* on [^ ]*:([0-9]+).*/\1/p' "$work/t6.out")
A6=(-a 127.0.0.1 -s "$p6" -n "$nqn" -q "$auth_host")
check "verify with DH-HMAC-CHAP, the secret from a file" \
  bash -c "'$ctl' verify ${A6[*]} -S '@$work/host.key' --size 4M --bs 16k --qd 4 -i 2 | grep -q '0 mismatched'"
check "a host without the secret is told to give one" \
  bash -c "'$ctl' identify ${A6[*]} 2>&1 | grep -q 'requires DH-HMAC-CHAP'; [ \${PIPESTATUS[0]} -eq 1 ]"
check "a wrong secret is refused" \
  bash -c "'$ctl' identify ${A6[*]} -S \$('$ctl' gen-dhchap-key) 2>&1 | grep -q 'refused DH-HMAC-CHAP'; [ \${PIPESTATUS[0]} -eq 1 ]"
kill -TERM $pid; wait $pid; pid=

# TLS: a port that requires it, keys from files (kept out of ps), the wrong key and a plain
# host refused, and the key never in the target's log.
tls_host=nqn.2024-01.io.nvmf:tls-host
key01='NVMeTLSkey-1:01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:'
printf '%s\n' "$key01" >"$work/psk"; chmod 600 "$work/psk"
printf '%s\n' 'NVMeTLSkey-1:01:paWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWFL193:' >"$work/wrong"; chmod 600 "$work/wrong"
"$tgt" --listen 127.0.0.1:0 --nqn "$nqn" --ns mem:16M --tls required --psk "$tls_host=@$work/psk" \
  --control-socket "$work/tls.sock" >"$work/t5.out" 2>"$work/t5.log" & pid=$!
for _ in $(seq 100); do grep -q ready "$work/t5.out" && break; sleep 0.05; done
p5=$(sed -nE 's/.* on [^ ]*:([0-9]+).*/\1/p' "$work/t5.out")
T=(-a 127.0.0.1 -s "$p5" -n "$nqn" -q "$tls_host")
check "TLS: verify over a required port with --tls-key-file" bash -c "'$ctl' verify ${T[*]} --tls --tls-key-file '$work/psk' --size 4M -i 2 | grep -q '0 mismatched'"
check "TLS: --tls-key @FILE, identity version 0" "$ctl" identify "${T[@]}" --tls --tls-key "@$work/psk" --psk-identity 0
check "TLS: the target logs the secured connection" grep -q 'secured (TLS 1.3 TLS_AES_128_GCM_SHA256, identity NVMe1R01' "$work/t5.log"
check "TLS: a plain host is refused" bash -c "! '$ctl' identify ${T[*]} --timeout 3"
check "TLS: the wrong key is refused" bash -c "! '$ctl' identify ${T[*]} --tls --tls-key-file '$work/wrong' --timeout 3"
check "TLS: a malformed key is a clear error" bash -c "'$ctl' identify ${T[*]} --tls --tls-key 'NVMeTLSkey-1:01:AAAA:' 2>&1 | grep -q '32-byte key'"
check "TLS: failures are counted per host" bash -c "sleep 0.2; grep -q '1 failure for $tls_host' '$work/t5.log' && grep -q 'plain ICReq was refused' '$work/t5.log'"
tls_listener_add() {  # a port added at run time with TLS optional takes both kinds of host
  local p
  p=$("$targetctl" -s "$work/tls.sock" listener-add 7 127.0.0.1:0 --tls optional | sed -nE 's/.*:([0-9]+)$/\1/p')
  [[ -n $p ]] && "$ctl" identify -a 127.0.0.1 -s "$p" -n "$nqn" -q "$tls_host" >/dev/null &&
    "$ctl" identify -a 127.0.0.1 -s "$p" -n "$nqn" -q "$tls_host" --tls --tls-key-file "$work/psk" >/dev/null
}
check "TLS: nvmf-targetctl listener-add --tls optional" tls_listener_add
check "TLS: no key in the log" bash -c "! grep -q 'AAECAwQF\|paWlpaWl' '$work/t5.log' '$work/t5.out'"
kill -TERM $pid; wait $pid; pid=
((fails == 0)) && echo "tools e2e: all passed" || { echo "tools e2e: $fails failed"; sed 's/^/  target| /' "$work/target.log" | tail -20; }
exit $((fails > 0))
