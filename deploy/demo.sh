#!/bin/sh
# SPDX-License-Identifier: MIT
# The one-command demo (README command 1, after bootstrap and build):
#   1. generate about two months of synthetic card traffic with vigil-gen;
#   2. start vigild on a fresh embedded data directory (./demo-data);
#   3. replay the traffic into it with vigil-replay: labels arrive at their
#      label time (chargebacks, days later), vigil-rebuild runs every night;
#      the last DEMO_UNLABELLED_DAYS days carry no label (at the end of the
#      stream their chargebacks have not come yet: the console's review
#      queue opens with those cases);
#   4. print the summary and the path of the HTML report; stop the server.
# A few minutes on two cores. Exits non-zero with a one-line reason on failure.
#
# usage: deploy/demo.sh [BUILDDIR]       (default: build)
# Environment: DEMO_CARDS (default 5000), DEMO_DAYS (61), DEMO_SEED (1),
#              DEMO_DATA (./demo-data), DEMO_CONCURRENCY (2),
#              DEMO_UNLABELLED_DAYS (2; 0: every row keeps its label).
set -eu

cd "$(dirname "$0")/.."
root=$(pwd)
build=${1:-build}
cards=${DEMO_CARDS:-5000}
days=${DEMO_DAYS:-61}
seed=${DEMO_SEED:-1}
data=${DEMO_DATA:-$root/demo-data}
conc=${DEMO_CONCURRENCY:-2}
unlabelled=${DEMO_UNLABELLED_DAYS:-2}
rules=$root/rules/default.rules

die() {
	echo "demo: $*" >&2
	exit 1
}

find_prog() { # name, candidate paths...
	name=$1
	shift
	for p in "$@"; do
		if [ -x "$p" ]; then
			echo "$p"
			return 0
		fi
	done
	die "$name not found under $build/ (run ./deploy/build.sh first)"
}

[ -d "$build" ] || die "build directory '$build' not found (run ./deploy/build.sh first)"
gen=$(find_prog vigil-gen "$build/tools/gen/vigil-gen")
replay=$(find_prog vigil-replay "$build/tools/replay/vigil-replay")
vigild=$(find_prog vigild "$build/server/vigild")
rebuild=$(find_prog vigil-rebuild "$build/batch/vigil-rebuild")
[ -r "$rules" ] || die "$rules not found"

pid=""
cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
}
trap cleanup EXIT
trap 'echo "demo: interrupted" >&2; exit 130' INT TERM

# reset the demo directory, but never something that is not one
if [ -e "$data" ] && [ ! -f "$data/traffic.csv" ] && [ -n "$(ls -A "$data" 2>/dev/null)" ]; then
	die "refusing to reset $data: it is not empty and holds no demo (set DEMO_DATA)"
fi
echo "demo: [1/4] generating $days days of traffic for $cards cards (seed $seed)"
rm -rf "$data"
mkdir -p "$data" || die "cannot create $data"
csv=$data/traffic.csv
"$gen" --cards "$cards" --days "$days" --seed "$seed" --start 2024-01-01 -o "$csv" \
	|| die "vigil-gen failed"
case $unlabelled in
'' | *[!0-9]*) die "DEMO_UNLABELLED_DAYS=$unlabelled: a number of days" ;;
esac
if [ "$unlabelled" -gt 0 ]; then
	# the labels (columns label, label_time) of rows in the last days are
	# emptied: event times are RFC 3339 in UTC, compared as text
	last=$(tail -n 1 "$csv" | cut -d, -f2)
	last=${last%Z}
	cutoff=$(date -u -d "${last%.*}Z - $unlabelled days" +%Y-%m-%dT%H:%M:%S) ||
		die "cannot compute the unlabelled cut-off from $last"
	if ! awk -F, -v OFS=, -v cut="$cutoff" '
		NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "label") l = i; if ($i == "label_time") lt = i } }
		NR > 1 && l && $2 >= cut { $l = ""; if (lt) $lt = "" }
		{ print }' "$csv" >"$csv.tmp"; then
		die "cannot empty the labels of the last $unlabelled days"
	fi
	mv "$csv.tmp" "$csv"
fi

echo "demo: [2/4] starting vigild on $data"
sock="ipc://$data/vigild.sock"
"$vigild" --data "$data" --listen "$sock" --admin off --rules "$rules" --fsync never \
	2>"$data/vigild.log" &
pid=$!
# the socket file appears once vigild listens
i=0
while [ ! -S "$data/vigild.sock" ]; do
	if ! kill -0 "$pid" 2>/dev/null; then
		die "vigild exited at startup: $(tail -n 1 "$data/vigild.log" 2>/dev/null)"
	fi
	i=$((i + 1))
	[ $i -le 300 ] || die "vigild did not listen on $sock within 30 s"
	sleep 0.1
done

echo "demo: [3/4] replaying into vigild: labels at their label time, a rebuild every night"
report=$data/report.html
"$replay" --csv "$csv" --server "$sock" --rules "$rules" --concurrency "$conc" \
	--nightly --data "$data" --rebuild "$rebuild" \
	--results "$data/results.jsonl" --summary "$data/summary.json" --report "$report" \
	|| die "vigil-replay failed (server log: $data/vigild.log)"

echo "demo: [4/4] stopping vigild"
kill -TERM "$pid" 2>/dev/null || true
status=0
wait "$pid" || status=$?
pid=""
[ "$status" -eq 0 ] || die "vigild exited with status $status (log: $data/vigild.log)"

echo "demo: done. HTML report: $report"
echo "demo: per-transaction results: $data/results.jsonl; summary: $data/summary.json"
echo "demo: click through the cases in the analyst console:  DEMO_DATA=$data ./console/demo-console.sh $build"
