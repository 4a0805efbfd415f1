#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/replay/detection.sh - reproduces docs/DETECTION.md: for each seed,
# generates 120 days of traffic for 5,000 cards with vigil-gen and replays it
# offline through rules/default.rules with nightly rebuilds and a 7-day
# label delay, comparing against default.rules + candidate.rules.tail.
# About 6 minutes per seed on one free core (the nightly rebuilds dominate).
# The "before" figures of docs/DETECTION.md are this script run at commit
# 3547443 (the rule set before the 2026-11 revision).
# usage: bench/replay/detection.sh BUILDDIR OUTDIR [SEED...]   (default seeds: 1 2)
set -eu

# shellcheck source=bench/help.sh
. "$(dirname "$0")/../help.sh"
[ $# -ge 2 ] || { echo "usage: detection.sh BUILDDIR OUTDIR [SEED...]" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=$1
out=$2
shift 2
[ $# -gt 0 ] || set -- 1 2
gen=$build/tools/gen/vigil-gen
replay=$build/tools/replay/vigil-replay
[ -x "$gen" ] && [ -x "$replay" ] || { echo "detection: build vigil-gen and vigil-replay in $build first" >&2; exit 1; }
mkdir -p "$out"
# the candidate needs default.rules' list files next to it
cand=$out/candidate.rules
cp "$src"/rules/*.txt "$out"/
cat "$src/rules/default.rules" "$here/candidate.rules.tail" > "$cand"
for seed in "$@"; do
	echo "detection: seed $seed: generating"
	"$gen" --cards 5000 --days 120 --start 2024-01-01 --seed "$seed" -o "$out/s$seed.csv"
	echo "detection: seed $seed: replaying (nightly rebuilds, 7-day label delay)"
	"$replay" --csv "$out/s$seed.csv" --rules "$src/rules/default.rules" --compare "$cand" \
		--nightly --label-delay 7d --force-label-delay \
		--summary "$out/s$seed.json" --report "$out/s$seed.html" > "$out/s$seed.txt"
	echo "detection: seed $seed: $out/s$seed.txt, $out/s$seed.json, $out/s$seed.html"
done
