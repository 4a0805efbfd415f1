#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/server/sched_policy.sh - vigild runs every thread, nng's included,
# under SCHED_BATCH (server/tune.c); [server] scheduling_policy = normal
# keeps SCHED_OTHER; a process started under another policy (here
# SCHED_IDLE, which needs no privilege) is left as it is; a bad value is a
# configuration error naming the key. Reads each thread's policy from
# /proc/PID/task/TID/stat (field 41), readable by anyone.
set -eu

VT_NAME=sched-policy
VT_LOG=vigild.log
# shellcheck source=tests/lib/vt.sh
. "${VIGIL_SOURCE_ROOT:?VIGIL_SOURCE_ROOT not set}/tests/lib/vt.sh"
V="$B/server/vigild"
R="$S/tests/server/rules/velocity.rules"

# run INI [PREFIX...]: starts vigild with config INI (under PREFIX, e.g.
# chrt), waits for its start-up, writes each thread's policy to $D/pol
# (one line a thread), stops it
run() {
	ini=$1
	shift
	# the previous run's log would satisfy vt_wait_log before this one starts
	rm -rf "$D/data" "$D/pol" "$D/${VT_LOG:?}"
	mkdir "$D/data"
	"$@" "$V" --config "$ini" --data "$D/data" --listen "ipc://$D/data/v.sock" \
		--admin off --rules "$R" 2>"$D/$VT_LOG" &
	PID=$!
	vt_wait_log "rules: loaded" "rules loaded"
	for t in /proc/"$PID"/task/*; do
		# comm may hold spaces ("nng:task"): the fields after ") "
		sed 's/^.*) //' "$t/stat" | awk '{ print $39 }'
	done >"$D/pol"
	kill -TERM "$PID"
	wait "$PID" || fail "vigild exited with status $?"
	PID=
}

# policies WANT WHAT: every thread's policy is WANT, and there are several
policies() {
	n=$(wc -l <"$D/pol")
	[ "$n" -ge 4 ] || fail "$2: only $n thread(s)"
	other=$(grep -cvx "$1" "$D/pol" || true)
	[ "$other" -eq 0 ] || fail "$2: $other of $n threads not under policy $1: $(sort "$D/pol" | uniq -c | tr '\n' ' ')"
}

printf '[server]\n' >"$D/default.ini"
run "$D/default.ini" env
policies 3 "default (SCHED_BATCH = 3)"

printf '[server]\nscheduling_policy = normal\n' >"$D/normal.ini"
run "$D/normal.ini" env
policies 0 "scheduling_policy = normal (SCHED_OTHER = 0)"

run "$D/default.ini" chrt -i 0
policies 5 "started under SCHED_IDLE (5)"

printf '[server]\nscheduling_policy = fast\n' >"$D/bad.ini"
rc=0
"$V" --config "$D/bad.ini" --check-config >"$D/out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "scheduling_policy = fast: exit $rc, not 2"
grep -q "scheduling_policy" "$D/out" || fail "scheduling_policy = fast: the error does not name the key: $(cat "$D/out")"

vt_done "ok: SCHED_BATCH by default, normal on request, the operator's policy kept"
