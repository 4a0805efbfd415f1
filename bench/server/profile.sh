#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/server/profile.sh - where a score's CPU goes in vigild, against a
# request's in the bare nng echo under the same load (docs/BENCHMARKS.md,
# "Where a score's CPU goes"): for each of the two servers, start it pinned,
# run vigil-loadgen (ipc, c=32) on the other CPUs, record the server with
# `perf record --call-graph dwarf` over the window, and turn perf's shares
# into microseconds of CPU a request (the server's utime+stime from /proc
# over a window of its own, unrecorded, divided by the requests the load
# generator counted in it). vigild serves a copy of DATA (a data
# directory with a generation and a model: bench/server/modeldata.sh;
# its closed archive segments compressed first: serve.sh, settle_archive),
# with rules/default.rules, as cpu.sh runs it.
#
#   bench/server/profile.sh BUILD_DIR DATA [SECONDS]
#
# SECONDS: each of two windows, default 4, each in a run of its own (the
# server started afresh on a fresh copy of DATA, a load of its own): the
# first unrecorded, for the CPU a request (perf's unwinding would add its
# own), the second recorded, for the shares. Environment: PIN (the
# servers' CPU list, default 0; the load generator gets the others),
# LOADGEN_ARGS (extra vigil-loadgen flags for vigild, e.g. "--cards 1000
# --step-us 60000000 --alert-every 50", cpu.sh's LOAD=production), KEEP
# (a directory to keep perf.data of each server in, for `perf report -i`).
# Prints, per server: requests/s and CPU µs a request; the µs by library
# (the kernel, the program, libc, libnng, ...); and for vigild the µs,
# children included, of the pipeline's parts and of the transport's
# (app_score is srv_score_txn; reading requests is readv, sending replies
# nng_ctx_send, of which sock_def_readable wakes the client), beside the
# echo's for the transport. Needs perf (linux-perf) and permission to
# record another process (root, or kernel.perf_event_paranoid <= 1). A
# share below 0.1% is not printed; shares scatter by a few tenths of a
# percent from run to run: compare figures from one run.
set -eu

# shellcheck source=bench/help.sh
. "$(dirname "$0")/../help.sh"

BUILD=${1:?usage: profile.sh BUILD_DIR DATA [SECONDS]}
DATA=${2:?usage: profile.sh BUILD_DIR DATA [SECONDS]}
SECS=${3:-4}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
command -v perf >/dev/null 2>&1 || { echo "profile.sh: needs perf (linux-perf)" >&2; exit 1; }
[ -d "$DATA/features" ] || { echo "profile.sh: $DATA: no features/ (bench/server/modeldata.sh makes one)" >&2; exit 1; }
PIN=${PIN:-0}
# shellcheck source=bench/server/pin.sh
. "$SRC/bench/server/pin.sh"
LOADGEN="$BUILD/bench/server/vigil-loadgen"
# shellcheck source=bench/server/serve.sh
. "$SRC/bench/server/serve.sh"
bench_tmp profile

# perf's share (children included with -c) of each symbol named, by prefix
# (LTO adds .lto_priv.0, .part.0, ...), as µs a request: "name us" lines.
shares() { # perf.data us_per_req children(0/1) names...
	data=$1 us=$2 ch=$3; shift 3
	if [ "$ch" = 1 ]; then mode=--children; else mode=--no-children; fi
	perf report -i "$data" $mode --sort sym --stdio -g none 2>/dev/null |
		awk -v us="$us" -v names="$*" '
		BEGIN { n = split(names, want, " ") }
		/^#/ || NF < 3 { next }
		{
			p = $1 + 0; sym = $NF
			for (i = 1; i <= n; i++)
				if (!(want[i] in got) && (sym == want[i] || index(sym, want[i] ".") == 1))
					got[want[i]] = p
		}
		END {
			for (i = 1; i <= n; i++)
				printf "    %-32s %6.2f us\n", want[i], (want[i] in got ? got[want[i]] : 0) * us / 100
		}'
}

one() { # label server-command...
	label=$1; shift
	# two runs, each of a server started afresh on a fresh copy of DATA
	# and a load of its own: the first unrecorded (the CPU a request), the
	# second recorded (the shares)
	for w in measure record; do
		url="ipc://$TMP/$label-$w.sock"
		rm -rf "$TMP/data"
		probe='' extra=''
		if [ "$label" = echo ]; then
			probe=--echo extra=--echo
			$SRV_PIN "$@" --listen "$url" 2>/dev/null &
		else
			extra=${LOADGEN_ARGS:-}
			cp -a "$TMP/model" "$TMP/data"
			$SRV_PIN "$@" --data "$TMP/data" --listen "$url" --admin off \
				--rules "$SRC/rules/default.rules" --max-future-skew 0 2>"$TMP/vigild.log" &
		fi
		SPID=$!
		i=0
		# shellcheck disable=SC2086
		until "$LOADGEN" --url "$url" $probe --requests 1 --warmup 0 >/dev/null 2>&1; do
			i=$((i + 1)); [ $i -lt 300 ] || { echo "profile.sh: $label not up" >&2; exit 1; }
			sleep 0.1
		done
		# shellcheck disable=SC2086
		$LG_PIN "$LOADGEN" --url "$url" -c 32 --duration $((SECS + 1)) --warmup 0.5 --json $extra \
			>"$TMP/lg-$w.json" &
		lpid=$!
		sleep 0.6
		if [ $w = measure ]; then
			s0=$(ticks "$SPID")
			sleep "$SECS"
			s1=$(ticks "$SPID")
		else
			perf record -q -F 2999 --call-graph dwarf,16384 -p "$SPID" -o "$TMP/$label.data" \
				-- sleep "$SECS" >/dev/null 2>"$TMP/perf.err" || {
				echo "profile.sh: perf record failed (needs root or" \
					"kernel.perf_event_paranoid <= 1): $(head -1 "$TMP/perf.err")" >&2
				exit 1
			}
		fi
		wait "$lpid" || {
			echo "profile.sh: loadgen against $label failed: $(cat "$TMP/lg-$w.json")" >&2
			exit 1
		}
		kill -TERM "$SPID"; wait "$SPID" || true; SPID=
	done
	rate=$(field "$(cat "$TMP/lg-measure.json")" rate)
	us=$(echo "$s0 $s1 $TCK $rate $SECS" | awk '{ print ($2 - $1) * 1e6 / $3 / ($4 * $5) }')
	printf '%s: %.0f requests/s, %.2f us of CPU a request\n' "$label" "$rate" "$us"
	echo "  by library:"
	perf report -i "$TMP/$label.data" --no-children --sort dso --stdio -g none 2>/dev/null |
		awk -v us="$us" '/^#/ || NF < 2 { next } ($1 + 0) >= 0.1 {
			printf "    %-32s %6.2f us\n", $2, ($1 + 0) * us / 100 }'
	if [ "$label" = vigild ]; then
		echo "  the pipeline (children included):"
		shares "$TMP/$label.data" "$us" 1 srv_score_txn store_score_begin eval_margin \
			model_forest_top_path store_scored_encode store_archive_enqueue ar_flush_upto \
			dd_put ent_apply rules_prog_eval
	fi
	echo "  the transport (children included):"
	shares "$TMP/$label.data" "$us" 1 __GI___readv nng_ctx_send sock_def_readable
	if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP"; cp "$TMP/$label.data" "$KEEP/"; fi
}

echo "# $(uname -m), $(getconf _NPROCESSORS_ONLN) CPUs, $(date -u +%Y-%m-%dT%H:%MZ), load $(cut -d' ' -f1-3 /proc/loadavg); ipc c=32, ${SECS}s; $PIN_DESC"
cp -a "$DATA" "$TMP/model"
settle_archive "$BUILD" "$TMP/model" "$SRC/rules/default.rules"
one echo "$BUILD/bench/server/vigil-echo"
one vigild "$BUILD/server/vigild"
