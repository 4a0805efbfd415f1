#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/cluster/night_args.sh - deploy/slurm/vigil-night.sh refuses a bad
# --as-of, or a VIGIL_PARTS that vigil-rebuild --partition refuses, before
# it submits anything: exit 2, one line naming it and the value, no sbatch
# run and nothing made under VIGIL_BUILD (every task and path takes them; a
# task that refused one after submission left "submitted", exit 0, and a
# cancelled merge). A good value reaches sbatch (a fake one on PATH here: no
# Slurm needed).
set -u
src=$(cd "$(dirname "$0")/../.." && pwd)
N="$src/deploy/slurm/vigil-night.sh"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

mkdir "$T/bin" "$T/build"
printf '#!/bin/sh\n: >>"%s/sbatch-ran"\necho "sbatch: stub" >&2\nexit 1\n' "$T" >"$T/bin/sbatch"
chmod +x "$T/bin/sbatch"
night() {
	env PATH="$T/bin:$PATH" VIGIL_NIGHT_ENV=/nonexistent VIGIL_ARCHIVES="$T/archive" \
		VIGIL_BUILD="$T/build" VIGIL_RULES="$T/default.rules" sh "$N" "$@" >"$T/out" 2>&1
}
# refused WHAT LINE ARG...: night ARG... exits 2 with LINE alone, before
# sbatch and before making anything in VIGIL_BUILD
refused() {
	what=$1 line=$2
	shift 2
	rm -f "$T/sbatch-ran"
	st=0
	night "$@" || st=$?
	[ "$st" -eq 2 ] || fail "$what: exit $st, want 2: $(cat "$T/out")"
	grep -qxF "$line" "$T/out" || fail "$what: $(cat "$T/out")"
	[ ! -e "$T/sbatch-ran" ] || fail "$what: sbatch ran"
	[ -z "$(ls -A "$T/build")" ] || fail "$what: made $(ls -A "$T/build") in VIGIL_BUILD"
}
for bad in 2026-02-30 2026/03/01 yesterday '2026-03-01 ' 2026-3-1 ''; do
	refused "--as-of '$bad'" \
		"vigil-night: --as-of '$bad' is not a date YYYY-MM-DD (the night as of its 00:00 UTC)" \
		--as-of "$bad"
done
# VIGIL_PARTS: vigil-rebuild --partition I/N takes 2 <= N <= 4096; a task
# of a 1-task array exited 2 after submission, and the merge was cancelled
for bad in 0 1 4097 99999 012 x 3x -2; do
	export VIGIL_PARTS="$bad"
	refused "VIGIL_PARTS=$bad" \
		"vigil-night: VIGIL_PARTS '$bad' is not a number of partitions from 2 to 4096" \
		--as-of 2026-02-28
done
unset VIGIL_PARTS
for good in 2 4096; do
	rm -f "$T/sbatch-ran"
	VIGIL_PARTS=$good night --as-of 2026-02-28 || true
	[ -e "$T/sbatch-ran" ] || fail "VIGIL_PARTS=$good did not reach sbatch: $(cat "$T/out")"
	rm -rf "${T:?}/build"/*
done
rm -f "$T/sbatch-ran"
st=0
night --as-of 2026-02-28 || st=$?
[ -e "$T/sbatch-ran" ] || fail "--as-of 2026-02-28 did not reach sbatch (exit $st): $(cat "$T/out")"
[ "$st" -eq 1 ] || fail "--as-of 2026-02-28 with a failing sbatch: exit $st, want 1"

[ $fails -eq 0 ] || { echo "$fails case(s) failed"; exit 1; }
echo "ok"
