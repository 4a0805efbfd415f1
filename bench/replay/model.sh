#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/replay/model.sh - the figures of docs/DETECTION.md "Rules and the
# nightly model": the same default rule file, no per-dataset setting, the
# full nightly cycle (a rebuild every UTC midnight, labels 7 days after their
# transaction), once with the nightly model (default) and once with
# --no-model (rules alone), on
#   - vigil-gen traffic, seeds 1 and 2 (5,000 cards, 120 days);
#   - the Sparkov file of ../shared/data when it is there (a clone has none:
#     that file is development data and never part of the test suite),
#     measured on Sep 8 - Dec 31 (the issue's test months) and on every row.
# Prints one line per run and writes DIR/NAME-{model,rules}.json (the replay
# summaries, with per-night model figures in "nights") and .results (one line
# per row: bench/replay/results_figures.py recomputes the figures from it).
#   - sparkov4: its first four months, measured from Feb 1 (the quick run);
#   - sparkov-min: the whole file with only the required columns (txn_id,
#     event_time, card_id, merchant_id, amount, currency) and the label,
#     the shape of the held-out benchmark.
# usage: bench/replay/model.sh BUILDDIR OUTDIR [gen1|gen2|sparkov|sparkov4|sparkov-min ...]
set -eu

# shellcheck source=bench/help.sh
. "$(dirname "$0")/../help.sh"
[ $# -ge 2 ] || { echo "usage: model.sh BUILDDIR OUTDIR [gen1|gen2|sparkov ...]" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=$1
out=$2
shift 2
[ $# -gt 0 ] || set -- gen1 gen2 sparkov
gen=$build/tools/gen/vigil-gen
replay=$build/tools/replay/vigil-replay
if [ ! -x "$gen" ] || [ ! -x "$replay" ]; then
	echo "model.sh: build vigil-gen and vigil-replay in $build first" >&2
	exit 1
fi
mkdir -p "$out"
# XGBoost's OpenMP threads sleep instead of spinning between rounds:
# the same model, less CPU (docs/model.md).
OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
export OMP_WAIT_POLICY

figures() { # NAME JSON
	python3 - "$1" "$2" <<'PY'
import json, sys
name, path = sys.argv[1], sys.argv[2]
s = json.load(open(path))
m = s["metrics"]
c = m
def g(d, *ks):
    for k in ks:
        if isinstance(d, dict) and k in d:
            return d[k]
    return float("nan")
nights = s.get("nights", [])
tr = [n for n in nights if n.get("model_trained")]
print("%-22s rows %8d  ROC AUC %.4f  AP %.4f  alert rate %.2f%%  precision %.2f%%  recall %.2f%%  "
      "first model %s  nights with a model %d/%d  rebuild %.0f s" % (
      name, s["rows"], g(m, "roc_auc", "auc"), g(m, "average_precision", "ap"),
      100 * g(c, "alert_rate"), 100 * g(c, "precision"), 100 * g(c, "recall"),
      s.get("first_model"), len(tr), len(nights), s.get("rebuild_seconds", 0)))
PY
}

run() { # NAME CSV [extra replay options]
	name=$1 csv=$2
	shift 2
	for mode in model rules; do
		extra=
		[ "$mode" = rules ] && extra=--no-model
		# shellcheck disable=SC2086
		"$replay" --csv "$csv" --rules "$src/rules/default.rules" --nightly \
			--label-delay 7d --force-label-delay -q $extra "$@" \
			--results "$out/$name-$mode.results" --summary "$out/$name-$mode.json"
		figures "$name-$mode" "$out/$name-$mode.json"
	done
}

for what in "$@"; do
	case $what in
	gen1 | gen2)
		seed=${what#gen}
		[ -s "$out/gen$seed.csv" ] ||
			"$gen" --cards 5000 --days 120 --start 2024-01-01 --seed "$seed" -q -o "$out/gen$seed.csv"
		run "gen$seed" "$out/gen$seed.csv"
		;;
	sparkov)
		data=$src/../shared/data/sparkov-2019.csv.zst
		if [ ! -s "$data" ]; then
			echo "model.sh: $data not found: skipping Sparkov" >&2
			continue
		fi
		[ -s "$out/sparkov.csv" ] || zstd -q -dc "$data" > "$out/sparkov.csv"
		run sparkov-test "$out/sparkov.csv" --measure-from 2019-09-08
		;;
	sparkov4)
		# The first four months only (a whole year is 365 nightly rebuilds:
		# hours on two shared cores), measured from Feb 1, after the first
		# model (mid-January).
		data=$src/../shared/data/sparkov-2019.csv.zst
		if [ ! -s "$data" ]; then
			echo "model.sh: $data not found: skipping Sparkov" >&2
			continue
		fi
		[ -s "$out/sparkov4.csv" ] || zstd -q -dc "$data" |
			awk -F, 'NR == 1 || $2 < "2019-05-01"' > "$out/sparkov4.csv"
		run sparkov-jan-apr "$out/sparkov4.csv" --measure-from 2019-02-01
		;;
	sparkov-min)
		# The held-out benchmark's shape (card, merchant/terminal, amount,
		# time only): Sparkov with every optional column dropped (mcc,
		# country, channel, lat, lon), measured on the same test months.
		data=$src/../shared/data/sparkov-2019.csv.zst
		if [ ! -s "$data" ]; then
			echo "model.sh: $data not found: skipping Sparkov" >&2
			continue
		fi
		[ -s "$out/sparkov-min.csv" ] || zstd -q -dc "$data" |
			awk -F, 'BEGIN { OFS = "," } { print $1, $2, $3, $4, $5, $6, $12 }' \
				> "$out/sparkov-min.csv"
		run sparkov-min-test "$out/sparkov-min.csv" --measure-from 2019-09-08
		;;
	*)
		echo "model.sh: unknown data set '$what' (gen1, gen2, sparkov, sparkov4, sparkov-min)" >&2
		exit 2
		;;
	esac
done
