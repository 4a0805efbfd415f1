#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/server/modeldata.sh - sourced by model.sh and cpu.sh: model_data
# BUILD RULES DIR builds in DIR a data directory whose current generation
# has a trained model (vigil-gen traffic replayed offline with nightly
# rebuilds: archive, profiles, thresholds and model as vigild serves them),
# and writes the model's meta (vigil-rebuild --dump-model-meta) to
# DIR.meta.json. Progress on stderr; exits 1 if the last generation has no
# model.
model_data() {
	md_build=$1 md_rules=$2 md_dir=$3
	for p in tools/gen/vigil-gen tools/replay/vigil-replay batch/vigil-rebuild; do
		[ -x "$md_build/$p" ] || { echo "modeldata.sh: $md_build/$p missing: build it first" >&2; exit 1; }
	done
	# XGBoost's OpenMP threads sleep instead of spinning between rounds:
	# the same model, less CPU (docs/model.md).
	OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
	export OMP_WAIT_POLICY
	echo "modeldata.sh: building a data directory with a trained model (offline replay)" >&2
	"$md_build/tools/gen/vigil-gen" --cards 2000 --days 24 --fraud-rate 0.02 --seed 5 -q \
		-o "$md_dir.csv"
	"$md_build/tools/replay/vigil-replay" --csv "$md_dir.csv" --rules "$md_rules" --nightly \
		--label-delay 2d --force-label-delay --work "$md_dir" -q
	rm -f "$md_dir.csv"
	"$md_build/batch/vigil-rebuild" --data "$md_dir" --dump-model-meta > "$md_dir.meta.json" || {
		echo "modeldata.sh: the replay's last generation has no model" >&2; exit 1; }
}
