#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/deploy/test_runtime_dir.sh - a local client in [server] ipc_group
# reaches vigild's ipc:// socket in vigild.service's RuntimeDirectory
# (docs/security.md: "listen = ..., ipc:///run/vigil/vigild.sock",
# "ipc_group = vigil-clients"): the socket's mode and group decide who
# connects, so the directory systemd makes must let that group through.
# The directory is made as systemd makes it, from the configured unit's
# RuntimeDirectory= and RuntimeDirectoryMode= (owned by vigild's user and
# group); vigild runs as that user with ipc_group a group of its own, and
# vigil-score runs as a third user whose only group is ipc_group; the admin
# socket in the same directory stays closed to it. Needs root
# (to be those users) and setpriv(1): skipped (exit 77) with a message
# otherwise.
set -eu

VT_NAME=runtime-dir
# shellcheck source=tests/lib/vt.sh
. "${VIGIL_SOURCE_ROOT:?VIGIL_SOURCE_ROOT not set}/tests/lib/vt.sh"
V=$(vt_prog vigild)
SC=$(vt_prog vigil-score)
unit="$B/deploy/vigild.service"
VU=61701 CLIENTS=61702 CU=61703 # vigild's user and group, ipc_group, a client

if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: not root: cannot run vigild and the client as other users"
	exit 77
fi
if ! command -v setpriv >/dev/null 2>&1; then
	echo "SKIP: setpriv(1) not installed (util-linux)"
	exit 77
fi
[ -f "$unit" ] || fail "$unit not configured"
rdir=$(sed -n 's/^RuntimeDirectory=//p' "$unit")
rmode=$(sed -n 's/^RuntimeDirectoryMode=//p' "$unit")
[ "$rdir" = vigil ] || fail "vigild.service: RuntimeDirectory=$rdir, the sockets' /run/vigil wants vigil"
rmode=${rmode:-0755}

chmod 0711 "$D"
mkdir -p "$D/run/$rdir" "$D/data" "$D/rules"
chown "$VU:$VU" "$D/run/$rdir" "$D/data"
chmod "$rmode" "$D/run/$rdir"
cp "$S/tests/server/rules/velocity.rules" "$D/rules/"
chmod -R a+rX "$D/rules"
sock="$D/run/$rdir/vigild.sock"
printf '[server]\nipc_group = %s\n' "$CLIENTS" >"$D/vigild.ini"
chmod 0644 "$D/vigild.ini"
setpriv --reuid=$VU --regid=$VU --groups=$CLIENTS -- "$V" --config "$D/vigild.ini" \
	--data "$D/data" --listen "ipc://$sock" --admin "unix:$D/run/$rdir/admin.sock" \
	--rules "$D/rules/velocity.rules" 2>"$D/vigild.log" &
PID=$!
i=0
until [ -S "$sock" ]; do
	i=$((i + 1))
	[ "$i" -lt 600 ] || fail "no socket $sock after 60 s"
	kill -0 "$PID" 2>/dev/null || fail "vigild exited"
	sleep 0.1
done
[ "$(stat -c %g "$sock")" = "$CLIENTS" ] || fail "$sock: group $(stat -c %g "$sock"), want ipc_group $CLIENTS"
out=$(setpriv --reuid=$CU --regid=$CU --groups=$CLIENTS -- "$SC" --server "ipc://$sock" \
	--txn-id rd-1 --card card-1 --merchant m-1 --amount 12.50 --currency EUR 2>&1) ||
	fail "a client in ipc_group cannot reach $sock in a RuntimeDirectoryMode=$rmode directory: $out"
echo "$out" | grep -Eq '"decision": *"(allow|review|decline)"' || fail "no decision in the reply: $out"
# the admin socket beside it stays vigild's group's (0660, group vigil)
if setpriv --reuid=$CU --regid=$CU --groups=$CLIENTS -- curl -s --unix-socket "$D/run/$rdir/admin.sock" \
	http://vigild/healthz >/dev/null 2>&1; then
	fail "a client in ipc_group reaches the admin socket $D/run/$rdir/admin.sock"
fi
kill -TERM "$PID"
st=0
wait "$PID" || st=$?
PID=
[ "$st" -eq 0 ] || fail "vigild exited with status $st on SIGTERM"
echo "runtime-dir: ok (RuntimeDirectoryMode=$rmode, a client in ipc_group scored)"
