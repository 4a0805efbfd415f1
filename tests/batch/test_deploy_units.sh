#!/bin/sh
# SPDX-License-Identifier: MIT
# Checks deploy/'s systemd units with `systemd-analyze verify`: the units as
# `meson install` installs them (configured into <build>/deploy), with the
# install paths of the binaries pointed at this build tree (verify insists
# that ExecStart= programs exist) and MANPATH at the man pages built in
# <build>/docs (verify runs man(1) for every Documentation=man:). Skips (exit 77) when
# systemd-analyze is missing or cannot verify here, which it proves by
# failing to reject a deliberately broken unit.
set -u
build=${VIGIL_BUILD_ROOT:?VIGIL_BUILD_ROOT not set}

# Users (issue 28, row 5), checked wherever systemd-analyze is: the console
# runs as a user of its own in the group vigil, never as vigild's user, and
# cannot write vigild's data directory; sysusers makes that user and its
# membership.
c="$build/deploy/vigil-console.service" u="$build/deploy/vigil.sysusers.conf"
for f in "$c" "$u" "$build/deploy/vigild.service"; do
	[ -f "$f" ] || { echo "FAIL: $f not configured"; exit 1; }
done
grep -qx 'User=vigil-console' "$c" || { echo "FAIL: vigil-console.service: not User=vigil-console"; exit 1; }
grep -qx 'Group=vigil' "$c" || { echo "FAIL: vigil-console.service: not Group=vigil"; exit 1; }
grep -qx 'User=vigil' "$build/deploy/vigild.service" || { echo "FAIL: vigild.service: not User=vigil"; exit 1; }
if grep '^ReadWritePaths=' "$c" | grep -q '/var/lib/vigil\( \|$\)'; then
	echo "FAIL: vigil-console.service may write vigild's data directory"
	exit 1
fi
grep -q '^ReadOnlyPaths=.*/var/lib/vigil\( \|$\)' "$c" ||
	{ echo "FAIL: vigil-console.service: the data directory is not read-only"; exit 1; }
grep -q '^u vigil-console ' "$u" || { echo "FAIL: sysusers: no user vigil-console"; exit 1; }
grep -qx 'm vigil-console vigil' "$u" || { echo "FAIL: sysusers: vigil-console not in group vigil"; exit 1; }

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "SKIP: systemd-analyze not installed"
	exit 77
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

# Can this environment verify at all? A unit whose program is missing must fail.
mkdir "$tmp/probe"
printf '[Service]\nExecStart=/nonexistent/vigil-probe\n' > "$tmp/probe/probe.service"
if (cd "$tmp/probe" && systemd-analyze verify ./probe.service) >/dev/null 2>&1; then
	echo "SKIP: systemd-analyze verify does not reject a broken unit here"
	exit 77
fi

for bin in "$build/server/vigild" "$build/batch/vigil-rebuild"; do
	if [ ! -x "$bin" ]; then
		echo "SKIP: $bin is not built"
		exit 77
	fi
done
[ -f "$build/deploy/vigild.service" ] || { echo "FAIL: $build/deploy/vigild.service not configured"; exit 1; }
sed "s|[^ =]*/bin/vigild|$build/server/vigild|g" "$build/deploy/vigild.service" \
	> "$tmp/vigild.service"
sed "s|[^ =]*/bin/vigil-rebuild|$build/batch/vigil-rebuild|g" \
	"$build/deploy/vigil-rebuild.service" > "$tmp/vigil-rebuild.service"
cp "$build/deploy/vigil-rebuild.timer" "$tmp/"
for page in "$build"/docs/*.[0-9]; do
	[ -f "$page" ] || continue
	mkdir -p "$tmp/man/man${page##*.}"
	ln -s "$page" "$tmp/man/man${page##*.}/"
done
MANPATH="$tmp/man"
export MANPATH

cd "$tmp" || exit 1
if ! systemd-analyze verify ./vigild.service ./vigil-rebuild.service ./vigil-rebuild.timer \
	> "$tmp/out" 2>&1; then
	echo "FAIL: systemd-analyze verify:"
	cat "$tmp/out"
	exit 1
fi
# verify also warns without failing (unknown keys, bad values): none allowed
# about our units.
if grep -E 'vigild\.service|vigil-rebuild\.(service|timer)' "$tmp/out"; then
	echo "FAIL: systemd-analyze verify warned about the units above"
	exit 1
fi
grep -q '^Persistent=true' vigil-rebuild.timer || { echo "FAIL: timer not Persistent"; exit 1; }
grep -q '^Type=notify' vigild.service || { echo "FAIL: vigild.service not Type=notify"; exit 1; }
grep -q '^Type=oneshot' vigil-rebuild.service || { echo "FAIL: rebuild not oneshot"; exit 1; }
echo "ok: vigild.service, vigil-rebuild.service, vigil-rebuild.timer verified"
exit 0
