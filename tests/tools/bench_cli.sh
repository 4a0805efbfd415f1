#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/tools/bench_cli.sh - every benchmark program under bench/ keeps
# docs/tools.md's command-line vocabulary ("Exit status", "Messages"):
#   - --help exits 0 and its text (on stdout) has the exit-status list;
#   - --version and -V print "PROGRAM VERSION" on stdout and exit 0, as the
#     product programs do (vigil_cli_version, common/cli.h);
#   - an unknown flag exits 2 with one line on stderr ending "(see --help)";
#   - a stray argument exits 2 the same way. No benchmark program takes a
#     positional argument (each input is a flag: --dir, --csv, --data,
#     --model, --rules, --url, --listen), so every one is checked;
#   - every script under bench/ that can be run (executable) prints its
#     header, starting with its own path, on --help and exits 0.
# Nothing is measured: each case stops at the command line.
#
#   bench_cli.sh [PROGRAM...]   (default: every one under $VIGIL_BUILD_ROOT/bench)
set -eu

B=${VIGIL_BUILD_ROOT:?VIGIL_BUILD_ROOT not set}
S=${VIGIL_SOURCE_ROOT:?VIGIL_SOURCE_ROOT not set}
VERSION=$(sed -n "s/^ *version *: *'\([^']*\)',\$/\1/p" "$S/meson.build" | head -1)
D=$(mktemp -d /tmp/vigil-bench-cli-XXXXXX)
trap 'rm -rf "$D"' EXIT INT TERM
fail() { echo "bench_cli: $*" >&2; exit 1; }
[ -n "$VERSION" ] || fail "no version in $S/meson.build"

if [ $# -eq 0 ]; then
	set -- "$B/bench/server/vigil-echo" "$B/bench/server/vigil-loadgen" \
		"$B/bench/server/bench-pipeline" "$B/bench/archive/bench-archive" \
		"$B/bench/store/bench-store" "$B/bench/store/bench-gencheck" \
		"$B/bench/store/bench-omap" \
		"$B/bench/batch/bench-batch" "$B/bench/batch/bench-train" \
		"$B/bench/clients/bench-clients" "$B/bench/console/bench-console" \
		"$B/bench/model/bench-model" "$B/bench/replay/bench-replay" \
		"$B/bench/rules/bench-rules" "$B/bench/common/bench-ip"
fi

# usage_error NAME CASE PROGRAM ARGS...: exit 2, one line on stderr, the
# program's name first and "(see --help)" last, nothing on stdout.
usage_error() {
	name=$1 what=$2
	shift 2
	set +e
	"$@" >"$D/out" 2>"$D/err"
	rc=$?
	set -e
	[ $rc -eq 2 ] || fail "$name $what: exit $rc, want 2: $(cat "$D/err")"
	[ "$(wc -l <"$D/err")" -eq 1 ] || fail "$name $what: not one line on stderr: $(cat "$D/err")"
	grep -q "^$name: .*(see --help)\$" "$D/err" || fail "$name $what: $(cat "$D/err")"
	[ ! -s "$D/out" ] || fail "$name $what: wrote to stdout: $(cat "$D/out")"
}

n=0
for p in "$@"; do
	[ -x "$p" ] || fail "$p: not built"
	name=${p##*/}
	set +e
	"$p" --help >"$D/out" 2>"$D/err"
	rc=$?
	set -e
	[ $rc -eq 0 ] || fail "$name --help: exit $rc: $(cat "$D/err")"
	grep -qx 'Exit status (docs/tools.md):' "$D/out" ||
		fail "$name --help: no exit-status list on stdout"
	[ ! -s "$D/err" ] || fail "$name --help: wrote to stderr: $(cat "$D/err")"
	for v in --version -V; do
		set +e
		"$p" "$v" >"$D/out" 2>"$D/err"
		rc=$?
		set -e
		[ $rc -eq 0 ] && [ "$(cat "$D/out")" = "$name $VERSION" ] && [ ! -s "$D/err" ] ||
			fail "$name $v: exit $rc, '$(cat "$D/out" "$D/err")' (want '$name $VERSION')"
	done
	usage_error "$name" --no-such-flag "$p" --no-such-flag
	usage_error "$name" "stray argument" "$p" stray-argument
	n=$((n + 1))
done
# an address that is no URL is a usage error, not nng's "Invalid argument"
# (common/cli.h's vigil_cli_url_ok, before nng sees it), naming the flag
usage_error vigil-echo "--listen HOST:PORT" "$B/bench/server/vigil-echo" --listen 127.0.0.1:1
grep -qF -- '--listen: "127.0.0.1:1" is not a URL: write tcp://HOST:PORT or ipc:///PATH' "$D/err" ||
	fail "vigil-echo --listen HOST:PORT: $(cat "$D/err")"
usage_error vigil-loadgen "--url HOST:PORT" "$B/bench/server/vigil-loadgen" --url 127.0.0.1:1
grep -qF -- '--url: "127.0.0.1:1" is not a URL: write tcp://HOST:PORT or ipc:///PATH' "$D/err" ||
	fail "vigil-loadgen --url HOST:PORT: $(cat "$D/err")"
usage_error vigil-loadgen "--url unknown scheme" "$B/bench/server/vigil-loadgen" --url foo://x
usage_error bench-clients "--url HOST:PORT" "$B/bench/clients/bench-clients" --url 127.0.0.1:1
grep -qF -- '--url: "127.0.0.1:1" is not a URL: write tcp://HOST:PORT or ipc:///PATH' "$D/err" ||
	fail "bench-clients --url HOST:PORT: $(cat "$D/err")"
# bench-omap on tiny tables: each hand-written structure and uthash agree
# (it exits 1 if they do not), and every figure is printed.
omap="$B/bench/store/bench-omap"
if [ -x "$omap" ]; then
	"$omap" --keys 100 --lookups 100 --entities 4 --window 10 --runs 1 --sets 100 \
		>"$D/out" 2>"$D/err" || fail "bench-omap small run: $(cat "$D/err")"
	for w in 'omap ' 'dmap ' 'vel_set '; do
		grep -q "^$w *[0-9.]* ns " "$D/out" || fail "bench-omap: no '$w' figure: $(cat "$D/out")"
	done
	[ "$(grep -c '^uthash ' "$D/out")" -eq 3 ] || fail "bench-omap: not 3 uthash figures"
fi
# dump-vectors takes positional arguments (not a benchmark: an export for
# model_lab.py), but has --help and --version as the others
dv="$B/bench/replay/dump-vectors"
if [ -x "$dv" ]; then
	out=$("$dv" --version 2>&1) && [ "$out" = "dump-vectors $VERSION" ] ||
		fail "dump-vectors --version: '$out' (want 'dump-vectors $VERSION')"
fi
# the scripts: --help is the header comment, nothing run
ns=0
for f in $(cd "$S" && find bench -name '*.sh' -perm -u+x | sort); do
	rc=0
	"$S/$f" --help >"$D/out" 2>"$D/err" || rc=$?
	[ $rc -eq 0 ] || fail "$f --help: exit $rc: $(head -2 "$D/err")"
	[ ! -s "$D/err" ] || fail "$f --help: wrote to stderr: $(head -2 "$D/err")"
	head -1 "$D/out" | grep -q "^$f - " || fail "$f --help: not its header: $(head -1 "$D/out")"
	ns=$((ns + 1))
done
[ $ns -ge 10 ] || fail "only $ns scripts under bench/"
echo "bench_cli: $n programs and $ns scripts ok"
