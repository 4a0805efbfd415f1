#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/batch/test_omp_passive.sh - the programs that train with XGBoost
# (vigil-rebuild, vigil-replay, bench-train) run libgomp with
# OMP_WAIT_POLICY=passive unless the user chose a policy or a spin count
# (batch_omp_passive, batch/batch.h). libgomp prints the spin count it took
# at load with OMP_DISPLAY_ENV=verbose: 0 is passive, 300000 its default.
set -eu

B=${VIGIL_BUILD_ROOT:?VIGIL_BUILD_ROOT not set}
fail() { echo "test_omp_passive.sh: $*" >&2; exit 1; }

# The spin count libgomp printed last: the program's own, after any
# re-execution. $1: program; the rest: environment settings.
spin() {
	prog=$1
	shift
	env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT OMP_DISPLAY_ENV=verbose "$@" \
		"$prog" --help 2>&1 >/dev/null | sed -n "s/.*GOMP_SPINCOUNT = '\([0-9]*\)'.*/\1/p" | tail -n 1
}

for p in batch/vigil-rebuild tools/replay/vigil-replay bench/batch/bench-train; do
	prog="$B/$p"
	[ -x "$prog" ] || fail "$prog not built"
	n=$(spin "$prog")
	[ "$n" = 0 ] || fail "$p unset: spin count '$n', want 0 (passive)"
	n=$(spin "$prog" OMP_WAIT_POLICY=active)
	[ -n "$n" ] && [ "$n" != 0 ] || fail "$p with OMP_WAIT_POLICY=active: spin count '$n'"
	n=$(spin "$prog" GOMP_SPINCOUNT=300000)
	[ "$n" = 300000 ] || fail "$p with GOMP_SPINCOUNT=300000: spin count '$n'"
	# the arguments reach the re-executed program unchanged
	v=$(env -u OMP_WAIT_POLICY "$prog" --help 2>&1 | head -n 1)
	[ -n "$v" ] || fail "$p --help printed nothing"
done
echo "test_omp_passive.sh: ok"
