#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/replay/nightly.sh - how long a replay with nightly rebuilds takes,
# and what it measures, for each training cadence given: vigil-gen traffic
# (CARDS cards, DAYS days, seed 1), `vigil-replay --nightly` with the
# default rule file and model.sh's label settings (7-day delay), once per
# `--train-every` value and run, in turn (1d 7d 1d 7d ...), so a drift of
# the machine's speed hits every cadence alike. `1d` is the nightly
# training of production (and of vigil-replay before --train-every).
# Prints one line per run (wall seconds, seconds in rebuilds and, of them,
# in training (the nights' train_seconds) and the rest (reading,
# aggregating, writing, tuning), nights that trained, ROC AUC and AP by
# score and by model.score ties) and, at the end,
# the median of each cadence's runs. Summaries go to OUTDIR/te-CADENCE-RUN.json.
#
# usage: bench/replay/nightly.sh BUILDDIR OUTDIR [CARDS [DAYS [RUNS [CADENCE...]]]]
#   defaults: 7100 cards, 135 days (about 1.3M rows), 1 run, cadences 1d 7d.
# REPLAY_OPTS (environment) adds options to every vigil-replay run, e.g.
# REPLAY_OPTS="--rebuild-threads 1" for the one-thread rebuilds of before
# --rebuild-threads (its default is the online CPUs).
# A release build (deploy/build.sh build-bench --buildtype=release) is what
# docs/BENCHMARKS.md quotes; run it on a quiet machine, under nice if not.
set -eu

# shellcheck source=bench/help.sh
. "$(dirname "$0")/../help.sh"
[ $# -ge 2 ] || {
	echo "usage: nightly.sh BUILDDIR OUTDIR [CARDS [DAYS [RUNS [CADENCE...]]]]" >&2
	exit 2
}
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=$1 out=$2
cards=${3:-7100} days=${4:-135} runs=${5:-1}
shift $(($# < 5 ? $# : 5))
[ $# -gt 0 ] || set -- 1d 7d
gen=$build/tools/gen/vigil-gen
replay=$build/tools/replay/vigil-replay
if [ ! -x "$gen" ] || [ ! -x "$replay" ]; then
	echo "nightly.sh: build vigil-gen and vigil-replay in $build first" >&2
	exit 1
fi
mkdir -p "$out"
OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive} # as model.sh (docs/model.md)
export OMP_WAIT_POLICY
csv=$out/gen-$cards-$days.csv
[ -s "$csv" ] || "$gen" --cards "$cards" --days "$days" --seed 1 -q -o "$csv"

run=1
while [ $run -le "$runs" ]; do
	for every in "$@"; do
		j=$out/te-$every-$run.json
		# shellcheck disable=SC2086 # REPLAY_OPTS is a list of words
		"$replay" --csv "$csv" --rules "$src/rules/default.rules" --nightly \
			--label-delay 7d --force-label-delay --train-every "$every" -q --summary "$j" \
			${REPLAY_OPTS:-}
		python3 - "$every" "$run" "$j" <<'PY'
import json, sys
every, run, path = sys.argv[1:]
s = json.load(open(path))
m = s["metrics"]
n = s.get("nights", [])
fresh = [x for x in n if x.get("model_trained") and not x.get("model_carried")]
train_s = sum(x.get("train_seconds", 0) for x in fresh)
print("train-every %-4s run %s  rows %d  nights %d (trained %d)  wall %.1f s  rebuilds %.1f s  "
      "(training %.1f s, the rest %.1f s)  ROC AUC %.4f  AP %.4f" % (every, run, s["rows"],
      len(n), len(fresh), s["seconds"], s.get("rebuild_seconds", 0), train_s,
      s.get("rebuild_seconds", 0) - train_s, m["roc_auc"], m["average_precision"]))
PY
	done
	run=$((run + 1))
done
python3 - "$out" "$runs" "$@" <<'PY'
import json, statistics, sys
out, runs, cadences = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
for every in cadences:
    ss = [json.load(open("%s/te-%s-%d.json" % (out, every, r))) for r in range(1, runs + 1)]
    med = lambda f: statistics.median(f(s) for s in ss)
    train_s = lambda s: sum(x.get("train_seconds", 0) for x in s.get("nights", [])
                            if x.get("model_trained") and not x.get("model_carried"))
    print("median train-every %-4s over %d runs: wall %.1f s  rebuilds %.1f s  training %.1f s  "
          "AP %.4f  ROC AUC %.4f" % (every, runs, med(lambda s: s["seconds"]),
          med(lambda s: s.get("rebuild_seconds", 0)), med(train_s),
          med(lambda s: s["metrics"]["average_precision"]),
          med(lambda s: s["metrics"]["roc_auc"])))
PY
