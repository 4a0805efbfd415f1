#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/server/pipeline_ab.sh - the scoring pipeline's CPU per score for
# several builds of bench-pipeline, alternated run by run on one copy of the
# same data, so that the host's slow and quiet stretches fall on every build
# alike: the way to judge a change to app_score's path on a shared machine,
# where cpu.sh's rounds swing by 20% (docs/BENCHMARKS.md, "CPU per score").
#
#   bench/server/pipeline_ab.sh DATA ROUNDS BENCH_PIPELINE...
#
# DATA: a data directory with a generation and a model (bench/server/
# modeldata.sh), copied afresh before every run. Each round runs every
# binary once, in the order given. Prints each run's CPU per score, then
# per binary the median, minimum and maximum over the rounds and, for every
# binary after the first, the median of its paired differences from the
# first (negative: cheaper). Environment: RULES (default rules/default.rules),
# TXNS (scores timed per run, default 150000), WARMUP (untimed first,
# default 50000), PIN (a taskset -c list, default 0; empty: not pinned).
set -eu

# shellcheck source=bench/help.sh
. "$(dirname "$0")/../help.sh"
DATA=${1:?usage: pipeline_ab.sh DATA ROUNDS BENCH_PIPELINE...}
ROUNDS=${2:?usage: pipeline_ab.sh DATA ROUNDS BENCH_PIPELINE...}
shift 2
[ $# -ge 1 ] || { echo "pipeline_ab.sh: no bench-pipeline binary given" >&2; exit 2; }
SRC=$(cd "$(dirname "$0")/../.." && pwd)
RULES=${RULES:-$SRC/rules/default.rules}
PIN=${PIN-0}
PFX=
[ -n "$PIN" ] && PFX="taskset -c $PIN"
TMP=$(mktemp -d /tmp/vigil-pipeline-ab-XXXXXX)
trap 'rm -rf "$TMP"' EXIT INT TERM

r=1
while [ "$r" -le "$ROUNDS" ]; do
	i=1
	for b in "$@"; do
		rm -rf "$TMP/data"
		cp -a "$DATA" "$TMP/data"
		# shellcheck disable=SC2086
		v=$($PFX "$b" --data "$TMP/data" --rules "$RULES" --warmup "${WARMUP:-50000}" \
			--txns "${TXNS:-150000}" --runs 1 --json) || {
			echo "pipeline_ab.sh: $b failed" >&2
			exit 1
		}
		ns=$(echo "$v" | sed -n 's/.*"cpu_ns":\([0-9.]*\).*/\1/p')
		printf 'round %d  %-40s %8.0f ns/score\n' "$r" "$b" "$ns"
		echo "$r $i $ns" >>"$TMP/runs"
		i=$((i + 1))
	done
	r=$((r + 1))
done
i=1
for b in "$@"; do
	awk -v i="$i" '$2 == i { print $3 }' "$TMP/runs" | sort -n | awk -v b="$b" '
	    { v[NR] = $1 }
	    END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%-40s median %8.0f  min %8.0f  max %8.0f ns/score over %d round(s)", b,
		    m, v[1], v[NR], NR }'
	if [ "$i" -gt 1 ]; then
		awk -v i="$i" '$2 == 1 { a[$1] = $3 } $2 == i { d[$1] = $3 } END {
		    for (r in d) print d[r] - a[r] }' "$TMP/runs" | sort -n | awk '
		    { v[NR] = $1 }
		    END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "  paired vs the first %+6.0f", m }'
	fi
	echo
	i=$((i + 1))
done
