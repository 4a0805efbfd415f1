#!/bin/sh
# SPDX-License-Identifier: MIT
# vigil-rebuild's command line against docs/tools.md: one thing per run (a
# dump never hides a --rollback or another dump, nor takes a flag it would
# ignore), a data directory without archive/ is a missing input (2, as in
# vigil-replay), and a damaged partial file is named FILE:OFFSET:. Each
# case checks the exit status and the one line on standard error, text
# included: error texts are interface.
set -u
build=${VIGIL_BUILD_ROOT:?VIGIL_BUILD_ROOT not set}
R="$build/batch/vigil-rebuild"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0

# expect CODE REGEX ARG...: runs vigil-rebuild ARG..., wants exit CODE and
# exactly one line on stderr matching REGEX (grep -E, whole line).
expect() {
	want=$1 re=$2
	shift 2
	"$R" "$@" >"$T/out" 2>"$T/err"
	got=$?
	lines=$(wc -l <"$T/err")
	if [ "$got" != "$want" ] || [ "$lines" != 1 ] || ! grep -Eqx -- "$re" "$T/err"; then
		echo "FAIL: vigil-rebuild $*: exit $got (want $want), stderr ($lines lines):"
		sed 's/^/  /' "$T/err"
		echo "  want: $re"
		fails=$((fails + 1))
	fi
}

mkdir -p "$T/empty" "$T/d/archive"
X='--dump, --dump-model, --dump-model-meta, --merge, --partition and --rollback exclude each other \(see --help\)'

# 1. Modes exclude each other, dumps included; before, a dump returned
# first (--rollback --dump printed the card, exited 0, rolled nothing back).
expect 2 "vigil-rebuild: $X" -d "$T/d" --rollback --dump card c1
expect 2 "vigil-rebuild: $X" -d "$T/d" --dump card c1 --rollback
expect 2 "vigil-rebuild: $X" -d "$T/d" --dump-model --dump-model-meta
expect 2 "vigil-rebuild: $X" -d "$T/d" --dump-model --rollback
expect 2 "vigil-rebuild: $X" -d "$T/d" --dump-model-meta --dump card c1
expect 2 "vigil-rebuild: $X" -d "$T/d" --dump-model --merge a b
expect 2 "vigil-rebuild: $X" -d "$T/d" --partition 0/2 -o "$T/p" --dump card c1
expect 2 "vigil-rebuild: $X" -d "$T/d" --merge a b --rollback
expect 2 'vigil-rebuild: --dump given twice: one profile per run \(see --help\)' \
    -d "$T/d" --dump card c1 --dump merchant m1
# an option only a build reads is refused, not ignored, by a dump or rollback
expect 2 'vigil-rebuild: --rules does not go with --dump-model \(see --help\)' \
    -d "$T/d" --dump-model --rules "$T/none.rules"
expect 2 'vigil-rebuild: --force does not go with --rollback \(see --help\)' \
    -d "$T/d" --rollback --force
expect 2 'vigil-rebuild: --as-of does not go with --dump \(see --help\)' \
    -d "$T/d" --dump card c1 --as-of 2026-03-01
expect 2 'vigil-rebuild: --output does not go with --dump-model-meta \(see --help\)' \
    -d "$T/d" --dump-model-meta -o "$T/x"
# so are --json and --quiet: a dump prints its JSON whatever they say
expect 2 'vigil-rebuild: --json does not go with --dump \(see --help\)' \
    -d "$T/d" --dump card c1 -j
expect 2 'vigil-rebuild: --quiet does not go with --dump \(see --help\)' \
    -d "$T/d" -q --dump card c1
expect 2 'vigil-rebuild: --json does not go with --dump-model \(see --help\)' \
    -d "$T/d" --dump-model --json
expect 2 'vigil-rebuild: --quiet does not go with --dump-model-meta \(see --help\)' \
    -d "$T/d" --dump-model-meta --quiet
# --rollback reads them: still a rollback (none to do here: 1)
expect 1 'vigil-rebuild: rollback failed: .*' -d "$T/d" --rollback -q --json
# alone, each still runs (no generation yet: a failure, 1)
expect 1 'vigil-rebuild: .*/d: no generation yet' -d "$T/d" --dump-model
expect 1 'vigil-rebuild: rollback failed: .*' -d "$T/d" --rollback

# 2. No DIR/archive: a missing input, 2 (docs/tools.md, "missing").
expect 2 "vigil-rebuild: $T/empty/archive: cannot open archive directory: No such file or directory" \
    -d "$T/empty" -q --as-of 2026-03-01
expect 2 "vigil-rebuild: $T/empty/archive: cannot open archive directory: No such file or directory" \
    -d "$T/empty" -q --as-of 2026-03-01 --partition 0/2 -o "$T/p0"

# 3. A damaged partial file: FILE:OFFSET: (a place in a binary input).
"$R" -d "$T/d" -q --as-of 2026-03-01 --partition 0/2 -o "$T/p0" 2>"$T/err" &&
    "$R" -d "$T/d" -q --as-of 2026-03-01 --partition 1/2 -o "$T/p1" 2>>"$T/err" || {
	echo "FAIL: partitions of an empty archive:"; cat "$T/err"; exit 1; }
cp "$T/p1" "$T/garbage"
size=$(wc -c <"$T/garbage")
printf '\245' | dd of="$T/garbage" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
expect 1 "vigil-rebuild: $T/garbage:[0-9]+: checksum mismatch \(file damaged or truncated\)" \
    -d "$T/d" -q --merge "$T/p0" "$T/garbage"
# another kind of file is said to be one, not a damaged partial file; a
# directory is a missing input (2)
printf 'txn_id,card_id\n' >"$T/other.csv"
expect 1 "vigil-rebuild: $T/other.csv:0: not a vigil-rebuild partial file" \
    -d "$T/d" -q --merge "$T/p0" "$T/other.csv"
expect 2 "vigil-rebuild: $T: not a regular file" -d "$T/d" -q --merge "$T/p0" "$T"

# 4. An option the mode would ignore is refused (docs/tools.md: flags
# accepted and ignored are usage errors). Before, `--merge --as-of` of
# another night built the partial files' night and exited 0, and
# `--partition --force` or `--keep` did nothing; nothing is written now.
M='does not go with --merge \(the partial files carry it: give it to the --partition runs\)'
P='does not go with --partition \(it writes no generation: give it to the --merge\)'
for o in "--as-of 2026-03-05" "--window 30d" "--train-window 14d" "--label-maturity 3d" \
    --labelled-only; do
	# shellcheck disable=SC2086 # $o: an option and its value
	expect 2 "vigil-rebuild: ${o%% *} $M \(see --help\)" -d "$T/d" -q --merge "$T/p0" "$T/p1" $o
done
[ ! -e "$T/d/features/CURRENT" ] || { echo "FAIL: a refused --merge wrote a generation"; fails=$((fails + 1)); }
expect 2 "vigil-rebuild: --force $P \(see --help\)" \
    -d "$T/d" -q --as-of 2026-03-01 --partition 0/2 -o "$T/p2" --force
expect 2 "vigil-rebuild: --keep $P \(see --help\)" \
    -d "$T/d" -q --as-of 2026-03-01 --keep 5 --partition 0/2 -o "$T/p2"
[ ! -e "$T/p2" ] || { echo "FAIL: a refused --partition wrote $T/p2"; fails=$((fails + 1)); }
# what each mode reads still goes
expect_ok() {
	"$R" "$@" >"$T/out" 2>"$T/err" || { echo "FAIL: vigil-rebuild $*:"; sed 's/^/  /' "$T/err"
		fails=$((fails + 1)); }
}
expect_ok -d "$T/d" -q --as-of 2026-03-01 --no-model --threads 1 --partition 0/2 -o "$T/p2"
expect_ok -d "$T/d" -q --merge "$T/p0" "$T/p1" --force --keep 2 --threads 1

# 5. A commit that dies between renaming gen-N into place and switching
# CURRENT (a kill, or CURRENT.tmp that cannot be written: disk full) leaves
# a complete gen-N that was never current. Before, it stayed: it took one of
# the --keep places, so the next run of that night pruned the generation
# vigild had been serving (the night before), and --rollback went to it,
# the same night again. The next run now removes it first.
rm -rf "$T/f"
mkdir -p "$T/f/archive"
expect_ok -d "$T/f" -q --as-of 2026-03-01 --no-model
expect_ok -d "$T/f" -q --as-of 2026-03-02 --no-model
mkdir "$T/f/features/CURRENT.tmp" # CURRENT cannot be replaced: the commit fails after its rename
expect 1 "vigil-rebuild: .*/features/CURRENT.tmp: Is a directory" \
    -d "$T/f" -q --as-of 2026-03-03 --no-model
rmdir "$T/f/features/CURRENT.tmp"
[ "$(cat "$T/f/features/CURRENT")" = gen-000002 ] || {
	echo "FAIL: a failed commit switched CURRENT"; fails=$((fails + 1)); }
expect_ok -d "$T/f" -q --as-of 2026-03-03 --no-model --keep 2
[ ! -e "$T/f/features/gen-000003" ] || {
	echo "FAIL: the failed commit's gen-000003 is still there"; fails=$((fails + 1)); }
[ -d "$T/f/features/gen-000002" ] || {
	echo "FAIL: --keep 2 pruned gen-000002, the night before"; fails=$((fails + 1)); }
"$R" -d "$T/f" --rollback --json >"$T/out" 2>"$T/err"
grep -q '"current": 2}' "$T/out" || {
	echo "FAIL: --rollback did not go back to generation 2:"; cat "$T/out" "$T/err"
	fails=$((fails + 1)); }

# 6. A commit that died after CURRENT named gen-N and before it removed
# PENDING: a --rollback from gen-N settles PENDING first, so the next
# rebuild keeps gen-N (before, it removed the generation rolled back from).
rm -rf "$T/h"
mkdir -p "$T/h/archive"
expect_ok -d "$T/h" -q --as-of 2026-03-01 --no-model
expect_ok -d "$T/h" -q --as-of 2026-03-02 --no-model
echo gen-000002 >"$T/h/features/PENDING"
expect_ok -d "$T/h" -q --rollback
[ ! -e "$T/h/features/PENDING" ] || { echo "FAIL: --rollback left PENDING"; fails=$((fails + 1)); }
expect_ok -d "$T/h" -q --as-of 2026-03-03 --no-model
[ -d "$T/h/features/gen-000002" ] || {
	echo "FAIL: the rebuild after --rollback removed gen-000002, rolled back from"
	fails=$((fails + 1)); }

# 7. An as-of after tomorrow (a mistyped year) would be current for years
# and refuse every nightly before it as going back in time: refused
# without --force (2, nothing written); tomorrow's date is a night.
rm -rf "$T/g"
mkdir -p "$T/g/archive"
expect 2 "vigil-rebuild: --as-of 2999-03-01 is after tomorrow \\(the clock says [0-9]{4}-[0-9]{2}-[0-9]{2}\\): its generation would refuse every nightly before it; check the date, or --force \\(see --help\\)" \
    -d "$T/g" -q --as-of 2999-03-01 --no-model
expect 2 "vigil-rebuild: --as-of 2999-03-01 is after tomorrow \\(the clock says [0-9]{4}-[0-9]{2}-[0-9]{2}\\): its generation would refuse every nightly before it; check the date \\(see --help\\)" \
    -d "$T/g" -q --as-of 2999-03-01 --partition 0/2 -o "$T/g0"
[ ! -e "$T/g/features/CURRENT" ] && [ ! -e "$T/g0" ] || {
	echo "FAIL: a refused far-future --as-of wrote something"; fails=$((fails + 1)); }
expect_ok -d "$T/g" -q --as-of "$(date -u -d tomorrow +%F)" --no-model
expect_ok -d "$T/g" -q --as-of 2999-03-01 --no-model --force

[ $fails -eq 0 ] || { echo "$fails case(s) failed"; exit 1; }
echo "ok"
