#!/bin/sh
# SPDX-License-Identifier: MIT
# deploy/vigil-install-generation against two installs of the same night at
# once (the merge job's push and a replica's pull at vigild's start): the
# second to rename its copy into place must not move it inside the first's
# gen-N (mv DIR EXISTING_DIR), which left a whole stray copy in the
# generation directory that a rebuild's prune cannot remove. The race is
# made certain: install A's first sync (between its copy and its rename)
# runs install B to its end. Then an install stopped by SIGTERM during its
# copy leaves no temporary copy.
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
cat >"$T/bin/sync" <<EOT
#!/bin/sh
if [ ! -e "$T/raced" ]; then
	: >"$T/raced"
	PATH="$PATH" "$I" "$T/build" "$T/rep" >"$T/b.out" 2>&1 || echo "B: exit \$?" >>"$T/b.out"
fi
exec "$real_sync" "\$@"
EOT
chmod +x "$T/bin/sync"
PATH="$T/bin:$PATH" "$I" "$T/build" "$T/rep" >"$T/a.out" 2>&1 || fail "install A: $(cat "$T/a.out")"
[ -e "$T/raced" ] || fail "install B did not run between A's copy and its rename"
grep -q 'B: exit' "$T/b.out" && fail "install B: $(cat "$T/b.out")"
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

[ $fails -eq 0 ] || { echo "$fails case(s) failed"; exit 1; }
echo "ok"
