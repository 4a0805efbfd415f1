#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/server/ship.sh - archive shipping ([store] ship_command, server/ship.c,
# deploy/vigil-ship; docs/vigild.md, "Archive shipping"): vigild with 1 MiB
# segments and a command that fails while a flag file exists. Then:
#   - failing: sealed segments are counted unshipped (metrics, /healthz),
#     the failure is counted, logged once with the file and exit status,
#     nothing is in the shared directory;
#   - a closed segment without its index yet: nothing after it is shipped;
#   - once the command succeeds: every sealed segment and its index are in
#     the shared directory, byte for byte, each with a SHA-256 sidecar that
#     sha256sum -c accepts, no temporary file left, unshipped 0, and the
#     shipped directory reads (vigil-archive verify) as a whole archive;
#   - after a restart nothing is shipped again (<datadir>/ship-state), and
#     segments sealed since are; a damaged ship-state stops the start with
#     its path and line;
#   - vigil-ship itself: a file already there with the same content is
#     success, with other content an error that leaves it alone; a run
#     killed with SIGKILL after its copy (as vigild kills one at stop or
#     over ship_timeout_s) leaves its hidden temporary, which the next run
#     of that file removes;
#   - a ship_command with an unknown %-escape is refused at start.
set -eu
VT_NAME=ship
# shellcheck source=tests/lib/vt.sh
. "${VIGIL_SOURCE_ROOT:?VIGIL_SOURCE_ROOT not set}/tests/lib/vt.sh"
VIGILD="$B/server/vigild"
SCORE="$B/tools/score/vigil-score"
ARCH="$B/tools/archive/vigil-archive"
SHIP="$S/deploy/vigil-ship"

metric() { # metric NAME: its value in $D/metrics
	curl -sf "http://127.0.0.1:$AP/metrics" >"$D/metrics" || fail "/metrics unreachable"
	sed -n "s/^$1 //p" "$D/metrics"
}
wait_metric() { # wait_metric NAME VALUE WHAT
	i=0
	until [ "$(metric "$1")" = "$2" ]; do
		i=$((i + 1))
		[ "$i" -lt 300 ] || fail "$3: $1 is $(metric "$1"), want $2 after 30 s"
		kill -0 "$PID" 2>/dev/null || fail "vigild exited"
		sleep 0.1
	done
}
start() {
	"$VIGILD" --config "$D/vigild.ini" --data "$D/data" --listen "ipc://$D/v.ipc" \
	    --admin "127.0.0.1:$AP" --rules "$S/rules/default.rules" >>"$D/vigild.log" 2>&1 &
	PID=$!
	vt_wait_log "vigild: ready" "ready line"
}
stop() {
	kill -TERM "$PID"
	st=0
	wait "$PID" || st=$?
	PID=
	[ "$st" -eq 0 ] || fail "vigild exited $st after SIGTERM"
}
traffic() { # traffic FIRST COUNT
	python3 - "$1" "$2" >"$D/t.jsonl" <<'PY'
import json, sys, time
first, n = int(sys.argv[1]), int(sys.argv[2])
base = int(time.time() * 1000) - 3600 * 1000
for i in range(first, first + n):
    print(json.dumps({"txn_id": f"ship-{i:07d}-{'x' * 40}", "card_id": f"card-{i % 97}",
                      "merchant_id": f"merchant-{i % 13}", "terminal_id": f"t-{i % 7}",
                      "amount": "12.50", "currency": "EUR", "device_id": f"dev-{i % 31}",
                      "ip": "192.0.2.7", "event_time_ms": base + i}))
PY
	"$SCORE" -q -s "ipc://$D/v.ipc" <"$D/t.jsonl" >"$D/send.out" 2>&1 || fail "vigil-score: $(tail -3 "$D/send.out")"
	ok=$(grep -c '"status":"OK"' "$D/send.out" || true)
	[ "$ok" -eq "$2" ] || fail "$ok of $2 scored OK"
}
count() { find "$1" -maxdepth 1 -name "$2" | wc -l; } # count DIR PATTERN
sealed() { count "$D/data/archive" 'seg-*.idx'; }
lastseq() { # the sequence number of the last sealed segment
	find "$D/data/archive" -maxdepth 1 -name 'seg-*.idx' | sort | tail -1 |
	    sed 's/.*seg-[0-9]*-0*\([0-9]*\)\.idx$/\1/'
}

# ---- a bad template is refused with the key and the reason ----
AP=$(vt_free_port)
printf '%s\n' '[store]' 'ship_command = cp %p /x/%q' >"$D/bad.ini"
expect 2 'ship_command.*a % not followed by p' "$VIGILD" --config "$D/bad.ini" --check-config --rules "$S/rules/default.rules"

# ---- failing while $D/fail exists ----
touch "$D/fail"
cat >"$D/vigild.ini" <<EOT
[store]
segment_max_mb = 1
compress = false
ship_command = test ! -e '$D/fail' && '$SHIP' %p '$D/shared/'%r
ship_retry_max_s = 1
EOT
# %r: [cluster] replica, or the host name without a cluster
R=$(uname -n)
"$VIGILD" --config "$D/vigild.ini" --data "$D/data" --listen "ipc://$D/v.ipc" \
    --admin "127.0.0.1:$AP" --rules "$S/rules/default.rules" >>"$D/vigild.log" 2>&1 &
PID=$!
vt_wait_log "vigild: ready" "ready line"
vt_wait_log "archive shipping: on, as replica $R, segments after 0" "shipping start line"
N=0
while [ "$(sealed)" -lt 2 ]; do
	traffic "$N" 2000
	N=$((N + 2000))
	[ "$N" -le 40000 ] || fail "no 2 sealed segments after $N transactions"
done
SEALED=$(sealed)
echo "ship: $N transactions, $SEALED sealed segment(s)"
vt_wait_log "archive shipping: ship_command for seg-.*\.log: exit 1; retrying" "failure line"
wait_metric vigil_archive_unshipped_segments "$SEALED" "failing"
[ "$(metric vigil_archive_ship_failing)" = 1 ] || fail "not failing in /metrics"
[ "$(metric vigil_archive_unshipped_bytes)" -gt 1000000 ] || fail "unshipped bytes: $(metric vigil_archive_unshipped_bytes)"
[ "$(grep -c 'archive shipping: ship_command' "$D/vigild.log")" = 1 ] ||
	fail "the same failure logged more than once"
curl -sf "http://127.0.0.1:$AP/healthz" >"$D/health.json"
python3 - "$D/health.json" "$SEALED" <<'PY' || fail "/healthz: $(cat "$D/health.json")"
import json, sys
h = json.load(open(sys.argv[1]))["archive_ship"]
assert h["failing"] and h["unshipped_segments"] == int(sys.argv[2]), h
assert "exit 1" in h["last_error"], h
PY
[ ! -e "$D/shared/$R" ] || [ -z "$(ls -A "$D/shared/$R")" ] || fail "files shipped while failing"

# ---- a closed segment whose index is not written yet (a failed write
# that the archive retries): nothing sealed after it is shipped meanwhile,
# or shipping would move past it for good ----
FIRST=$(find "$D/data/archive" -maxdepth 1 -name 'seg-*.idx' | sort | head -1)
mv "$FIRST" "$FIRST.held"
rm "$D/fail"
vt_wait_log "archive shipping: segment [0-9]* is closed without its index yet" "index gap line"
[ ! -e "$D/shared/$R" ] || [ -z "$(ls -A "$D/shared/$R")" ] ||
	fail "shipped past a segment without its index: $(ls -A "$D/shared/$R")"
mv "$FIRST.held" "$FIRST"

# ---- the command succeeds: everything sealed arrives whole ----
wait_metric vigil_archive_unshipped_segments 0 "after the failure ended"
vt_wait_log "archive shipping: ok again" "ok-again line"
[ "$(metric vigil_archive_ship_failing)" = 0 ] || fail "still failing"
for f in "$D"/data/archive/seg-*.idx; do
	b=$(basename "$f" .idx)
	cmp "$f" "$D/shared/$R/$b.idx" || fail "$b.idx not shipped whole"
	cmp "$D/data/archive/$b.log" "$D/shared/$R/$b.log" || fail "$b.log not shipped whole"
done
(cd "$D/shared/$R" && sha256sum -c --quiet ./*.sha256) || fail "sha256 sidecars do not verify"
[ -z "$(find "$D/shared/$R" -name '.*')" ] || fail "temporary files left: $(ls -A "$D/shared/$R")"
[ "$(count "$D/shared/$R" 'seg-*.log')" = "$SEALED" ] || fail "not $SEALED segments shipped"
LAST=$(lastseq)
grep -q "^shipped_through $LAST\$" "$D/data/ship-state" || fail "ship-state: $(cat "$D/data/ship-state"), want $LAST"
expect 0 ': OK$' "$ARCH" verify "$D/shared/$R"

# ---- restart: nothing shipped again; a new sealed segment is ----
stop
touch "$D/shared/$R/marker"
start
vt_wait_log "archive shipping: on, as replica $R, segments after $LAST" "restart line"
traffic "$N" 2000
N=$((N + 2000))
[ "$(sealed)" -gt "$SEALED" ] || fail "no segment sealed after 2000 more transactions"
NEWLAST=$(lastseq)
wait_metric vigil_archive_shipped_through "$NEWLAST" "after restart"
[ "$(metric vigil_archive_unshipped_segments)" = 0 ] || fail "unshipped after restart"
# only what was sealed since: nothing shipped twice
[ "$(metric vigil_archive_shipped_segments_total)" = $(($(sealed) - SEALED)) ] ||
	fail "shipped $(metric vigil_archive_shipped_segments_total) after restart, want $(($(sealed) - SEALED))"
[ "$(count "$D/shared/$R" 'seg-*.log')" = "$(sealed)" ] || fail "new segment not shipped"
stop

# ---- a damaged ship-state (or a FIFO) stops the start, naming the file and line ----
cp "$D/data/ship-state" "$D/ship-state.good"
for bad in x -1 '12 junk' 18446744073709551616; do
	printf 'vigil-ship-state 1\nshipped_through %s\n' "$bad" >"$D/data/ship-state"
	expect 1 "ship-state:2: not a ship state file" timeout 60 "$VIGILD" --config "$D/vigild.ini" \
	    --data "$D/data" --listen "ipc://$D/v.ipc" --admin "127.0.0.1:$AP" \
	    --rules "$S/rules/default.rules"
done
: >"$D/data/ship-state"
expect 1 "ship-state:1: not a ship state file" timeout 60 "$VIGILD" --config "$D/vigild.ini" \
    --data "$D/data" --listen "ipc://$D/v.ipc" --admin "127.0.0.1:$AP" --rules "$S/rules/default.rules"
rm "$D/data/ship-state"
mkfifo "$D/data/ship-state" # refused, not waited on
expect 1 "ship-state: not a regular file" timeout 60 "$VIGILD" --config "$D/vigild.ini" \
    --data "$D/data" --listen "ipc://$D/v.ipc" --admin "127.0.0.1:$AP" --rules "$S/rules/default.rules"
rm "$D/data/ship-state"
cp "$D/ship-state.good" "$D/data/ship-state"

# ---- vigil-ship on its own ----
f=$(ls "$D"/data/archive/seg-*.log | head -1)
"$SHIP" "$f" "$D/shared/$R" || fail "vigil-ship of a file already shipped (same content) failed"
printf 'first' >"$D/dup.log"
"$SHIP" "$D/dup.log" "$D/shared/$R" || fail "vigil-ship dup.log failed"
printf 'changed' >"$D/dup.log"
expect 1 'exists with other content' "$SHIP" "$D/dup.log" "$D/shared/$R"
[ "$(cat "$D/shared/$R/dup.log")" = first ] || fail "vigil-ship overwrote a different file"
expect 2 'usage' "$SHIP" only-one
mkdir "$D/killbin"
printf '#!/bin/sh\nkill -KILL "$PPID"\n' >"$D/killbin/sync"
chmod +x "$D/killbin/sync"
printf 'killed' >"$D/killed.log"
st=0
PATH="$D/killbin:$PATH" "$SHIP" "$D/killed.log" "$D/shared/$R" 2>/dev/null || st=$?
[ "$st" -eq 137 ] || fail "vigil-ship under a sync that kills it: exit $st, want 137 (SIGKILL)"
[ -n "$(find "$D/shared/$R" -name '.killed.log.tmp.*')" ] ||
	fail "the killed vigil-ship left no temporary: the check below proves nothing"
"$SHIP" "$D/killed.log" "$D/shared/$R" || fail "vigil-ship after a killed run failed"
left=$(find "$D/shared/$R" -name '.killed.log.tmp.*')
[ -z "$left" ] || fail "vigil-ship left a killed run's temporary: $left"
[ "$(cat "$D/shared/$R/killed.log")" = killed ] || fail "killed.log not shipped after the killed run"
echo "ship: OK ($(count "$D/shared/$R" 'seg-*.log') segments shipped)"
