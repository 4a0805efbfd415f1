#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/cluster/cluster.sh - what sharing cross-card state through NATS
# costs (docs/operations.md, "Running a cluster"):
#   - vigild CPU per score without [cluster] and with it (publishing every
#     scored transaction to JetStream), by bench/server/cpu.sh, alternated
#     RUNS times: read utime+stime of the server around a loadgen window;
#   - the propagation delay, commit on the publishing replica -> applied on
#     another, p50 and p99 from the receiving replica's
#     vigil_cluster_propagation_seconds histogram (interpolated within its
#     buckets), under the full load of the CPU runs and at a paced RATE.
#
#   bench/cluster/cluster.sh BUILD_DIR [SECONDS]
#
# Environment: RUNS (default 3), RATE (paced run, requests/s, default
# 2000), CONC, TP, FSYNC as for bench/server/cpu.sh. One nats-server with
# JetStream (a single node: the figure is vigild's, not NATS replication's)
# runs for the whole bench; each NATS run has a receiving replica of its
# own cluster (a new stream). Each round prints: echo, vigild without NATS,
# vigild publishing + propagation, then the same two at RATE. CPU of
# nats-server and of the receiver is in "other", not in "server".
set -eu

# shellcheck source=bench/help.sh
. "$(dirname "$0")/../help.sh"

BUILD=$(cd "${1:?usage: cluster.sh BUILD_DIR [SECONDS]}" && pwd)
SECS=${2:-4}
RUNS=${RUNS:-3}
RATE=${RATE:-2000}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
command -v nats-server >/dev/null 2>&1 || { echo "cluster.sh: needs nats-server" >&2; exit 1; }
TMP=$(mktemp -d /tmp/vigil-bench-cluster-XXXXXX)
PIDS=
cleanup() {
	for p in $PIDS; do kill -TERM "$p" 2>/dev/null || true; done
	for p in $PIDS; do wait "$p" 2>/dev/null || true; done
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
free_port() {
	python3 "$SRC/tests/lib/vt_port.py"
}

NP=$(free_port)
nats-server -a 127.0.0.1 -p "$NP" -js -sd "$TMP/js" >"$TMP/nats.log" 2>&1 &
PIDS="$PIDS $!"
NATS="nats://127.0.0.1:$NP"
# A receiving replica of cluster $1 (a new stream per run: a publisher
# started later would otherwise replay the earlier runs' messages).
RPID=
recv_start() {
	AP=$(free_port)
	"$BUILD/server/vigild" --data "$TMP/recv-$1" --listen "ipc://$TMP/recv-$1.ipc" \
	    --admin "127.0.0.1:$AP" --rules "$SRC/rules/default.rules" --nats "$NATS" \
	    --replica recv --cluster "$1" --max-future-skew 0 >"$TMP/recv-$1.log" 2>&1 &
	RPID=$!
	PIDS="$PIDS $RPID"
	i=0
	until grep -q "cluster: replica recv" "$TMP/recv-$1.log"; do
		i=$((i + 1)); [ $i -lt 300 ] || { echo "cluster.sh: receiver not ready" >&2; cat "$TMP/recv-$1.log" >&2; exit 1; }
		sleep 0.1
	done
}
recv_stop() {
	grep -i "drop\|fail" "$TMP/recv-$1.log" || true
	kill -TERM "$RPID"; wait "$RPID" || true
}

hist() { curl -sf "http://127.0.0.1:$AP/metrics" | grep '^vigil_cluster_propagation_seconds_bucket\|^vigil_cluster_applied_total'; }
# quantiles FILE_BEFORE FILE_AFTER: p50 and p99 of the observations between
quantiles() {
	python3 - "$1" "$2" <<'EOF'
import re, sys
def read(p):
    b = {}
    for line in open(p):
        m = re.match(r'vigil_cluster_propagation_seconds_bucket\{le="([^"]+)"\} (\d+)', line)
        if m:
            b[float("inf") if m.group(1) == "+Inf" else float(m.group(1))] = int(m.group(2))
    return b
a, z = read(sys.argv[1]), read(sys.argv[2])
les = sorted(z)
cum = [z[l] - a.get(l, 0) for l in les]
n = cum[-1]
out = []
for q in (0.5, 0.99):
    want, lo, prev = q * n, 0.0, 0
    for l, c in zip(les, cum):
        if c >= want:
            hi = l if l != float("inf") else lo
            v = lo + (hi - lo) * ((want - prev) / (c - prev) if c > prev else 0)
            out.append("p%d %.3f ms" % (q * 100, v * 1000))
            break
        lo, prev = l, c
print("%d observations: %s" % (n, ", ".join(out)))
EOF
}

echo "# bench/cluster: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); runs $RUNS x ${SECS}s"
# one_nats LABEL CLUSTER [LOADGEN_ARGS]: a publishing vigild of a new
# cluster, its CPU line and the receiver's propagation quantiles
one_nats() {
	recv_start "$2"
	hist >"$TMP/h0"
	RUNS=1 LOADGEN_ARGS="${3:-}" VIGILD_ARGS="--nats $NATS --replica pub --cluster $2" \
	    "$SRC/bench/server/cpu.sh" "$BUILD" "$SECS" | grep -v '^#\|echo' |
	    sed "s|^[^ ]*/vigild |$1 |"
	sleep 1
	hist >"$TMP/h1"
	printf '%-22s propagation ' "$1"
	quantiles "$TMP/h0" "$TMP/h1"
	recv_stop "$2"
}
r=0
while [ $r -lt "$RUNS" ]; do
	r=$((r + 1))
	RUNS=1 VIGILD_ARGS="" "$SRC/bench/server/cpu.sh" "$BUILD" "$SECS" | grep -v '^#' |
	    sed 's|^[^ ]*/vigild |vigild-no-nats        |; s|^[^ ]*vigil-echo |echo |'
	one_nats vigild-nats-publishing "full$r"
	RUNS=1 LOADGEN_ARGS="--rate $RATE" VIGILD_ARGS="" "$SRC/bench/server/cpu.sh" "$BUILD" "$SECS" |
	    grep -v '^#\|echo' | sed "s|^[^ ]*/vigild |vigild-no-nats-$RATE/s |"
	one_nats "vigild-nats-$RATE/s" "paced$r" "--rate $RATE"
done
