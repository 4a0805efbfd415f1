#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/cluster/ring.sh - scoring throughput of 1 replica against 3 on this
# machine, the C client's ring included (docs/operations.md, "Running a
# cluster"): vigil-score (libvigil-client: consistent hash of card_id over
# the -s URLs, failover bookkeeping) sends the same N transactions, read from
# a JSON-lines file with --concurrency C in flight, to
#   1  one vigild (no [cluster]);
#   3  three vigild without [cluster] (the ring alone);
#   3n three vigild sharing cross-card state through one NATS JetStream node;
# each on ipc://, a fresh data directory per run, fsync interval. Reported:
# transactions per second (wall time of vigil-score, all answered OK), the
# median of RUNS alternated rounds, and the CPU time of the vigild
# processes per transaction (utime+stime from /proc, sum over replicas).
# On one machine the replicas share its CPUs with the client and NATS:
# the figure says what the ring and the fan-out cost, not what 3 machines
# would give.
#
#   bench/cluster/ring.sh BUILD_DIR
#
# Environment: N (default 20000), C (default 64), RUNS (default 3).
set -eu

# shellcheck source=bench/help.sh
. "$(dirname "$0")/../help.sh"

BUILD=$(cd "${1:?usage: ring.sh BUILD_DIR}" && pwd)
N=${N:-20000}
C=${C:-64}
RUNS=${RUNS:-3}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
command -v nats-server >/dev/null 2>&1 || { echo "ring.sh: needs nats-server" >&2; exit 1; }
TMP=$(mktemp -d /tmp/vigil-bench-ring-XXXXXX)
PIDS=
VPIDS=
cleanup() {
	for p in $PIDS $VPIDS; do kill -TERM "$p" 2>/dev/null || true; done
	for p in $PIDS $VPIDS; do wait "$p" 2>/dev/null || true; done
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
free_port() {
	python3 "$SRC/tests/lib/vt_port.py"
}
TICK=$(getconf CLK_TCK)
cpu_ticks() { # utime+stime of the pids given (vigild: no space in comm)
	for p in "$@"; do cat "/proc/$p/stat"; done | awk '{ s += $14 + $15 } END { print s }'
}

python3 - "$N" >"$TMP/txns.jsonl" <<'PY'
import json, sys, time
n = int(sys.argv[1])
base = int(time.time() * 1000) - 3600 * 1000
for i in range(n):
    print(json.dumps({"txn_id": f"b-{i}", "card_id": f"card-{(i * 7919) % 50000}",
                      "merchant_id": f"m-{i % 1000}", "terminal_id": f"t-{i % 4000}",
                      "amount": f"{10 + i % 500}.25", "currency": "EUR",
                      "device_id": f"d-{i % 20000}", "ip": f"10.{i % 200}.{i % 97}.{i % 251}",
                      "event_time_ms": base + i * 100}))
PY
NP=$(free_port)
nats-server -a 127.0.0.1 -p "$NP" -js -sd "$TMP/js" >"$TMP/nats.log" 2>&1 &
PIDS="$PIDS $!"

# run MODE ROUND: starts the replicas, sends the file, prints "MODE tx/s cpu-us/tx"
run() {
	mode=$1 round=$2
	case $mode in 1) n=1 nats= ;; 3) n=3 nats= ;; *) n=3 nats=1 ;; esac
	VPIDS=
	urls=
	i=1
	while [ "$i" -le "$n" ]; do
		d="$TMP/$mode-$round-r$i"
		set -- --data "$d" --listen "ipc://$d.ipc" --admin "127.0.0.1:$(free_port)" \
		    --rules "$SRC/rules/default.rules"
		[ -z "$nats" ] || set -- "$@" --nats "nats://127.0.0.1:$NP" --replica "r$i" \
		    --cluster "b$round"
		"$BUILD/server/vigild" "$@" >"$d.log" 2>&1 &
		VPIDS="$VPIDS $!"
		urls="$urls -s ipc://$d.ipc"
		j=0
		until grep -q "vigild: ready" "$d.log" 2>/dev/null; do
			j=$((j + 1)); [ "$j" -lt 300 ] || { echo "ring.sh: vigild not ready" >&2; cat "$d.log" >&2; exit 1; }
			sleep 0.1
		done
		i=$((i + 1))
	done
	# shellcheck disable=SC2086 # VPIDS: several pids
	c0=$(cpu_ticks $VPIDS)
	t0=$(date +%s.%N)
	# shellcheck disable=SC2086 # urls: several options
	"$BUILD/tools/score/vigil-score" -q $urls --concurrency "$C" <"$TMP/txns.jsonl" >"$TMP/out" ||
	    { echo "ring.sh: vigil-score failed: $(grep -v '"status":"OK"' "$TMP/out" | head -2)" >&2; exit 1; }
	t1=$(date +%s.%N)
	# shellcheck disable=SC2086
	c1=$(cpu_ticks $VPIDS)
	ok=$(grep -c '"status":"OK"' "$TMP/out")
	[ "$ok" -eq "$N" ] || { echo "ring.sh: $ok of $N OK" >&2; exit 1; }
	for p in $VPIDS; do kill -TERM "$p"; wait "$p" || true; done
	VPIDS=
	awk -v m="$mode" -v n="$N" -v t0="$t0" -v t1="$t1" -v c0="$c0" -v c1="$c1" -v hz="$TICK" \
	    'BEGIN { printf "%s %f %f\n", m, n / (t1 - t0), (c1 - c0) * 1e6 / hz / n }'
}

echo "# bench/cluster/ring.sh: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); N=$N, C=$C, runs $RUNS"
r=0
: >"$TMP/results"
while [ "$r" -lt "$RUNS" ]; do
	r=$((r + 1))
	for m in 1 3 3n; do
		run "$m" "$r" | tee -a "$TMP/results" | awk '{printf "round %s  %-3s replicas  %8.0f tx/s  %6.1f us vigild CPU/tx\n", '"$r"', $1, $2, $3}'
	done
done
python3 - "$TMP/results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    m, tps, cpu = line.split()
    rows.setdefault(m, []).append((float(tps), float(cpu)))
base = statistics.median(t for t, _ in rows["1"])
for m, name in (("1", "1 replica"), ("3", "3 replicas, ring"), ("3n", "3 replicas, ring + NATS")):
    t = statistics.median(x for x, _ in rows[m])
    c = statistics.median(y for _, y in rows[m])
    print(f"median  {name:26s} {t:8.0f} tx/s ({t / base:4.2f}x)  {c:6.1f} us vigild CPU/tx")
PY
