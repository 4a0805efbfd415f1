#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/tools/test_demo.sh - the one-command demo (deploy/demo.sh) end to end
# at a small size: it must exit 0, stop its server, and leave the report,
# the results and a summary whose counts add up, and the last days unlabelled.
# usage: test_demo.sh SOURCE_ROOT BUILD_ROOT
set -eu
src=$1
build=$2
tmp=$(mktemp -d /tmp/vigil-test-demo-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

DEMO_CARDS=300 DEMO_DAYS=6 DEMO_SEED=4 DEMO_DATA=$tmp/demo \
	"$src/deploy/demo.sh" "$build" >"$tmp/out" 2>"$tmp/err" || {
	echo "demo failed:"; cat "$tmp/err"; exit 1; }

fail() { echo "test_demo: $*"; cat "$tmp/out"; exit 1; }
grep -q "^demo: done. HTML report: $tmp/demo/report.html$" "$tmp/out" || fail "no final line"
grep -q "^vigil-replay: .*server mode" "$tmp/out" || fail "no summary"
grep -q "5 nightly rebuilds excluded" "$tmp/out" || fail "expected 5 nightly rebuilds"
[ -s "$tmp/demo/report.html" ] || fail "no report"
rows=$(wc -l < "$tmp/demo/results.jsonl")
csvrows=$(($(wc -l < "$tmp/demo/traffic.csv") - 1))
[ "$rows" -eq "$csvrows" ] || fail "$rows results for $csvrows rows"
grep -q "\"rows\": $csvrows," "$tmp/demo/summary.json" || fail "summary rows"
grep -q '"failed": 0,' "$tmp/demo/summary.json" || fail "failed transactions"
# the last 2 days (DEMO_UNLABELLED_DAYS) carry no label: the console's queue
# has open cases; the days before keep theirs
[ "$(tail -n 1 "$tmp/demo/traffic.csv" | cut -d, -f15)" = "" ] || fail "the last row is labelled"
unl=$(awk -F, 'NR > 1 && $15 == ""' "$tmp/demo/traffic.csv" | wc -l)
{ [ "$unl" -gt 0 ] && [ "$unl" -lt "$csvrows" ]; } || fail "$unl of $csvrows rows unlabelled"
[ ! -S "$tmp/demo/vigild.sock" ] || ! pgrep -f "$tmp/demo/vigild.sock" >/dev/null || fail "vigild still running"
echo "demo ok: $rows transactions"
