#!/bin/sh
# SPDX-License-Identifier: MIT
# deploy/vigil-install-generation against two installs of the same night at
# once (the merge job's push and a replica's pull at vigild's start): the
# second waits for the first (features/INSTALL.lock), says so in one line,
# then finds the generation current; no stray copy inside gen-N, no
# temporary left. Made certain: install A's first sync (between its copy
# and its rename) starts install B and goes on only once B says it waits.
# Then an install stopped by SIGTERM during its copy leaves no temporary
# copy, and one killed by SIGKILL during its copy (its cp held on a FIFO)
# leaves one that the next install, which waits for that cp to end,
# removes before it installs the generation whole. Then busy locks (exit
# 3), and a push as root into a replica of another user.
set -u
build=${VIGIL_BUILD_ROOT:?VIGIL_BUILD_ROOT not set}
src=$(cd "$(dirname "$0")/../.." && pwd)
R="$build/batch/vigil-rebuild"
I="$src/deploy/vigil-install-generation"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

mkdir -p "$T/build/archive" "$T/rep" "$T/bin"
OMP_WAIT_POLICY=passive "$R" -d "$T/build" -q --as-of 2026-03-01 --no-model 2>/dev/null ||
	{ echo "FAIL: no generation to install"; exit 1; }
real_sync=$(command -v sync)
# wait_line FILE PATTERN WHAT: waits (60 s at most) for a line of FILE
# matching PATTERN; fails (WHAT) if none comes
wait_line() {
	i=0
	until grep -q "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ "$i" -lt 600 ] || { fail "$3: no line '$2' in $1 after 60 s: $(cat "$1" 2>/dev/null)"; return 1; }
		sleep 0.1
	done
}
waiting="vigil-install-generation: $T/rep: another install runs; waiting for it (300 s at most)"
cat >"$T/bin/sync" <<EOT
#!/bin/sh
if [ ! -e "$T/raced" ]; then
	: >"$T/raced"
	# 8>&-: not A's install lock (fd 8), which B would hold as A's child
	{ PATH="$PATH" "$I" "$T/build" "$T/rep"; echo "B: exit \$?"; } >"$T/b.out" 2>&1 8>&- &
	i=0
	until grep -q "another install runs\\|B: exit" "$T/b.out" 2>/dev/null || [ \$i -ge 600 ]; do
		i=\$((i + 1)); sleep 0.1
	done
fi
exec "$real_sync" "\$@"
EOT
chmod +x "$T/bin/sync"
PATH="$T/bin:$PATH" "$I" "$T/build" "$T/rep" >"$T/a.out" 2>&1 || fail "install A: $(cat "$T/a.out")"
[ -e "$T/raced" ] || fail "install B did not start between A's copy and its rename"
wait_line "$T/b.out" 'B: exit' "install B"
[ "$(cat "$T/b.out")" = "$waiting
B: exit 0" ] || fail "install B did not wait for A in one line, then succeed: $(cat "$T/b.out")"
[ "$(cat "$T/rep/features/CURRENT" 2>/dev/null)" = gen-000001 ] || fail "CURRENT is not gen-000001"
extra=$(find "$T/rep/features/gen-000001" -mindepth 1 ! -name data.mdb ! -name CHECKSUM)
[ -z "$extra" ] || fail "gen-000001 holds more than data.mdb and CHECKSUM: $extra"
left=$(find "$T/rep/features" -maxdepth 1 -name '.install-*')
[ -z "$left" ] || fail "temporary copies left in features/: $left"
cmp -s "$T/build/features/gen-000001/data.mdb" "$T/rep/features/gen-000001/data.mdb" ||
	fail "the installed data.mdb differs from the build's"

# Stopped by SIGTERM during its copy (systemd stopping an ExecStartPre= at
# TimeoutStartSec, a pod's container stopped): its temporary copy, a whole
# generation, is removed, it says so and fails, and CURRENT is untouched.
mkdir -p "$T/rep2" "$T/termbin"
printf '#!/bin/sh\nkill -TERM "$PPID"\nexec %s "$@"\n' "$real_sync" >"$T/termbin/sync"
chmod +x "$T/termbin/sync"
st=0
PATH="$T/termbin:$PATH" "$I" "$T/build" "$T/rep2" >"$T/term.out" 2>&1 || st=$?
[ "$st" -ne 0 ] || fail "install stopped by SIGTERM exited 0"
left=$(find "$T/rep2/features" -maxdepth 1 -name '.install-*')
[ -z "$left" ] || fail "install stopped by SIGTERM left its temporary copy: $left"
[ ! -e "$T/rep2/features/CURRENT" ] || fail "install stopped by SIGTERM wrote CURRENT"

# Killed by SIGKILL during its copy (the OOM killer, a node lost, systemd
# at the end of TimeoutStopSec): no trap runs, its temporary copy stays.
# Its cp (here one that copied 4 KiB of data.mdb and then reads a FIFO)
# outlives it and still holds the install lock: the next install waits for
# it to end, then removes the copy, says so, and installs the generation
# whole.
mkdir -p "$T/rep3" "$T/killbin"
mkfifo "$T/fifo"
cat >"$T/killbin/cp" <<EOT
#!/bin/sh
for a; do dir=\$a; done
dd if="\$1" of="\$dir/data.mdb" bs=4096 count=1 2>/dev/null
: >"$T/copying"
exec cat "$T/fifo"
EOT
chmod +x "$T/killbin/cp"
PATH="$T/killbin:$PATH" "$I" "$T/build" "$T/rep3" >"$T/kill.out" 2>&1 &
pid=$!
i=0
until [ -e "$T/copying" ]; do
	i=$((i + 1)); [ "$i" -lt 600 ] || { fail "the install to kill never copied"; break; }; sleep 0.1
done
kill -KILL "$pid"
wait "$pid" 2>/dev/null
left=$(find "$T/rep3/features" -maxdepth 1 -name '.install-*')
[ -n "$left" ] || fail "install killed by SIGKILL left no temporary copy: nothing to test"
{ "$I" "$T/build" "$T/rep3"; echo "exit $?"; } >"$T/again.out" 2>&1 &
wait_line "$T/again.out" 'another install runs; waiting\|^exit' "install after SIGKILL"
[ -e "$T/copying" ] && : >"$T/fifo"  # the killed install's cp ends
wait_line "$T/again.out" '^exit' "install after SIGKILL"
[ "$(cat "$T/again.out")" = "vigil-install-generation: $T/rep3: another install runs; waiting for it (300 s at most)
vigil-install-generation: $left: removed (left by an install that did not finish)
vigil-install-generation: $T/rep3: generation 1 current
exit 0" ] || fail "install after SIGKILL: $(cat "$T/again.out")"
left=$(find "$T/rep3/features" -maxdepth 1 -name '.install-*')
[ -z "$left" ] || fail "install after SIGKILL left the killed one's temporary copy: $left"
[ "$(cat "$T/rep3/features/CURRENT" 2>/dev/null)" = gen-000001 ] ||
	fail "install after SIGKILL: CURRENT is not gen-000001"
extra=$(find "$T/rep3/features/gen-000001" -mindepth 1 ! -name data.mdb ! -name CHECKSUM)
[ -z "$extra" ] || fail "install after SIGKILL: gen-000001 holds more than data.mdb and CHECKSUM: $extra"
for f in data.mdb CHECKSUM; do
	cmp -s "$T/build/features/gen-000001/$f" "$T/rep3/features/gen-000001/$f" ||
		fail "install after SIGKILL: the installed $f differs from the build's"
done

# Busy (docs/tools.md, exit 3): another install holding INSTALL.lock past
# VIGIL_INSTALL_WAIT_S (a flock that outlives a 1 s wait), or a rebuild
# holding features/LOCK past 60 s (a fake flock whose 60 s wait fails at
# once). Nothing becomes current; the run after the locks are free installs.
# A VIGIL_INSTALL_WAIT_S that is not a number is a usage error.
mkdir -p "$T/rep4/features"
# the holder: a shell that takes the lock, then becomes the sleep (one
# process to kill, the lock going with it)
(exec 7>>"$T/rep4/features/INSTALL.lock" && flock 7 && exec sleep 60) &
holder=$!
i=0
until ! flock -n "$T/rep4/features/INSTALL.lock" true; do
	i=$((i + 1)); [ "$i" -lt 600 ] || { fail "the lock holder never took INSTALL.lock"; break; }; sleep 0.1
done
st=0
VIGIL_INSTALL_WAIT_S=1 "$I" "$T/build" "$T/rep4" >"$T/busy.out" 2>&1 || st=$?
[ "$st" -eq 3 ] || fail "install lock held: exit $st, want 3: $(cat "$T/busy.out")"
grep -qxF "vigil-install-generation: $T/rep4/features/INSTALL.lock: held by another install for 1 s; try again later" \
	"$T/busy.out" || fail "install lock held: $(cat "$T/busy.out")"
[ ! -e "$T/rep4/features/CURRENT" ] || fail "install lock held: CURRENT written"
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
st=0
VIGIL_INSTALL_WAIT_S=x "$I" "$T/build" "$T/rep4" >"$T/busy.out" 2>&1 || st=$?
[ "$st" -eq 2 ] || fail "VIGIL_INSTALL_WAIT_S=x: exit $st, want 2: $(cat "$T/busy.out")"
# features/LOCK held by a rebuild: flock -w 60 on fd 9 fails at once here
cat >"$T/bin/flock" <<EOT
#!/bin/sh
[ "\$1" = -w ] && [ "\$2" = 60 ] && [ "\$3" = 9 ] && exit 1
exec $(command -v flock) "\$@"
EOT
chmod +x "$T/bin/flock"
st=0
PATH="$T/bin:$PATH" "$I" "$T/build" "$T/rep4" >"$T/busy.out" 2>&1 || st=$?
[ "$st" -eq 3 ] || fail "rebuild lock held: exit $st, want 3: $(cat "$T/busy.out")"
grep -qxF "vigil-install-generation: $T/rep4/features/LOCK: held by a rebuild for 60 s; try again later" \
	"$T/busy.out" || fail "rebuild lock held: $(cat "$T/busy.out")"
[ ! -e "$T/rep4/features/CURRENT" ] || fail "rebuild lock held: CURRENT written"
rm -f "$T/bin/flock"
st=0
"$I" "$T/build" "$T/rep4" >"$T/busy.out" 2>&1 || st=$?
[ "$st" -eq 0 ] && [ "$(cat "$T/rep4/features/CURRENT" 2>/dev/null)" = gen-000001 ] ||
	fail "install after the locks were free: exit $st, CURRENT $(cat "$T/rep4/features/CURRENT" 2>/dev/null): $(cat "$T/busy.out")"

# Two users (as root, with nobody standing for vigild's user): a merge job
# running as root under umask 077 pushes into a replica whose data directory
# is nobody's. Everything it makes is nobody's, directories 0750 and files
# 0640, so vigild's user reads the generation, and its own pull at vigild's
# start installs the next night (taking the locks the push made). A root
# push also gives back a generation an older install left as root's.
if [ "$(id -u)" = 0 ] && id -u nobody >/dev/null 2>&1; then
	chmod 0755 "$T"
	chmod -R a+rX "$T/build"
	mkdir "$T/rep5"
	chown nobody:nogroup "$T/rep5"
	chmod 0750 "$T/rep5"
	(umask 077 && "$I" "$T/build" "$T/rep5") >"$T/root.out" 2>&1 || fail "push as root: $(cat "$T/root.out")"
	bad=$(find "$T/rep5/features" \( ! -user nobody -o ! -group nogroup \
	    -o \( -type d ! -perm 0750 \) -o \( -type f ! -perm 0640 \) \) -printf '%M %u:%g %p\n')
	[ -z "$bad" ] || fail "push as root: not nobody's, 0750/0640: $bad"
	as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }
	as_nobody cat "$T/rep5/features/gen-000001/data.mdb" >/dev/null 2>"$T/read.out" ||
		fail "vigild's user cannot read the pushed generation: $(cat "$T/read.out")"
	OMP_WAIT_POLICY=passive "$R" -d "$T/build" -q --as-of 2026-03-02 --no-model 2>/dev/null ||
		fail "no second generation to install"
	chmod -R a+rX "$T/build"
	as_nobody "$I" "$T/build" "$T/rep5" >"$T/pull.out" 2>&1 || fail "pull as vigild's user: $(cat "$T/pull.out")"
	[ "$(cat "$T/rep5/features/CURRENT" 2>/dev/null)" = gen-000002 ] ||
		fail "pull as vigild's user: CURRENT is not gen-000002: $(cat "$T/pull.out")"
	# an older install's generation left as root's, 0700
	mkdir "$T/rep5/features/gen-000000"
	cp "$T/build/features/gen-000001/CHECKSUM" "$T/rep5/features/gen-000000/"
	chmod 0700 "$T/rep5/features/gen-000000"
	rm -f "$T/rep5/features/CURRENT"
	"$I" "$T/build" "$T/rep5" >"$T/root.out" 2>&1 || fail "second push as root: $(cat "$T/root.out")"
	bad=$(find "$T/rep5/features" \( ! -user nobody -o ! -group nogroup \) -printf '%u:%g %p\n')
	[ -z "$bad" ] || fail "second push as root left files not nobody's: $bad"
else
	echo "two users: skipped (needs root and a user nobody)"
fi

[ $fails -eq 0 ] || { echo "$fails case(s) failed"; exit 1; }
echo "ok"
