#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/store_archive/bench_archive.sh - bench-archive runs every phase on a
# small bound (appends under each fsync policy, reads, compression of the
# closed segments, reads of the compressed ones: the zstd readers must count
# as many records as the plain ones), removes its scratch directory, and
# keeps docs/tools.md's exit codes: a bad flag or value exits 2, a scratch
# directory it cannot create exits 1. No timing is checked.
set -eu

B=${VIGIL_BUILD_ROOT:?VIGIL_BUILD_ROOT not set}
BA="$B/bench/archive/bench-archive"
D=$(mktemp -d /tmp/vigil-ba-XXXXXX)
trap 'chmod -R u+w "$D" 2>/dev/null; rm -rf "$D"' EXIT INT TERM
fail() { echo "bench-archive: $*" >&2; exit 1; }

"$BA" --dir "$D" --seconds 5 --records 3000 >"$D/out" 2>"$D/err" || fail "exit $?: $(cat "$D/err")"
grep -q '^compress closed segments' "$D/out" || fail "no compression line: $(cat "$D/out")"
# the bytes before compression are counted (the closed segment's .log)
grep -Eq '^compress closed segments .* (0\.[1-9]|[1-9][0-9]*\.[0-9]) MB -> [0-9.]+ MB' "$D/out" ||
	fail "compression sizes not counted: $(grep '^compress' "$D/out")"
# Each read line ends "... N records ..."; the zstd reads must see what the plain read saw.
plain=$(sed -n 's/^read frames (CRC checked).* \([0-9][0-9]*\) records.*/\1/p' "$D/out")
zstd=$(sed -n 's/^read zstd frames (CRC checked).* \([0-9][0-9]*\) records.*/\1/p' "$D/out")
[ -n "$plain" ] && [ "$plain" -gt 0 ] || fail "no plain read count: $(cat "$D/out")"
[ "$plain" = "$zstd" ] || fail "plain read $plain records, compressed $zstd"
[ "$(ls "$D" | tr '\n' ' ')" = "err out " ] || fail "scratch left behind: $(ls "$D")"

for args in "--seconds x" "--seconds 0" "--records -1" "--bogus" "extra"; do
	set +e
	# shellcheck disable=SC2086
	"$BA" --dir "$D" $args >/dev/null 2>"$D/err"
	rc=$?
	set -e
	[ $rc = 2 ] || fail "$args: exit $rc, want 2"
	[ "$(wc -l <"$D/err")" = 1 ] || fail "$args: not one line: $(cat "$D/err")"
	grep -q '(see --help)' "$D/err" || fail "$args: $(cat "$D/err")"
done
set +e
"$BA" --dir "$D/no/such/dir" --seconds 1 >/dev/null 2>"$D/err"
rc=$?
set -e
[ $rc = 1 ] || fail "missing --dir: exit $rc, want 1"
"$BA" --help | grep -q '^Exit status (docs/tools.md):' || fail "--help has no exit-status block"
echo "bench-archive: ok"
