#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/server/cpu.sh - CPU time per request of the server process (and of
# the load generator), the figure a shared, noisy machine distorts least:
# for each server binary given, start it, run vigil-loadgen against it and
# read utime+stime from /proc/PID/stat just before and after the measured
# window (docs/BENCHMARKS.md, "vigild end to end").
#
#   bench/server/cpu.sh BUILD_DIR [SECONDS] [-- VIGILD...]
#
# Servers: vigil-echo of BUILD_DIR, then BUILD_DIR's vigild and every
# further vigild binary given after "--" (e.g. an older build, to alternate
# old and new), taking turns going first from round to round. Every
# vigild serves a copy of one data directory whose current generation has
# a trained model (modeldata.sh), so the model is evaluated and every
# score archived, as in production; MODEL=0 starts each from an empty
# directory instead (no generation, no model), MODEL_DATA=DIR
# serves copies of DIR (one built before, to save the replay); its closed
# archive segments are compressed once before the rounds, as a running
# vigild keeps them (serve.sh, settle_archive). After the
# runs, a summary: each server's median CPU per request and each vigild's
# ratio to the echo's (the figure of docs/BENCHMARKS.md, "CPU per score"),
# with the median of the rounds' own ratios beside it, and how many of each
# server's rounds fell in the costly regime (0.5 context switches a request
# or more).
# Environment: LOAD, the traffic vigild and bench-pipeline score: burst
# (the default: 10,000 cards, each paying every 1.25 s of event time, a
# card-testing attack on every card at once: every score alerts and
# carries reasons, the live state only grows) or production (1,000 cards,
# each paying about every 17 hours, the live state expiring as fast as it
# grows, and 1 request in 50 from a sanctioned country: 2% of the scores
# alert, a review and decline share as a fraud team sees it; its flags go
# before LOADGEN_ARGS and PIPELINE_ARGS, and WARMUP defaults to 3, past
# the 20,160 requests the steady state needs). TP (ipc or tcp, default
# ipc), CONC (default 32), WARMUP (seconds of load before the CPU window,
# default 0.5),
# CONNS (connections the load generator spreads them over, default 1),
# RULES, FSYNC (default interval), RUNS (rounds, default 1), LOADGEN_ARGS
# (extra vigil-loadgen flags for the vigild runs, e.g. "--rate 15000"),
# VIGILD_ARGS (extra vigild flags, e.g. "--config FILE"), PIN (a CPU list:
# every server runs under `taskset -c PIN`, the load generator on the other
# CPUs; unset: nothing is pinned; see bench/server/pin.sh), PERF (1: also
# count the server's futex calls and context switches in the window with
# `perf stat -p`, printed per request), ECHO_WORK_US (a list of microsecond
# counts, e.g. "4 8": each round also runs an echo whose callback spends
# that much CPU before replying, vigil-echo --work-us, labelled echo+Nus:
# what an echo costs per request when its callbacks hold nng's threads as
# long as scoring does, to tell the pipeline's own cost from what a longer
# callback adds to nng's; the word "pipeline" in the list: an echo spending
# the round's own pipeline figure, measured first in the round, labelled
# echo+pipeline, and the summary gives each vigild's ratio to it and its
# us over it: what vigild adds around app_score's CPU, both measured in the
# same round), ECHO_REPLY_BYTES (a list of byte counts, e.g. "292": each
# round also runs an echo whose replies are padded to that many bytes,
# vigil-echo --reply-bytes, labelled echo+NB: what vigild's larger reply,
# and the growth of the received buffer it needs, cost the transport;
# vigild's replies in the default load are about 292 bytes, the echo's 94),
# PIPELINE (1: each round also runs
# bench-pipeline, the scoring pipeline alone on one thread over the same
# transactions and a copy of the same data, PIPELINE_TXNS of them after
# 50000 untimed, on the servers' CPU; the summary then gives each vigild's
# CPU per score beyond the echo's plus the pipeline's: what the server adds
# around app_score).
# Prints one line per run: server, replies/s, server CPU us per request,
# the server's context switches per request (all its threads, from /proc:
# a round where nng's threads sleep and wake about once a request costs
# far more CPU than one where they rarely do, docs/BENCHMARKS.md, "Two
# regimes"), loadgen CPU us per request, p50, p99 [, futex calls and
# context switches per request counted by perf], and "other": the CPU
# time every other process on the machine used in the window, in % of one
# CPU (from /proc/stat; with PERF=1 it includes perf's own share): a run
# with other above a few % was disturbed, and its rate is not comparable.
set -eu

# shellcheck source=bench/help.sh
. "$(dirname "$0")/../help.sh"

BUILD=${1:?usage: cpu.sh BUILD_DIR [SECONDS] [-- VIGILD...]}
SECS=${2:-4}
shift; [ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
SRC=$(cd "$(dirname "$0")/../.." && pwd)
TP=${TP:-ipc}
CONC=${CONC:-32}
CONNS=${CONNS:-1}
FSYNC=${FSYNC:-interval}
RUNS=${RUNS:-1}
case "${LOAD:-burst}" in
burst) WARMUP=${WARMUP:-0.5} ;;
production)
	WARMUP=${WARMUP:-3}
	stream="--cards 1000 --step-us 60000000 --alert-every 50"
	LOADGEN_ARGS="$stream ${LOADGEN_ARGS:-}"
	PIPELINE_ARGS="$stream ${PIPELINE_ARGS:-}"
	;;
*) echo "cpu.sh: LOAD: \"$LOAD\" is not burst or production" >&2; exit 2 ;;
esac
if [ -z "${RULES:-}" ]; then
	RULES="$SRC/rules/default.rules"
	[ -f "$RULES" ] || RULES="$SRC/tests/server/rules/velocity.rules"
fi
MODEL=${MODEL:-1}
LOADGEN="$BUILD/bench/server/vigil-loadgen"
ECHO="$BUILD/bench/server/vigil-echo"
. "$SRC/bench/server/pin.sh"
# shellcheck source=bench/server/serve.sh
. "$SRC/bench/server/serve.sh"
bench_tmp cpu
if [ "${PERF:-0}" = 1 ] && ! command -v perf >/dev/null 2>&1; then
	echo "cpu.sh: PERF=1 needs perf (linux-perf)" >&2
	exit 1
fi

all_ticks() { # every CPU's busy time (not idle, not iowait) in clock ticks
	awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat
}
switches() { # pid: context switches of all its threads, voluntary or not
	cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches:/ { n += $2 } END { print n + 0 }'
}
port=19600
one() { # label server-command...
	label=$1; shift
	port=$((port + 1))
	if [ "$TP" = tcp ]; then url="tcp://127.0.0.1:$port"; else url="ipc://$TMP/$port.sock"; fi
	rm -rf "$TMP/data"
	isecho=false
	case "$label" in echo | echo+*) isecho=true ;; esac
	if [ "$MODEL" = 1 ] && [ $isecho = false ]; then cp -a "$TMP/model" "$TMP/data"; else mkdir -p "$TMP/data"; fi
	# shellcheck disable=SC2086
	case "$label" in
	echo | echo+*) $SRV_PIN "$@" --listen "$url" 2>/dev/null & ;;
	# --max-future-skew 0: the load's event times start on 2025-11-21
	# and a step of minutes (--step-us) takes a fast run past the clock.
	*) $SRV_PIN "$@" --data "$TMP/data" --listen "$url" --admin off --rules "$RULES" \
		--fsync "$FSYNC" --max-future-skew 0 ${VIGILD_ARGS:-} 2>"$TMP/vigild.log" & ;;
	esac
	SPID=$!
	i=0
	# Up once a request is answered OK (for vigild: ready, with its
	# rules, generation, model and the live state replayed from the archive).
	probe=
	[ $isecho = true ] && probe=--echo
	# shellcheck disable=SC2086
	until "$LOADGEN" --url "$url" $probe --requests 1 --warmup 0 >/dev/null 2>&1; do
		i=$((i + 1)); [ $i -lt 300 ] || { echo "cpu.sh: $url not up" >&2; cat "$TMP/vigild.log" >&2; exit 1; }
		sleep 0.1
	done
	extra=
	[ $isecho = true ] && extra=--echo
	[ $isecho = true ] || extra=${LOADGEN_ARGS:-}
	# The loadgen warms up for WARMUP s and runs 1 s longer than the CPU
	# window, which starts 0.1 s after the warm-up; requests in the window
	# are estimated as the loadgen's rate times the window.
	# shellcheck disable=SC2086
	$LG_PIN "$LOADGEN" --url "$url" -c "$CONC" --connections "$CONNS" --duration $((SECS + 1)) --warmup "$WARMUP" --json $extra \
		>"$TMP/lg.json" &
	lpid=$!
	sleep "$(echo "$WARMUP" | awk '{ print $1 + 0.1 }')"
	s0=$(ticks "$SPID"); l0=$(ticks "$lpid"); a0=$(all_ticks); w0=$(switches "$SPID")
	if [ "${PERF:-0}" = 1 ]; then
		perf stat -x, -o "$TMP/perf" -e syscalls:sys_enter_futex,context-switches \
			-p "$SPID" -- sleep "$SECS" 2>"$TMP/perf.err" || {
			echo "cpu.sh: perf stat failed (tracepoints need root or" \
				"kernel.perf_event_paranoid <= -1): $(head -1 "$TMP/perf.err")" >&2
			exit 1
		}
	else
		sleep "$SECS"
	fi
	s1=$(ticks "$SPID"); l1=$(ticks "$lpid"); a1=$(all_ticks); w1=$(switches "$SPID")
	wait "$lpid" || {
		echo "cpu.sh: loadgen against $label reported errors: $(cat "$TMP/lg.json")" >&2
		[ $isecho = true ] || tail -5 "$TMP/vigild.log" >&2
		exit 1
	}
	v=$(cat "$TMP/lg.json")
	kill -TERM "$SPID"; wait "$SPID" || true; SPID=
	rate=$(field "$v" rate); n=$(echo "$rate $SECS" | awk '{ print $1 * $2 }')
	futex=-1; cs=-1
	if [ "${PERF:-0}" = 1 ]; then
		futex=$(awk -F, '$3 ~ /futex/ { print $1 }' "$TMP/perf")
		cs=$(awk -F, '$3 == "context-switches" { print $1 }' "$TMP/perf")
	fi
	other=$(( (a1 - a0) - (s1 - s0) - (l1 - l0) ))
	echo "$label $n $((s1 - s0)) $TCK $((w1 - w0))" |
		awk '{ d = $2 > 0 ? $2 : 1; print $1, $3 * 1e6 / $4 / d, $5 / d }' >>"$TMP/results"
	echo "$label $rate $n $((s1 - s0)) $((l1 - l0)) $TCK $(field "$v" p50_us) $(field "$v" p99_us) $futex $cs $other $SECS $((w1 - w0))" |
		awk '{ d = $3 > 0 ? $3 : 1
		    printf "%-28s %9.0f/s  server %6.2f us/req  switches %5.2f/req  loadgen %6.2f us/req  p50 %7.1f  p99 %7.1f",
		    $1, $2, $4 * 1e6 / $6 / d, $13 / d, $5 * 1e6 / $6 / d, $7, $8
		    if ($9 >= 0)
			printf "  futex %5.2f/req  cs %5.2f/req", $9 / d, $10 / d
		    o = $11 * 100 / $6 / $12
		    printf "  other %3.0f%%\n", o < 0 ? 0 : o }'
}

pipeline() { # the pipeline alone, in-process, on the servers' CPU (bench-pipeline)
	rm -rf "$TMP/data"
	if [ "$MODEL" = 1 ]; then cp -a "$TMP/model" "$TMP/data"; else mkdir -p "$TMP/data"; fi
	# shellcheck disable=SC2086
	v=$($SRV_PIN "$BUILD/bench/server/bench-pipeline" --data "$TMP/data" --rules "$RULES" \
		--warmup 50000 --txns "${PIPELINE_TXNS:-200000}" --runs 1 --json ${PIPELINE_ARGS:-}) || {
		echo "cpu.sh: bench-pipeline failed" >&2
		exit 1
	}
	echo "pipeline $(field "$v" cpu_ns)" | awk '{ print $1, $2 / 1000 }' >>"$TMP/results"
	echo "$(field "$v" cpu_ns) $(field "$v" alert_share)" | awk '{
	    printf "%-28s %11s  app_score %6.2f us/score  (in-process, one thread; %.0f%% of scores alerted)\n",
		"pipeline", "", $1 / 1000, $2 * 100 }'
}

: >"$TMP/results"
if [ -n "${MODEL_DATA:-}" ]; then
	cp -a "$MODEL_DATA" "$TMP/model"
elif [ "$MODEL" = 1 ]; then
	. "$SRC/bench/server/modeldata.sh"
	model_data "$BUILD" "$RULES" "$TMP/model"
fi
[ -d "$TMP/model" ] && settle_archive "$BUILD" "$TMP/model" "$RULES"
echo "# $(uname -m), $(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ), load $(cut -d' ' -f1-3 /proc/loadavg); $TP c=$CONC over $CONNS connection(s), ${SECS}s after ${WARMUP}s, load ${LOAD:-burst}${LOADGEN_ARGS:+, loadgen against vigild: $LOADGEN_ARGS}; $PIN_DESC$MEM_DESC"
set -- "$BUILD/server/vigild" "$@"
r=0
while [ $r -lt "$RUNS" ]; do
	r=$((r + 1))
	one echo "$ECHO"
	pus=
	case " ${ECHO_WORK_US:-} " in
	*" pipeline "*)
		pipeline
		pus=$(awk '$1 == "pipeline" { v = $2 } END { print v }' "$TMP/results")
		;;
	esac
	for w in ${ECHO_WORK_US:-}; do
		if [ "$w" = pipeline ]; then
			one "echo+pipeline" "$ECHO" --work-us "$pus"
		else
			one "echo+${w}us" "$ECHO" --work-us "$w"
		fi
	done
	for b in ${ECHO_REPLY_BYTES:-}; do
		one "echo+${b}B" "$ECHO" --reply-bytes "$b"
	done
	# The vigild servers take turns going first: one started right after
	# another grows into the memory that one freed, which a VM has not yet
	# handed back to its host, and costs less (an A/A run, one binary
	# twice a round: the second 0.16-0.63 us a score less in all 4 rounds).
	first=$(( (r - 1) % $# )) at=0
	for b in "$@" "$@"; do # the list twice: $# of them from the first on
		[ $at -ge $first ] && [ $at -lt $((first + $#)) ] && one "$b" "$b"
		at=$((at + 1))
	done
	if [ "${PIPELINE:-0}" = 1 ] && [ -z "$pus" ]; then pipeline; fi
done
# The summary: median server CPU per request of each server over the runs,
# of each vigild its ratio to the echo's median, and the median of its
# per-round ratios (each round's vigild against that round's echo: the two
# ran seconds apart, so a round the host slowed moves both), and how many
# of each server's rounds fell in the costly regime, at 0.5 context
# switches a request or more (docs/BENCHMARKS.md, "Two regimes": the echo
# lands there now and then even pinned, at about 1.5x its cheap cost, and a
# ratio over such a round flatters vigild).
awk '{ n[$1]++; v[$1, n[$1]] = $2; if ($3 >= 0.5) costly[$1]++
    if (!($1 in seen)) { seen[$1] = 1; order[++k] = $1 } }
    function median(l,   i, j, t, a) {
	for (i = 1; i <= n[l]; i++) a[i] = v[l, i]
	return med(a, n[l])
    }
    function med(a, m,   i, j, t) {
	for (i = 2; i <= m; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
    }
    function paired(l,   i, m, a) {
	m = 0
	for (i = 1; i <= n[l] && i <= n["echo"]; i++)
		if (v["echo", i] > 0) a[++m] = v[l, i] / v["echo", i]
	return m > 0 ? med(a, m) : 0
    }
    END {
	e = median("echo")
	for (i = 1; i <= k; i++) {
		m = median(order[i])
		printf "median %-28s server %6.2f us/req over %d run(s)", order[i], m, n[order[i]]
		if (order[i] != "pipeline")
			printf ", %d costly", costly[order[i]] + 0
		if (order[i] != "echo" && order[i] != "pipeline" && e > 0) {
			printf "  ratio to echo %.2f (per round %.2f)", m / e, paired(order[i])
			if ("pipeline" in seen)
				printf "  beyond echo + pipeline %.2f", m - e - median("pipeline")
			if (order[i] != "echo+pipeline" && order[i] !~ /^echo\+/ &&
			    "echo+pipeline" in seen && median("echo+pipeline") > 0)
				printf "  to echo+pipeline %.2f (over it %.2f us)",
				    m / median("echo+pipeline"), m - median("echo+pipeline")
		}
		printf "\n"
	} }' "$TMP/results"
