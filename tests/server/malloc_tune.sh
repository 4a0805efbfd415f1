#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/server/malloc_tune.sh - vigild sets glibc's allocator tunables for
# itself (server/tune.c): with [server] huge_pages = on it runs again with
# GLIBC_TUNABLES naming glibc.malloc.hugetlb=1, as the same process id;
# with off it does not; with auto (the default) it does unless free page
# reporting is on, and its start-up line "memory:" says which and why. An
# operator's GLIBC_TUNABLES is kept, first, and one that already names
# glibc.malloc.hugetlb is left alone.
# Reads /proc/PID/environ, the environment the process was executed with:
# vigild is not dumpable, so that needs root; skipped (77) otherwise.
set -eu

VT_NAME=malloc-tune
VT_LOG=vigild.log
# shellcheck source=tests/lib/vt.sh
. "${VIGIL_SOURCE_ROOT:?VIGIL_SOURCE_ROOT not set}/tests/lib/vt.sh"
V="$B/server/vigild"
R="$S/tests/server/rules/velocity.rules"

if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: not root: vigild's /proc/PID/environ is refused to its own user"
	exit 77
fi

# run GLIBC_TUNABLES-or-"-" [huge_pages]: starts vigild (with that
# [server] huge_pages, default auto), waits for its start-up line, leaves
# its executed environment in $D/env, stops it
run() {
	printf '[server]\nhuge_pages = %s\n' "${2:-auto}" >"$D/tune.ini"
	# the previous run's log would satisfy vt_wait_log before this one starts
	rm -rf "$D/data" "$D/env" "$D/${VT_LOG:?}"
	mkdir "$D/data"
	if [ "$1" = - ]; then
		env -u GLIBC_TUNABLES -u VIGIL_MALLOC_TUNED "$V" --config "$D/tune.ini" --data "$D/data" \
			--listen "ipc://$D/data/v.sock" --admin off --rules "$R" 2>"$D/$VT_LOG" &
	else
		env -u VIGIL_MALLOC_TUNED GLIBC_TUNABLES="$1" "$V" --config "$D/tune.ini" --data "$D/data" \
			--listen "ipc://$D/data/v.sock" --admin off --rules "$R" 2>"$D/$VT_LOG" &
	fi
	PID=$!
	vt_wait_log "rules: loaded" "rules loaded"
	# the process started is the one that serves: same id after the exec
	tr '\0' '\n' <"/proc/$PID/environ" >"$D/env"
	# and keeps its name (ps, pgrep): what /proc/self/exe would not
	[ "$(cat "/proc/$PID/comm")" = vigild ] || fail "process name $(cat "/proc/$PID/comm"), not vigild"
	grep -q "^vigild: starting" "$D/$VT_LOG" || fail "no start-up line"
	[ "$(grep -c "^vigild: starting" "$D/$VT_LOG")" -eq 1 ] || fail "started more than once"
	kill -TERM "$PID"
	wait "$PID" || fail "vigild exited with status $?"
	PID=
}

tuned() { # whether this start was executed again with the tunables
	grep -q "^VIGIL_MALLOC_TUNED=huge pages (" "$D/env"
}
memline() { # the start-up line that says which pages, and why
	grep "^vigild: memory: " "$D/$VT_LOG" || fail "no memory: line in $(cat "$D/$VT_LOG")"
}

run - on
tuned || fail "huge_pages = on: not executed again with the tunables"
grep -q "^GLIBC_TUNABLES=glibc.malloc.hugetlb=1" "$D/env" ||
	fail "huge_pages = on: GLIBC_TUNABLES is $(grep GLIBC_TUNABLES "$D/env" || echo unset)"
[ "$(memline)" = "vigild: memory: huge pages (huge_pages = on)" ] ||
	fail "huge_pages = on: $(memline)"

run - off
if tuned || grep -q "^GLIBC_TUNABLES=" "$D/env"; then
	fail "huge_pages = off: executed again or GLIBC_TUNABLES set"
fi
[ "$(memline)" = "vigild: memory: 4 KiB pages (huge_pages = off)" ] ||
	fail "huge_pages = off: $(memline)"

# auto: the choice follows the machine (a VM's balloon reporting free
# pages: test_tune.c), and the line says it as the process was started
run -
case "$(memline)" in
"vigild: memory: huge pages (huge_pages = auto: no free page reporting)")
	tuned || fail "auto chose huge pages but was not executed again" ;;
"vigild: memory: 4 KiB pages (huge_pages = auto: free page reporting is on"*)
	if tuned || grep -q "^GLIBC_TUNABLES=" "$D/env"; then
		fail "auto chose 4 KiB pages but set the tunables"
	fi ;;
*) fail "auto: $(memline)" ;;
esac

run "glibc.malloc.arena_max=4" on
tuned || fail "arena_max set: not executed again"
# glibc parses the variable in place, so only its first tunable shows: the operator's
grep -q "^GLIBC_TUNABLES=glibc.malloc.arena_max=4" "$D/env" ||
	fail "arena_max set: the operator's tunable is not kept first"

run "glibc.malloc.hugetlb=0" on
if grep -q "VIGIL_MALLOC_TUNED" "$D/env"; then
	fail "hugetlb=0: executed again although the operator chose"
fi
grep -qx "GLIBC_TUNABLES=glibc.malloc.hugetlb=0" "$D/env" ||
	fail "hugetlb=0: GLIBC_TUNABLES is $(grep GLIBC_TUNABLES "$D/env" || echo unset)"
memline | grep -q "kept as given" || fail "hugetlb=0: $(memline)"

vt_done "ok: huge pages on, off and auto; tunables set once, the operator's kept"
