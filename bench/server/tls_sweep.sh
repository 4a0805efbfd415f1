#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/server/tls_sweep.sh - the CPU that vigild's [tls]
# handshake_timeout_ms sweep (server/handshake.c, once a second) costs with
# many TLS connections open: start vigild with a tls+tcp:// listener on
# 127.0.0.1 (a throwaway PKI from tests/lib/mkpki.sh), open CONNS mutual-TLS
# connections that complete the handshake and nng's header exchange (so
# they are pipes) and then stay idle (python3 ssl), wait a second, and
# read vigild's utime+stime from /proc/PID/stat over SECONDS. Each round
# does this twice, with handshake_timeout_ms at its default (the key left
# out: 10000) and with 0 (no sweep), the two taking turns going first.
# Prints one line per round and setting: ms of CPU per second, and the
# connections vigild counts after the window with how many the sweep
# closed (0 unless a pipe was taken for a handshake); then each setting's
# median, and the sweep's cost: the difference of the medians and the
# median of the rounds' own differences (docs/BENCHMARKS.md, "vigild end
# to end"). The ticks are 1/CLK_TCK s (10 ms): over 10 s a
# round's figure moves in steps of 1 ms/s.
#
#   bench/server/tls_sweep.sh BUILD_DIR [SECONDS] [RUNS]
#
# SECONDS defaults to 10, RUNS (rounds) to 3. Environment: CONNS (TLS
# connections held open, default 1000; vigild's max_connections is set to
# CONNS + 16).
set -eu

# shellcheck source=bench/help.sh
. "$(dirname "$0")/../help.sh"
BUILD=${1:?usage: tls_sweep.sh BUILD_DIR [SECONDS] [RUNS]}
SECS=${2:-10}
RUNS=${3:-3}
CONNS=${CONNS:-1000}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d /tmp/vigil-tls-sweep-XXXXXX)
SPID=
HPID=
stop() {
	if [ -n "$HPID" ]; then kill -TERM "$HPID" 2>/dev/null || true; wait "$HPID" 2>/dev/null || true; fi
	if [ -n "$SPID" ]; then kill -TERM "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true; fi
	HPID=''
	SPID=''
}
cleanup() {
	stop
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
TCK=$(getconf CLK_TCK)
ticks() { awk '{ print $14 + $15 }' "$1"; }
metric() { # NAME: its value in $TMP/metrics (first sample)
	awk -v n="$1" '$1 == n || index($1, n "{") == 1 { print $2; exit }' "$TMP/metrics"
}

mkdir "$TMP/pki"
sh "$SRC/tests/lib/mkpki.sh" "$TMP/pki"
PORT=$(python3 "$SRC/tests/lib/vt_port.py")
for to in default 0; do
	{
		printf '[server]\nmax_connections = %d\n[tls]\n' $((CONNS + 16))
		printf 'cert = %s/server.pem\nkey = %s/server.key\nca = %s/ca.pem\n' "$TMP/pki" "$TMP/pki" "$TMP/pki"
		[ "$to" = default ] || printf 'handshake_timeout_ms = %s\n' "$to"
	} >"$TMP/$to.ini"
done

# Holds CONNS connections open until killed; "ready" once all are pipes.
cat >"$TMP/hold.py" <<'PY'
import resource, signal, socket, ssl, struct, sys

port, pki, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(pki + "/ca.pem")
ctx.load_cert_chain(pki + "/client.pem", pki + "/client.key")
ctx.check_hostname = False
held = []
for _ in range(n):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30))
    s.sendall(b"\0SP\0" + struct.pack(">H", 0x30) + b"\0\0")  # nng's header, REQ
    h = b""
    while len(h) < 8:
        c = s.recv(8 - len(h))
        if not c:
            sys.exit("tls_sweep.sh: vigild closed connection %d during nng's header exchange" % len(held))
        h += c
    held.append(s)
print("ready", flush=True)
signal.pause()
PY

round() { # NAME (default or 0)
	rm -rf "$TMP/data"
	mkdir "$TMP/data"
	"$BUILD/server/vigild" --config "$TMP/$1.ini" --data "$TMP/data" --rules "$SRC/rules/default.rules" \
		--listen "tls+tcp://127.0.0.1:$PORT" --admin "unix:$TMP/admin.sock" 2>"$TMP/vigild.log" &
	SPID=$!
	i=0
	until grep -q 'vigild: ready' "$TMP/vigild.log"; do
		i=$((i + 1))
		if [ "$i" -ge 300 ] || ! kill -0 "$SPID" 2>/dev/null; then
			echo "tls_sweep.sh: vigild did not start:" >&2
			cat "$TMP/vigild.log" >&2
			exit 1
		fi
		sleep 0.1
	done
	: >"$TMP/hold.out"
	python3 "$TMP/hold.py" "$PORT" "$TMP/pki" "$CONNS" >"$TMP/hold.out" &
	HPID=$!
	until grep -q ready "$TMP/hold.out"; do
		kill -0 "$HPID" 2>/dev/null || { echo "tls_sweep.sh: the TLS connections failed" >&2; exit 1; }
		sleep 0.2
	done
	sleep 1
	a=$(ticks /proc/"$SPID"/stat)
	sleep "$SECS"
	b=$(ticks /proc/"$SPID"/stat)
	curl -s --unix-socket "$TMP/admin.sock" http://vigild/metrics >"$TMP/metrics" ||
		{ echo "tls_sweep.sh: no /metrics" >&2; exit 1; }
	ms=$(awk -v d=$((b - a)) -v s="$SECS" -v k="$TCK" 'BEGIN { printf "%.2f", 1000 * d / k / s }')
	echo "$r $1 $ms" >>"$TMP/results"
	printf 'round %d  handshake_timeout_ms %-7s  %6s ms CPU/s  (%s connections, %s closed by the sweep)\n' \
		"$r" "$1" "$ms" "$(metric 'vigil_connections{listener="nng"}')" \
		"$(metric vigil_tls_handshake_timeouts_total)"
	stop
}

r=0
while [ "$r" -lt "$RUNS" ]; do
	r=$((r + 1))
	if [ $((r % 2)) -eq 1 ]; then round default; round 0; else round 0; round default; fi
done
med() { # NAME: the median of that setting's rounds, or of their differences (diff)
	awk -v n="$1" 'n == "diff" { d[$1] += ($2 == "default") ? $3 : -$3; next }
		$2 == n { print $3 } END { if (n == "diff") for (r in d) print d[r] }' "$TMP/results" |
		sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
awk -v on="$(med default)" -v off="$(med 0)" -v d="$(med diff)" -v n="$CONNS" -v r="$RUNS" -v s="$SECS" 'BEGIN {
	printf "median of %d rounds of %d s, %d TLS pipes: sweep on (10000) %.2f ms CPU/s, off (0) %.2f;\n", r, s, n, on, off
	printf "the sweep: %.2f ms/s (difference of the medians), %.2f ms/s (median of the rounds%s differences)\n", on - off, d, "\047" }'
