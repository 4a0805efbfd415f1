#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/deploy/test_python_pkg.sh - the Python client installs with pip
# (issue 18): a copy of clients/python is installed into a venv made with
# --system-site-packages (Debian's python3-protobuf; no network, so
# --no-build-isolation --no-deps --no-index), imported from the venv (not
# from the sources or the build tree), and scores a transaction against a
# real vigild; in a venv without protobuf, `import vigil_client` names the
# missing package instead of "No module named 'vigil_pb2'".
# Usage: test_python_pkg.sh PYTHON3 (VIGIL_BUILD_ROOT, VIGIL_SOURCE_ROOT set by meson).
set -eu

PY=${1:?usage: test_python_pkg.sh PYTHON3}
B=${VIGIL_BUILD_ROOT:?VIGIL_BUILD_ROOT not set}
S=${VIGIL_SOURCE_ROOT:?VIGIL_SOURCE_ROOT not set}
T=$(mktemp -d /tmp/vigil-pypkg-XXXXXX)
PID=

fail() {
	echo "test_python_pkg: $*" >&2
	[ -f "$T/vigild.log" ] && sed 's/^/  vigild.log: /' "$T/vigild.log" >&2
	exit 1
}
cleanup() {
	if [ -n "$PID" ]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
	rm -rf "$T"
}
trap cleanup EXIT INT TERM

if ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then
	echo "SKIP: $PY has no venv/ensurepip (Debian: apt install python3-venv)"
	exit 77
fi
if ! "$PY" -c 'import google.protobuf, setuptools' 2>/dev/null; then
	echo "SKIP: $PY lacks protobuf or setuptools (Debian: python3-protobuf python3-setuptools)"
	exit 77
fi
# A copy: pip builds in the source tree and would leave build/ and
# *.egg-info in clients/python.
cp -r "$S/clients/python" "$T/src"
"$PY" -m venv --system-site-packages "$T/venv" || fail "python3 -m venv failed"
"$T/venv/bin/pip" install -q --no-build-isolation --no-deps --no-index "$T/src" \
	>"$T/pip.log" 2>&1 || { cat "$T/pip.log" >&2; fail "pip install clients/python failed"; }
rm -rf "$T/src"

mkdir "$T/data"
"$B/server/vigild" --data "$T/data" --listen "ipc://$T/vigild.sock" --admin off \
	--rules "$S/tests/server/rules/velocity.rules" 2>"$T/vigild.log" &
PID=$!

# From an empty directory, with no PYTHONPATH: only the venv can provide it.
mkdir "$T/cwd"
out=$(cd "$T/cwd" && env -u PYTHONPATH "$T/venv/bin/python" - "$T" <<'PYEOF'
import sys, time
import vigil_client as vc
tmp = sys.argv[1]
assert vc.__file__.startswith(tmp + "/venv/"), vc.__file__
assert vc._pb.__name__ == "vigil_client.vigil_pb2", vc._pb.__name__
with vc.Client(["ipc://" + tmp + "/vigild.sock"], timeout=2.0) as c:
    for i in range(300):  # vigild may still be starting
        try:
            if c.health().ready:
                break
        except vc.VigilError:
            pass
        time.sleep(0.1)
    r = c.score(vc.Transaction(txn_id="pkg-1", card_id="card-1", merchant_id="m-1",
                               amount_minor=1250, currency="EUR"))
print("decision=%s from %s" % (r.decision, vc.__file__))
PYEOF
) || fail "scoring with the pip-installed package failed: $out"
case "$out" in
*decision=allow* | *decision=review* | *decision=decline*) ;;
*) fail "no decision: $out" ;;
esac
kill -TERM "$PID"
wait "$PID" || fail "vigild exited with status $? on SIGTERM"
PID=

# Without protobuf: the error names it.
"$PY" -m venv --without-pip "$T/bare" || fail "python3 -m venv --without-pip failed"
site=$("$T/bare/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cp -r "$T/venv/lib/"python3*/site-packages/vigil_client "$site/" ||
	fail "no vigil_client in the venv's site-packages"
set +e
(cd "$T/cwd" && env -u PYTHONPATH "$T/bare/bin/python" -c 'import vigil_client') >"$T/err" 2>&1
st=$?
set -e
[ "$st" -ne 0 ] || fail "vigil_client imported without protobuf installed"
grep -q "vigil_client needs the protobuf package" "$T/err" ||
	fail "the import error does not name protobuf: $(tail -1 "$T/err")"
echo "test_python_pkg: ok: $out"
