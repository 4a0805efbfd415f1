#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/tools/replay_cli.sh - vigil-replay's command line refuses what it
# would ignore: a flag of --nightly or --server given without it, an empty
# --from/--to range, and a TLS file that cannot be read is a usage error
# (2) as in vigil-score, not a failed run (1). Each error is one line.
# Usage: replay_cli.sh PATH/TO/vigil-replay SOURCE_ROOT
set -u
P=$1
ROOT=$2
CSV=$ROOT/tests/tools/data/asof.csv
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0

fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}

# expect WANT_RC WANT_STDERR ARGS...: the exit code, and stderr exactly one line
expect() {
	want=$1
	line=$2
	shift 2
	"$P" "$@" >"$T/out" 2>"$T/err"
	rc=$?
	[ "$rc" = "$want" ] || fail "exit $rc, want $want: $* ($(head -c 300 "$T/err"))"
	[ "$(cat "$T/err")" = "$line" ] || fail "$*: stderr is not '$line': $(head -c 400 "$T/err")"
}

# flags only --nightly reads
for f in "--work $T/w" --keep-work --no-model; do
	# shellcheck disable=SC2086 # the words are the test
	expect 2 "vigil-replay: ${f%% *} goes with --nightly (see --help)" --csv "$CSV" $f
done
[ -e "$T/w" ] && fail "--work without --nightly made its directory"
for f in --data --rebuild; do
	expect 2 "vigil-replay: $f goes with --nightly (see --help)" --csv "$CSV" \
	    --server tcp://127.0.0.1:1 "$f" "$T/x"
done
# flags only --server reads
for f in --tls-ca --tls-cert --tls-key --tls-server-name; do
	expect 2 "vigil-replay: $f goes with --server (see --help)" --csv "$CSV" "$f" x
done
# an address without its scheme: one line naming the flag, not nng's
# "Invalid argument" at the dial (common/cli.h, vigil_cli_url_ok)
expect 2 "vigil-replay: --server: \"127.0.0.1:1\" is not a URL: write tcp://HOST:PORT, tls+tcp://HOST:PORT or ipc:///PATH (see --help)" \
    --csv "$CSV" --server 127.0.0.1:1
# an empty event-time range processed nothing and said nothing
mkdir -p "$T/d/archive"
expect 2 "vigil-replay: --from 2026-11-22 is not before --to 2026-11-20: the range [from, to) is empty (see --help)" \
    --archive "$T/d" --from 2026-11-22 --to 2026-11-20
expect 2 "vigil-replay: --from 2026-11-20 is not before --to 2026-11-20: the range [from, to) is empty (see --help)" \
    --archive "$T/d" --from 2026-11-20 --to 2026-11-20
expect 2 "vigil-replay: --measure-from 2026-11-22 is not before --to 2026-11-20: nothing would be measured (see --help)" \
    --archive "$T/d" --to 2026-11-20 --measure-from 2026-11-22
# a CA that does not exist or is not PEM: fix the input (2), as vigil-score
# and vigil-console say; no server needs to run for it
printf 'not a certificate\n' >"$T/junk.pem"
for ca in "$T/none.pem" "$T/junk.pem"; do
	"$P" --csv "$CSV" --server tls+tcp://127.0.0.1:1 --tls-ca "$ca" -q >"$T/out" 2>"$T/err"
	rc=$?
	[ "$rc" = 2 ] || fail "--tls-ca $ca: exit $rc, want 2 ($(head -c 300 "$T/err"))"
	[ "$(wc -l <"$T/err")" = 1 ] || fail "--tls-ca $ca: not one line: $(cat "$T/err")"
	grep -q "^vigil-replay: .*$ca" "$T/err" || fail "--tls-ca $ca: the file is not named: $(cat "$T/err")"
done
# a server that cannot be reached stays a failed run (1)
expect 1 "vigil-replay: no server reachable at tcp://127.0.0.1:1 within 3 s" \
    --csv "$CSV" --server tcp://127.0.0.1:1 -q
# --summary FILE that cannot be written fails before the run, with the reason
expect 1 "vigil-replay: --summary $T/none/s.json: No such file or directory" \
    --csv "$CSV" -q --summary "$T/none/s.json"
[ -s "$T/out" ] && fail "--summary into a missing directory: the run went on: $(head -c 200 "$T/out")"
# the compare section of the text summary says n/a for an undefined measure
# (no alert: precision 0/0), as the summary above it does, never "nan"
printf 'version "never"\nband review = 30\nband decline = 60\nrule never {\n  when amount > 1000000\n  score 10\n  reason "never"\n}\n' >"$T/never.rules"
"$P" --csv "$CSV" -r "$T/never.rules" --compare "$ROOT/tests/tools/data/card_only.rules" \
    >"$T/out" 2>"$T/err" || fail "--compare: exit $? ($(head -c 300 "$T/err"))"
grep -q '^  precision n/a -> ' "$T/out" || fail "--compare: undefined precision not n/a: $(grep precision "$T/out")"
grep -qi 'nan' "$T/out" && fail "--compare: the text summary prints nan: $(grep -i nan "$T/out")"
# --help names each flag that this test refuses alone
"$P" --help >"$T/out" || fail "--help: exit $?"
for f in --work --keep-work --no-model --tls-ca --tls-cert --tls-key --tls-server-name --from --to; do
	grep -q -- "$f" "$T/out" || fail "--help does not name $f"
done

if [ "$fails" -ne 0 ]; then
	echo "$fails failures" >&2
	exit 1
fi
echo "vigil-replay: all CLI checks passed"
