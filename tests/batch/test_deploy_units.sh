#!/bin/sh
# SPDX-License-Identifier: MIT
# Checks deploy/'s systemd units: first, wherever they are configured, the
# users, the hardening every service shares, the directories' modes against
# tmpfiles.d and the data directory against vigild.ini; then with
# `systemd-analyze verify`: the units as
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

# The configuration directory: ConfigurationDirectory= can only name one
# under /etc, so the units configured for another sysconfdir have none
# (tmpfiles.d makes the real one: its first d line).
etc=$(awk '$1 == "d" { print $2; exit }' "$build/deploy/vigil.tmpfiles.conf")
[ -n "$etc" ] || { echo "FAIL: vigil.tmpfiles.conf: no d line"; exit 1; }
for s in vigild.service vigil-rebuild.service; do
	n=$(grep -c '^ConfigurationDirectory=' "$build/deploy/$s")
	if [ "$etc" = /etc/vigil ] && [ "$n" -ne 1 ]; then
		echo "FAIL: $s: configuration in /etc/vigil but no ConfigurationDirectory=vigil"; exit 1
	elif [ "$etc" != /etc/vigil ] && [ "$n" -ne 0 ]; then
		echo "FAIL: $s: configuration in $etc but ConfigurationDirectory= makes /etc/vigil"; exit 1
	fi
done

# Hardening, checked wherever the units are configured: every service has
# vigild.service's settings of these keys, value for value (the paths and
# address families differ by design and are checked above and by verify).
# A unit without one (the console once lacked ProtectProc=invisible, the
# system-call filter and LimitCORE=0) is named with the key.
keys='NoNewPrivileges ProtectSystem ProtectHome PrivateTmp PrivateDevices
ProtectKernelTunables ProtectKernelModules ProtectKernelLogs ProtectControlGroups
ProtectClock ProtectHostname ProtectProc RestrictNamespaces RestrictRealtime
RestrictSUIDSGID LockPersonality MemoryDenyWriteExecute RemoveIPC
CapabilityBoundingSet AmbientCapabilities SystemCallArchitectures SystemCallFilter
SystemCallErrorNumber UMask LimitCORE'
setting() { # FILE KEY: "=VALUE" of each of the key's lines in [Service], on one line
	awk -v k="$2" '/^\[/ { s = ($0 == "[Service]") }
	    s && index($0, k "=") == 1 { v = v (n++ ? " " : "") substr($0, length(k) + 1) }
	    END { print v }' "$1"
}
bad=0
for k in $keys; do
	want=$(setting "$build/deploy/vigild.service" "$k")
	[ -n "$want" ] || { echo "FAIL: vigild.service has no $k="; bad=1; }
	for s in vigil-rebuild.service vigil-console.service; do
		got=$(setting "$build/deploy/$s" "$k")
		[ "$got" = "$want" ] ||
			{ echo "FAIL: $s: $k${got:- not set}, vigild.service has $k$want"; bad=1; }
	done
done
[ "$bad" -eq 0 ] || exit 1

# Directories: what the services' StateDirectory=, ConfigurationDirectory=
# and RuntimeDirectory= make, with their *Mode= (systemd's 0755 when
# unset), and tmpfiles.d's d lines agree on each path's mode (the source
# files: written for the default layout, /etc/vigil). systemd warns at
# every start of a unit whose mode differs from the directory's.
srcdir=${VIGIL_SOURCE_ROOT:?VIGIL_SOURCE_ROOT not set}/deploy
{
	for s in vigild.service vigil-rebuild.service vigil-console.service; do
		awk -v u="$s" '/^\[/ { s = ($0 == "[Service]") }
		    s && /^[A-Za-z]+=/ { k = substr($0, 1, index($0, "=") - 1); v[k] = substr($0, length(k) + 2) }
		    END {
			split("State:/var/lib/ Configuration:/etc/ Runtime:/run/", t, " ")
			for (i = 1; i <= 3; i++) {
				split(t[i], p, ":")
				d = v[p[1] "Directory"]
				if (d != "")
					print p[2] d, (v[p[1] "DirectoryMode"] != "" ? v[p[1] "DirectoryMode"] : "0755"), u
			}
		    }' "$srcdir/$s"
	done
	awk '$1 == "d" { print $2, $3, "vigil.tmpfiles" }' "$srcdir/vigil.tmpfiles"
} | awk '!($1 in m) { m[$1] = $2; w[$1] = $3; next }
    $2 != m[$1] { printf "FAIL: %s: mode %s in %s, %s in %s\n", $1, $2, $3, m[$1], w[$1]; bad = 1 }
    END { exit bad }' || bad=1
[ "$bad" -eq 0 ] || exit 1

# The data directory: vigild.ini's [store] data_dir is the one the units
# name (docs/operations.md, "Install": keep it there).
dd=$(sed -n 's/^data_dir *= *//p' "$srcdir/vigild.ini")
[ -n "$dd" ] || { echo "FAIL: vigild.ini: no [store] data_dir"; exit 1; }
words() { # FILE KEY: the words of the key's values in [Service], one a line
	awk -v k="$2" '/^\[/ { s = ($0 == "[Service]") }
	    s && index($0, k "=") == 1 { print substr($0, length(k) + 2) }' "$1" | tr ' ' '\n'
}
for c in vigild.service:ReadWritePaths vigil-rebuild.service:ReadWritePaths \
	vigil-console.service:ReadOnlyPaths; do
	words "$srcdir/${c%%:*}" "${c#*:}" | grep -qx -- "$dd" ||
		{ echo "FAIL: ${c%%:*}: ${c#*:}= does not name vigild.ini's data_dir $dd"; bad=1; }
done
for s in vigil-rebuild.service vigil-console.service; do
	# the word after --data in ExecStart= and its continuation lines
	got=$(sed -n '/^ExecStart=/,/[^\\]$/p' "$srcdir/$s" | tr -s ' \\\n' '\n\n\n' |
		sed -n '/^--data$/{n;p;}')
	[ "$got" = "$dd" ] || { echo "FAIL: $s: --data ${got:-missing}, vigild.ini's data_dir is $dd"; bad=1; }
done
[ "$bad" -eq 0 ] || exit 1

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

for bin in "$build/server/vigild" "$build/batch/vigil-rebuild" "$build/console/vigil-console" \
	"$build/tools/replay/vigil-replay"; do
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
sed -e "s|[^ =]*/bin/vigil-console|$build/console/vigil-console|g" \
	-e "s|[^ =]*/bin/vigil-replay|$build/tools/replay/vigil-replay|g" \
	"$build/deploy/vigil-console.service" > "$tmp/vigil-console.service"
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
	./vigil-console.service > "$tmp/out" 2>&1; then
	echo "FAIL: systemd-analyze verify:"
	cat "$tmp/out"
	exit 1
fi
# verify also warns without failing (unknown keys, bad values): none allowed
# about our units.
if grep -E 'vigild\.service|vigil-rebuild\.(service|timer)|vigil-console\.service' "$tmp/out"; then
	echo "FAIL: systemd-analyze verify warned about the units above"
	exit 1
fi
grep -q '^Persistent=true' vigil-rebuild.timer || { echo "FAIL: timer not Persistent"; exit 1; }
grep -q '^Type=notify' vigild.service || { echo "FAIL: vigild.service not Type=notify"; exit 1; }
grep -q '^Type=oneshot' vigil-rebuild.service || { echo "FAIL: rebuild not oneshot"; exit 1; }
echo "ok: vigild.service, vigil-rebuild.service, vigil-rebuild.timer, vigil-console.service verified"
exit 0
