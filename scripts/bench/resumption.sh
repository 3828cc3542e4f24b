#!/bin/bash
# What TLS 1.3 session resumption saves per DoT connection, the bridge next to dnsdist: both
# serve the same --cert KIND certificate (scripts/bench/pki.ts) and answer h1.bench.test. locally
# (the bridge from --local-records, dnsdist by SpoofAction: no upstream), and PROCS processes of
# scripts/bench/resume_client.py (THREADS workers each) open new connections for SECONDS, first
# with full handshakes, then offering the previous connection's ticket. Rounds interleave the
# targets. Prints one line per run: connections/s, the share resumed, and the server's CPU µs per
# connection (utime+stime from /proc over the run). Needs dnsdist and python3.
#
# Usage: scripts/bench/resumption.sh [KIND] [SECONDS] [ROUNDS] [PROCS] [THREADS]
set -eu
KIND=${1:-ecdsa} SECONDS_=${2:-5} ROUNDS=${3:-3} PROCS=${4:-2} THREADS=${5:-8}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
WORK=$(mktemp -d /tmp/dotbridge-resumption-XXXXXX)
BPORT=$((20000 + RANDOM % 20000))
DPORT=$((BPORT + 1))
deno run -A "$HERE/pki.ts" "$WORK" "$KIND" >/dev/null
echo "127.0.0.1 h1.bench.test" >"$WORK/hosts"
cat >"$WORK/dnsdist.conf" <<CONF
setSecurityPollSuffix("")
addTLSLocal("127.0.0.1:$DPORT", "$WORK/chain.pem", "$WORK/key.pem", {maxInFlight=100})
addAction(AllRule(), SpoofAction("127.0.0.1"))
newServer{address="127.0.0.1:9"}
CONF
(cd "$REPO" && exec deno run --v8-flags=--no-concurrent-array-buffer-sweeping,--heap-growing-percent=20 \
  -A src/deno/main.ts --listen "127.0.0.1:$BPORT" --cert "$WORK/chain.pem" --key "$WORK/key.pem" \
  --upstream https://localhost:9/dns-query --http-listen off --local-records "$WORK/hosts" \
  --log-level error) >"$WORK/bridge.log" 2>&1 &
BPID=$!
dnsdist --supervised --disable-syslog -C "$WORK/dnsdist.conf" >"$WORK/dnsdist.log" 2>&1 &
DPID=$!
trap 'kill $BPID $DPID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do
  (echo >"/dev/tcp/127.0.0.1/$BPORT") 2>/dev/null && (echo >"/dev/tcp/127.0.0.1/$DPORT") 2>/dev/null && break
  sleep 0.2
done
TICK=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run NAME PID PORT new|resume
run() {
  local c0 c1 outs
  c0=$(cpu "$2")
  outs=$(for _ in $(seq "$PROCS"); do
    python3 "$HERE/resume_client.py" 127.0.0.1 "$3" "$WORK/ca.pem" "$SECONDS_" "$4" "$THREADS" &
  done; wait)
  c1=$(cpu "$2")
  echo "$outs" | awk -v name="$1" -v mode="$4" -v cpu=$((c1 - c0)) -v tick="$TICK" -v s="$SECONDS_" '
    { gsub(/[{}",:]/, " "); for (i = 1; i < NF; i++) v[$i] += $(i + 1) }
    END { printf "%-8s %-6s %6.0f conn/s  %5.1f%% resumed  %5.0f CPU us/conn  (%d failed)\n",
      name, mode, v["completed"] / s, 100 * v["reused"] / v["completed"],
      cpu / tick * 1e6 / v["completed"], v["failed"] }'
}

echo "cert $KIND, $PROCS x $THREADS workers, $SECONDS_ s per run"
run bridge "$BPID" "$BPORT" new >/dev/null # warm-up (the bridge's JIT), not reported
run dnsdist "$DPID" "$DPORT" new >/dev/null
for r in $(seq "$ROUNDS"); do
  for mode in new resume; do
    run bridge "$BPID" "$BPORT" "$mode"
    run dnsdist "$DPID" "$DPORT" "$mode"
  done
done
