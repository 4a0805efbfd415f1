#!/bin/sh
# SPDX-License-Identifier: MIT
# Checks deploy/'s systemd units with `systemd-analyze verify`: the units as
# shipped, with the install paths of the binaries pointed at this build tree
# (verify insists that ExecStart= programs exist). Skips (exit 77) when
# systemd-analyze is missing or cannot verify here, which it proves by
# failing to reject a deliberately broken unit.
set -u
src=${VIGIL_SOURCE_ROOT:?VIGIL_SOURCE_ROOT not set}
build=${VIGIL_BUILD_ROOT:?VIGIL_BUILD_ROOT not set}

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
sed "s|/usr/local/bin/vigild|$build/server/vigild|g" "$src/deploy/vigild.service" \
	> "$tmp/vigild.service"
sed "s|/usr/local/bin/vigil-rebuild|$build/batch/vigil-rebuild|g" \
	"$src/deploy/vigil-rebuild.service" > "$tmp/vigil-rebuild.service"
cp "$src/deploy/vigil-rebuild.timer" "$tmp/"

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
