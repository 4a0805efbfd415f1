#!/bin/sh
# SPDX-License-Identifier: MIT
# Opens vigil-console on the demo's data (after deploy/demo.sh): starts
# vigild on the demo directory (so verdicts are archived and rule deploys
# are reloaded) with a copy of the rule file, then vigil-console, and
# prints the address and a token. Ctrl-C stops both.
#
# usage: console/demo-console.sh [BUILDDIR]     (default: build)
# Environment: DEMO_DATA (./demo-data), CONSOLE_LISTEN (127.0.0.1:9480).
set -eu

cd "$(dirname "$0")/.."
root=$(pwd)
build=${1:-build}
data=${DEMO_DATA:-$root/demo-data}
listen=${CONSOLE_LISTEN:-127.0.0.1:9480}
work=$data/console

die() {
	echo "demo-console: $*" >&2
	exit 1
}

[ -x "$build/console/vigil-console" ] || die "$build/console/vigil-console not found (run ./deploy/build.sh)"
[ -x "$build/server/vigild" ] || die "$build/server/vigild not found (run ./deploy/build.sh)"
[ -d "$data/archive" ] || die "no demo data in $data (run ./deploy/demo.sh first)"

mkdir -p "$work/rules" "$work/state"
# the console edits this copy, never the repository's rules/
if [ ! -f "$work/rules/default.rules" ]; then
	cp "$root/rules/default.rules" "$root/rules/blocked_cards.txt" "$root/rules/test_bins.txt" \
		"$work/rules/"
fi
token=demo-analyst-token-0001
printf 'demo admin %s\n' "$token" >"$work/tokens"
chmod 600 "$work/tokens" # the console refuses a tokens file others can read

vpid=""
cpid=""
cleanup() {
	for p in $cpid $vpid; do
		if kill -0 "$p" 2>/dev/null; then
			kill -TERM "$p" 2>/dev/null || true
			wait "$p" 2>/dev/null || true
		fi
	done
}
trap cleanup EXIT
trap 'exit 0' INT TERM

sock="ipc://$data/vigild.sock"
"$build/server/vigild" --data "$data" --listen "$sock" --admin off \
	--rules "$work/rules/default.rules" --fsync interval 2>>"$work/vigild.log" &
vpid=$!
i=0
while [ ! -S "$data/vigild.sock" ]; do
	kill -0 "$vpid" 2>/dev/null || die "vigild exited: $(tail -n 1 "$work/vigild.log" 2>/dev/null)"
	i=$((i + 1))
	[ $i -le 600 ] || die "vigild did not listen within 60 s"
	sleep 0.1
done
"$build/console/vigil-console" --data "$data" --rules "$work/rules/default.rules" \
	--tokens "$work/tokens" --state "$work/state" --server "$sock" --listen "$listen" \
	--replay "$build/tools/replay/vigil-replay" &
cpid=$!
echo "demo-console: open http://$listen/ and sign in with the token $token (Ctrl-C stops)"
wait "$cpid"
