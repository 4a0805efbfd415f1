#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/batch/bench_train.sh - bench-train --nightly trains with
# vigil-rebuild's nightly options (batch_train_opts_nightly: a fixed number
# of rounds, eta 0.2, lambda 10, 100,000 rows), and a flag given before or
# after it still changes them. Small rows; no timing is checked.
set -eu

B=${VIGIL_BUILD_ROOT:?VIGIL_BUILD_ROOT not set}
BT="$B/bench/batch/bench-train"
small="--rows 20000 --days 10 --runs 1 --threads 1"

# shellcheck disable=SC2086 # small is a list of words
out=$("$BT" $small --nightly)
echo "$out" | grep -q 'rounds 80 to 80, early_stop 0 on logloss, max_depth 6, eta 0.2, ' ||
	{ echo "bench_train.sh: --nightly: $out" >&2; exit 1; }
echo "$out" | grep -q 'lambda 10, ' || { echo "bench_train.sh: --nightly lambda: $out" >&2; exit 1; }
echo "$out" | grep -q 'rounds 80 (best 80)' || { echo "bench_train.sh: --nightly trees: $out" >&2; exit 1; }
for order in "--eta 0.3 --nightly" "--nightly --eta 0.3"; do
	# shellcheck disable=SC2086
	out=$("$BT" $small $order)
	echo "$out" | grep -q 'rounds 80 to 80, .* eta 0.3, ' ||
		{ echo "bench_train.sh: $order: $out" >&2; exit 1; }
done
# without it, the library's defaults
# shellcheck disable=SC2086
out=$("$BT" $small)
echo "$out" | grep -q 'rounds 20 to 300, early_stop 30 on logloss, max_depth 6, eta 0.1, ' ||
	{ echo "bench_train.sh: defaults: $out" >&2; exit 1; }
echo "bench_train.sh: ok"
