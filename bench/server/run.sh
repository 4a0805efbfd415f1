#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/server/run.sh - vigild end to end against the bare nng echo, in the
# same run: for each transport (tcp, ipc) and concurrency (1 8 32 128) it
# measures vigil-echo, then vigild (archive and live updates on; both
# servers run side by side, the points alternate), and prints
# replies/s, p50/p99/p999 and the vigild/echo ratios (docs/BENCHMARKS.md).
# Then, per transport, an open-loop point (vigil-loadgen --rate) at half of
# vigild's best closed-loop rate, against vigild and then against the echo at
# that same rate: the "p99 at half of the maximum throughput" of issue 4.
#
#   bench/server/run.sh [BUILD_DIR] [SECONDS]      (defaults: build-bench, 3)
#
# Environment: RULES (default rules/default.rules, else the test rules),
# FSYNC (default interval), CONCURRENCY (default "1 8 32 128"),
# TRANSPORTS (default "tcp ipc"), LOADGEN_ARGS (extra vigil-loadgen flags for
# the vigild runs, e.g. "--merchants 1" for one hot merchant), VIGILD_ARGS
# (extra vigild flags, e.g. "--config FILE"), OPEN (1 to
# run the open-loop point, the default; 0 to skip it), OPEN_CONC (contexts
# for it, default 256), CONNS (connections each load generator opens and
# spreads its requests over, as that many client processes would; default 1:
# all requests multiplexed on one connection; a list such as "1 32" measures
# every point once per value, one after the other: the `conn` column), PIN
# (a CPU list: both servers run under
# `taskset -c PIN`, the load generator on the other CPUs; unset: nothing is
# pinned; see bench/server/pin.sh). Exit 1 if a run fails.
set -eu

# shellcheck source=bench/help.sh
. "$(dirname "$0")/../help.sh"

BUILD=${1:-build-bench}
SECS=${2:-3}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
CONCURRENCY=${CONCURRENCY:-"1 8 32 128"}
TRANSPORTS=${TRANSPORTS:-"tcp ipc"}
FSYNC=${FSYNC:-interval}
OPEN=${OPEN:-1}
OPEN_CONC=${OPEN_CONC:-256}
CONNS=${CONNS:-1}
if [ -z "${RULES:-}" ]; then
	RULES="$SRC/rules/default.rules"
	[ -f "$RULES" ] || RULES="$SRC/tests/server/rules/velocity.rules"
fi
LOADGEN="$BUILD/bench/server/vigil-loadgen"
ECHO="$BUILD/bench/server/vigil-echo"
VIGILD="$BUILD/server/vigild"
. "$SRC/bench/server/pin.sh"
for p in "$LOADGEN" "$ECHO" "$VIGILD"; do
	[ -x "$p" ] || { echo "run.sh: $p not built (ninja -C $BUILD)" >&2; exit 1; }
done
TMP=$(mktemp -d /tmp/vigil-bench-XXXXXX)
SPID=
EPID=
cleanup() {
	if [ -n "$SPID" ]; then kill -TERM "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true; fi
	if [ -n "$EPID" ]; then kill -TERM "$EPID" 2>/dev/null || true; wait "$EPID" 2>/dev/null || true; fi
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

url_for() { # transport port
	if [ "$1" = tcp ]; then echo "tcp://127.0.0.1:$2"; else echo "ipc://$TMP/$2.sock"; fi
}
wait_up() { # url
	i=0
	until "$LOADGEN" --url "$1" --echo --requests 1 --warmup 0 >/dev/null 2>&1; do
		i=$((i + 1)); [ $i -lt 300 ] || { echo "run.sh: $1 not up" >&2; exit 1; }
		sleep 0.1
	done
}
field() { # json key
	echo "$1" | sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p"
}

echo "# $(uname -m), $(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ); ${SECS}s per point; rules $(basename "$RULES"); fsync $FSYNC; connections per load generator: $CONNS; $PIN_DESC$MEM_DESC"
printf '%-4s %5s %4s | %10s %8s %8s %8s | %10s %8s %8s %8s | %6s %8s\n' \
	tp conc conn echo/s p50us p99us p999us vigild/s p50us p99us p999us ratio dp50us
port=19475
for tp in $TRANSPORTS; do
	# Both servers run side by side (an idle one costs nothing) and each
	# point measures the echo and then vigild, so that the load of a shared
	# machine drifts between the two as little as possible.
	port=$((port + 1))
	eurl=$(url_for "$tp" "e$port")
	[ "$tp" = tcp ] && eurl="tcp://127.0.0.1:$port"
	$SRV_PIN "$ECHO" --listen "$eurl" 2>/dev/null &
	EPID=$!
	port=$((port + 1))
	url=$(url_for "$tp" "v$port")
	[ "$tp" = tcp ] && url="tcp://127.0.0.1:$port"
	rm -rf "$TMP/data"; mkdir -p "$TMP/data"
	# shellcheck disable=SC2086
	$SRV_PIN "$VIGILD" --data "$TMP/data" --listen "$url" --admin off --rules "$RULES" \
		--fsync "$FSYNC" ${VIGILD_ARGS:-} 2>"$TMP/vigild.log" &
	SPID=$!
	wait_up "$eurl"
	wait_up "$url"
	for c in $CONCURRENCY; do
		for n in $CONNS; do
			e=$($LG_PIN "$LOADGEN" --url "$eurl" --echo -c "$c" --connections "$n" --duration "$SECS" --json)
			# shellcheck disable=SC2086
			v=$($LG_PIN "$LOADGEN" --url "$url" -c "$c" --connections "$n" --duration "$SECS" --json ${LOADGEN_ARGS:-}) || {
				echo "run.sh: vigild run c=$c conn=$n reported errors: $v" >&2; exit 1; }
			er=$(field "$e" rate); vr=$(field "$v" rate)
			ep50=$(field "$e" p50_us); vp50=$(field "$v" p50_us)
			printf '%-4s %5s %4s | %10.0f %8.1f %8.1f %8.1f | %10.0f %8.1f %8.1f %8.1f | %5.0f%% %8.1f\n' \
				"$tp" "$c" "$n" "$er" "$ep50" "$(field "$e" p99_us)" "$(field "$e" p999_us)" \
				"$vr" "$vp50" "$(field "$v" p99_us)" "$(field "$v" p999_us)" \
				"$(echo "$vr $er" | awk '{ printf "%f", ($2 > 0) ? 100 * $1 / $2 : 0 }')" \
				"$(echo "$vp50 $ep50" | awk '{ printf "%f", $1 - $2 }')"
			echo "$n $vr" >>"$TMP/vmax.$tp" # vigild's best rate per connection count
		done
	done
	if [ "$OPEN" = 1 ]; then
		for n in $CONNS; do
			vmax=$(awk -v n="$n" '$1 == n && $2 > m { m = $2 } END { print m + 0 }' "$TMP/vmax.$tp")
			rate=$(echo "$vmax" | awk '{ printf "%d", $1 / 2 }')
			# shellcheck disable=SC2086
			v=$($LG_PIN "$LOADGEN" --url "$url" -c "$OPEN_CONC" --connections "$n" --rate "$rate" --duration "$SECS" --json \
				${LOADGEN_ARGS:-}) || { echo "run.sh: vigild open loop reported errors: $v" >&2; exit 1; }
			e=$($LG_PIN "$LOADGEN" --url "$eurl" --echo -c "$OPEN_CONC" --connections "$n" --rate "$rate" --duration "$SECS" --json)
			printf '%-4s %5s %4s | %10.0f %8.1f %8.1f %8.1f | %10.0f %8.1f %8.1f %8.1f | open loop at %s/s (half of %.0f), late %s/%s, waited %s/%s\n' \
				"$tp" "r$OPEN_CONC" "$n" "$(field "$e" rate)" "$(field "$e" p50_us)" "$(field "$e" p99_us)" \
				"$(field "$e" p999_us)" "$(field "$v" rate)" "$(field "$v" p50_us)" \
				"$(field "$v" p99_us)" "$(field "$v" p999_us)" "$rate" "$vmax" \
				"$(field "$e" late)" "$(field "$v" late)" "$(field "$e" waited)" "$(field "$v" waited)"
		done
	fi
	kill -TERM "$EPID"; wait "$EPID" || true; EPID=
	kill -TERM "$SPID"; wait "$SPID" || { echo "run.sh: vigild did not exit cleanly" >&2; exit 1; }
	SPID=
done
