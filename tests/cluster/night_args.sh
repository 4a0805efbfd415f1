#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/cluster/night_args.sh - deploy/slurm/vigil-night.sh refuses a bad
# --as-of before it submits anything: exit 2, one line naming --as-of and
# the value, no sbatch run and nothing made under VIGIL_BUILD (every task
# and path takes the date; a task that refused it after submission left
# "submitted", exit 0, and a cancelled merge). A good date reaches sbatch
# (a stub on PATH here: no Slurm needed).
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
for bad in 2026-02-30 2026/03/01 yesterday '2026-03-01 ' 2026-3-1 ''; do
	rm -f "$T/sbatch-ran"
	st=0
	night --as-of "$bad" || st=$?
	[ "$st" -eq 2 ] || fail "--as-of '$bad': exit $st, want 2: $(cat "$T/out")"
	grep -qxF "vigil-night: --as-of '$bad' is not a date YYYY-MM-DD (the night as of its 00:00 UTC)" "$T/out" ||
		fail "--as-of '$bad': $(cat "$T/out")"
	[ ! -e "$T/sbatch-ran" ] || fail "--as-of '$bad': sbatch ran"
	[ -z "$(ls -A "$T/build")" ] || fail "--as-of '$bad': made $(ls -A "$T/build") in VIGIL_BUILD"
done
rm -f "$T/sbatch-ran"
st=0
night --as-of 2026-02-28 || st=$?
[ -e "$T/sbatch-ran" ] || fail "--as-of 2026-02-28 did not reach sbatch (exit $st): $(cat "$T/out")"
[ "$st" -eq 1 ] || fail "--as-of 2026-02-28 with a failing sbatch: exit $st, want 1"

[ $fails -eq 0 ] || { echo "$fails case(s) failed"; exit 1; }
echo "ok"
