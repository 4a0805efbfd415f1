#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/cluster/cluster.sh - three vigild replicas sharing cross-card state
# through a 3-node NATS JetStream cluster (docs/operations.md, "Running a
# cluster"). Traffic goes through the C client's ring (vigil-score with
# three --server), cards spread over the replicas, one device and one IP
# shared by cards on every replica. Then:
#   - the entity features of a probe (vel.device.*, vel.ip.*,
#     vel.merchant.count_1h, vel.terminal.distinct_cards_1h) on each
#     replica equal a single vigild's on the same traffic, once every
#     replica applied what the others published (waited for, bounded);
#   - with the whole NATS cluster stopped, replicas keep scoring, say
#     "degraded" in /healthz and stay ready (/readyz 200); once NATS is back
#     they catch up and the features agree again;
#   - a replica killed (kill -9) and restarted gets the others' part back by
#     replaying the stream, its own from its archive;
#   - with NATS unreachable from the start and a queue of 10, a replica
#     scores, is ready and degraded, and counts what it dropped;
#   - a message on the cluster's subjects that does not decode is skipped,
#     counted and logged with its subject, sequence and offset;
#   - an observation whose event time is 2 days ahead is refused (the
#     clock-skew guard), counted and logged: the features stay as they were;
#     so is one whose event and commit times are INT64_MIN (out of range),
#     and one 305 s ahead of when the stream stored it, also by a replica
#     that replays the stream after a restart at least 7 s later (its own
#     clock then less than 300 s behind that event time);
#   - the stream lost (NATS restarted with every node's store deleted): the
#     replicas create it again and go on sharing, a replica with no traffic
#     of its own included (it publishes nothing, so only its periodic look
#     at the stream finds it new).
#   - NATS paused (SIGSTOP) while a batch is being published: the batch is
#     retried unchanged and what queued behind it goes in the next one, so
#     the others apply every observation.
#   - a batch stored twice (a retry past the stream's duplicate window) is
#     applied once by every replica, the copy counted and logged.
# Feature values are read through rules: one rule per value of each
# feature up to 130 ("dev_dc_K when vel.device.distinct_cards_24h >= K"), so the
# number of a feature's rules that fire is its value.
# Skipped (exit 77) where nats-server is not installed.
set -eu
VT_NAME=cluster
VT_LOG=nats-1.log
# shellcheck source=tests/lib/vt.sh
. "${VIGIL_SOURCE_ROOT:?VIGIL_SOURCE_ROOT not set}/tests/lib/vt.sh"

command -v nats-server >/dev/null 2>&1 || {
	echo "cluster: SKIP: nats-server not installed (Debian package nats-server; deploy/bootstrap.sh installs it)"
	exit 77
}
VIGILD="$B/server/vigild"
SCORE="$B/tools/score/vigil-score"

PIDS=""
NATS_PIDS=""
cl_cleanup() {
	# a NATS node may be stopped (SIGSTOP): continued, it takes SIGTERM
	for p in $NATS_PIDS; do kill -CONT "$p" 2>/dev/null || true; done
	for p in $PIDS $NATS_PIDS; do kill -TERM "$p" 2>/dev/null || true; done
	for p in $PIDS $NATS_PIDS; do wait "$p" 2>/dev/null || true; done
	rm -rf "$D"
}
trap cl_cleanup EXIT INT TERM

cl_fail() {
	echo "cluster: $*" >&2
	for f in "$D"/*.log; do
		[ -f "$f" ] && tail -n 15 "$f" | sed "s|^|  $(basename "$f"): |" >&2
	done
	exit 1
}

# Stops vigild $1 (log $2) with SIGTERM: it must exit 0 (a clean stop;
# under AddressSanitizer, no leak or error report either).
stop_checked() {
	kill -TERM "$1"
	st=0
	wait "$1" || st=$?
	[ "$st" -eq 0 ] || cl_fail "vigild ($2) exited $st after SIGTERM: $(grep -A5 Sanitizer "$2" | head -20)"
}


# ---- the rule file that reads features out ----
{
	echo 'version "cluster-probe"'
	for f in device.distinct_cards_24h:dev_dc device.count_1h:dev_n ip.distinct_cards_24h:ip_dc \
	    ip.count_1h:ip_n merchant.count_1h:mer_n terminal.distinct_cards_1h:ter_dc; do
		feat=${f%%:*} name=${f##*:}
		k=1
		while [ "$k" -le 130 ]; do
			printf 'rule %s_%d {\n  when vel.%s >= %d\n  score 0\n  reason "%s"\n}\n' \
			    "$name" "$k" "$feat" "$k" "$name"
			k=$((k + 1))
		done
	done
} >"$D/probe.rules"

# ---- traffic: six parts, event times within the last hour ----
python3 - "$D" <<'EOF'
import json, sys, time
d = sys.argv[1]
base = int(time.time() * 1000) - 50 * 60 * 1000
i = 0
for part in (1, 2, 3, 4, 5, 6):
    with open(f"{d}/t{part}.jsonl", "w") as f:
        for j in range(40):
            card = (i * 7) % 30
            txn = {"txn_id": f"t-{i}", "card_id": f"card-{card}", "merchant_id": f"m-{i % 3}",
                   "terminal_id": f"term-{i % 2}", "amount": "12.50", "currency": "EUR",
                   "event_time_ms": base + i * 10000}
            if card < 18:
                txn["device_id"] = "dev-shared"
            if card % 2 == 0:
                txn["ip"] = "192.0.2.7"
            f.write(json.dumps(txn) + "\n")
            i += 1
EOF

# The probe's feature values on one replica: "name=value ..." (a dry run).
probe() {
	"$SCORE" -q --dry-run -s "$1" --txn-id probe --card card-probe --merchant m-0 \
	    --terminal term-0 --amount 1 --currency EUR --device dev-shared --ip 192.0.2.7 \
	    >"$D/probe.json" 2>&1 || cl_fail "probe on $1: $(cat "$D/probe.json")"
	python3 - "$D/probe.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
if r.get("status") != "OK":
    sys.exit("probe: " + json.dumps(r))
n = {}
for h in r["hits"]:
    k = h["rule"].rsplit("_", 1)[0]
    n[k] = n.get(k, 0) + 1
print(" ".join(f"{k}={n.get(k, 0)}" for k in ("dev_dc", "dev_n", "ip_dc", "ip_n", "mer_n", "ter_dc")))
EOF
}

send() { # send FILE URL...: every line scored OK
	f=$1
	shift
	set --
	for u in $URLS; do set -- "$@" -s "$u"; done
	"$SCORE" -q "$@" <"$f" >"$D/send.out" 2>&1 || cl_fail "vigil-score $f: $(tail -3 "$D/send.out")"
	ok=$(grep -c '"status":"OK"' "$D/send.out" || true)
	[ "$ok" -eq "$(wc -l <"$f")" ] || cl_fail "$f: $ok of $(wc -l <"$f") scored OK"
}

# ---- the single instance ----
SA=$(vt_free_port)
"$VIGILD" --data "$D/single" --listen "ipc://$D/single.ipc" --admin "127.0.0.1:$SA" \
    --rules "$D/probe.rules" >"$D/single.log" 2>&1 &
SPID=$!
PIDS="$SPID"
i=0
until grep -q "vigild: ready" "$D/single.log"; do
	i=$((i + 1)); [ "$i" -lt 300 ] || cl_fail "single vigild not ready"; sleep 0.1
done
URLS="ipc://$D/single.ipc"
for p in 1 2 3; do send "$D/t$p.jsonl"; done
WANT=$(probe "ipc://$D/single.ipc")
stop_checked "$SPID" "$D/single.log"
PIDS=""
echo "cluster: single instance: $WANT"
case "$WANT" in
*dev_dc=18*) ;;
*) cl_fail "single instance: expected 18 distinct cards on the shared device: $WANT" ;;
esac

# ---- NATS unreachable from the start, a queue of 10: scoring goes on,
# ready and degraded, what does not fit is dropped and counted ----
DP=$(vt_free_port) DA=$(vt_free_port)
printf '[cluster]\nqueue = 10\n' >"$D/small.ini"
"$VIGILD" --config "$D/small.ini" --data "$D/alone" --listen "ipc://$D/alone.ipc" \
    --admin "127.0.0.1:$DA" --rules "$D/probe.rules" --nats "nats://127.0.0.1:$DP" \
    --replica alone >"$D/alone.log" 2>&1 &
APID=$!
PIDS="$APID"
i=0
until grep -q "vigild: ready" "$D/alone.log"; do
	i=$((i + 1)); [ "$i" -lt 300 ] || cl_fail "vigild with NATS unreachable not ready"; sleep 0.1
done
grep -q "cluster: NATS nats://127.0.0.1:$DP unreachable" "$D/alone.log" ||
    cl_fail "no line saying NATS is unreachable"
URLS="ipc://$D/alone.ipc"
send "$D/t1.jsonl"
curl -s -o "$D/readyz.json" -w '%{http_code}' "http://127.0.0.1:$DA/readyz" >"$D/code" || true
[ "$(cat "$D/code")" = 200 ] || cl_fail "NATS unreachable: /readyz $(cat "$D/code"): $(cat "$D/readyz.json")"
grep -q '"degraded": *true' "$D/readyz.json" || cl_fail "NATS unreachable: not degraded: $(cat "$D/readyz.json")"
curl -sf "http://127.0.0.1:$DA/metrics" >"$D/alone.metrics"
grep -q '^vigil_cluster_dropped_total 30$' "$D/alone.metrics" ||
    cl_fail "40 scored with a queue of 10: want 30 dropped: $(grep cluster "$D/alone.metrics")"
grep -q '^vigil_cluster_queue_depth 10$' "$D/alone.metrics" ||
    cl_fail "want 10 queued: $(grep cluster "$D/alone.metrics")"
grep -q '^vigil_cluster_connected 0$' "$D/alone.metrics" || cl_fail "connected?"
stop_checked "$APID" "$D/alone.log"
PIDS=""
grep -q "stopping with 10 observation(s) not published" "$D/alone.log" ||
    cl_fail "no shutdown line with the 10 observations not published"
echo "cluster: NATS unreachable: scored, ready, degraded, 30 of 40 observations dropped"

# ---- a 3-node NATS cluster with JetStream ----
N1=$(vt_free_port) N2=$(vt_free_port) N3=$(vt_free_port)
R1=$(vt_free_port) R2=$(vt_free_port) R3=$(vt_free_port)
ROUTES="nats://127.0.0.1:$R1,nats://127.0.0.1:$R2,nats://127.0.0.1:$R3"
nats_start() { # nats_start I
	case $1 in
	1) np=$N1 rp=$R1 ;;
	2) np=$N2 rp=$R2 ;;
	*) np=$N3 rp=$R3 ;;
	esac
	nats-server -a 127.0.0.1 -p "$np" -n "n$1" -js -sd "$D/js$1" --cluster_name vt \
	    --cluster "nats://127.0.0.1:$rp" --routes "$ROUTES" >>"$D/nats-$1.log" 2>&1 &
	NATS_PIDS="$NATS_PIDS $!"
}
nats_stop() {
	for p in $NATS_PIDS; do kill -TERM "$p" 2>/dev/null || true; done
	for p in $NATS_PIDS; do wait "$p" 2>/dev/null || true; done
	NATS_PIDS=""
}
nats_start 1; nats_start 2; nats_start 3
NATS="nats://127.0.0.1:$N1,nats://127.0.0.1:$N2,nats://127.0.0.1:$N3"

# js_dup create: the stream, made before any replica would make it, with a
# duplicate window of 1 s (vigild's: 2 minutes), so that a batch can be
# stored twice within the test; js_dup publish: one batch, stored twice.
js_dup() { # js_dup create|publish
python3 - "$N1" "$1" <<'EOF'
import json, socket, struct, sys, time
for i in range(300):  # NATS may be starting
    try:
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
        break
    except ConnectionRefusedError:
        if i == 299:
            raise
        time.sleep(0.1)
buf = b""
def line():
    global buf
    while b"\r\n" not in buf:
        buf += s.recv(65536)
    l, buf = buf.split(b"\r\n", 1)
    return l
def call(cmd, inbox, wait):  # sends cmd; the JSON answer on inbox, or None after wait s
    global buf
    s.sendall(cmd)
    s.settimeout(wait)
    try:
        while True:
            l = line()
            if l.startswith(b"MSG ") and l.split()[1] == inbox:
                n = int(l.split()[-1])
                while len(buf) < n + 2:
                    buf += s.recv(65536)
                r, buf = json.loads(buf[:n]), buf[n + 2:]
                return r
    except socket.timeout:
        return None
    finally:
        s.settimeout(None)
def request(subject, body, inbox):  # a JetStream API call (None: no leader yet)
    return call(b"PUB %s %s %d\r\n%s\r\n" % (subject, inbox, len(body), body), inbox, 1)
line()  # INFO
s.sendall(b'CONNECT {"verbose":false,"headers":true}\r\nSUB _INBOX.vt.* 1\r\n')
if sys.argv[2] == "create":  # as vigild makes it, but for a window of 1 s
    cfg = {"name": "VIGIL_vt", "subjects": ["vigil.vt.obs.>"], "storage": "file",
           "num_replicas": 3, "max_age": 48 * 3600 * 10**9, "duplicate_window": 10**9}
    for i in range(120):  # until the JetStream cluster has a leader
        r = request(b"$JS.API.STREAM.CREATE.VIGIL_vt", json.dumps(cfg).encode(),
                    b"_INBOX.vt.%d" % i)
        # 10058: made by an earlier attempt whose answer came late
        if r is not None and ("error" not in r or r["error"].get("err_code") == 10058):
            sys.exit(0)
        time.sleep(0.2)
    sys.exit(f"stream VIGIL_vt not created: {r}")
# entities no probe reads: the features compared with the single instance stay
ids = b"".join(bytes([len(x)]) + x for x in (b"m-zz", b"term-zz", b"dev-zz", b"198.51.100.9"))
now = time.time()
body = b"VOB1" + struct.pack("<I", 1) + struct.pack("<qQq", int(now * 1000) - 60000, 44,
    int(now * 1e6)) + ids
hdr = b"NATS/1.0\r\nNats-Msg-Id: zz-18ab3f-7\r\n\r\n"
def publish(inbox):  # JetStream's acknowledgement, or None
    return call(b"HPUB vigil.vt.obs.zz %s %d %d\r\n%s%s\r\n" % (inbox, len(hdr),
        len(hdr) + len(body), hdr, body), inbox, 5)
r = publish(b"_INBOX.vt.pub0")
if r is None or "error" in r or r.get("duplicate"):
    sys.exit(f"first copy not stored: {r}")
# again under the same id, until it is stored, not taken as a duplicate
# (the window runs from when the first was stored)
for i in range(1, 40):
    time.sleep(0.5)
    r = publish(b"_INBOX.vt.pub%d" % i)
    if r is not None and "error" not in r and not r.get("duplicate"):
        break
else:
    sys.exit(f"second copy not stored: {r}")
EOF
}
js_dup create

# ---- three replicas ----
# the stream on all three NATS nodes; the rest of [cluster] from the flags
printf '[cluster]\nname = vt\nstream_replicas = 3\n' >"$D/cluster.ini"
aport() { # the admin port of replica $1
	case $1 in
	a) echo "$A_a" ;;
	b) echo "$A_b" ;;
	*) echo "$A_c" ;;
	esac
}
# replica_start NAME [PORT REPLICA]: vigild NAME (a, b, c or x; data
# $D/dNAME, socket $D/NAME.ipc, log $D/NAME.log, pid in PID_NAME) as
# replica NAME with the admin port of aport, or as REPLICA with its admin
# port on PORT; waits until it is ready.
replica_start() {
	ap=${2:-$(aport "$1")}
	n=$(grep -sc "vigild: ready" "$D/$1.log") || n=0
	"$VIGILD" --config "$D/cluster.ini" --data "$D/d$1" --listen "ipc://$D/$1.ipc" \
	    --admin "127.0.0.1:$ap" --rules "$D/probe.rules" --nats "$NATS" --replica "${3:-$1}" \
	    >>"$D/$1.log" 2>&1 &
	case $1 in
	a) PID_a=$! ;;
	b) PID_b=$! ;;
	c) PID_c=$! ;;
	*) PID_x=$! ;;
	esac
	PIDS="$PIDS $!"
	i=0
	# one more ready line than before: a restarted replica's log has the
	# line of its earlier start
	until [ "$(grep -c "vigild: ready" "$D/$1.log" || true)" -gt "$n" ]; do
		i=$((i + 1)); [ "$i" -lt 300 ] || cl_fail "replica $1 not ready"; sleep 0.1
	done
}
A_a=$(vt_free_port) A_b=$(vt_free_port) A_c=$(vt_free_port)
for r in a b c; do replica_start "$r"; done
URLS="ipc://$D/a.ipc ipc://$D/b.ipc ipc://$D/c.ipc"

metric() { # metric REPLICA NAME
	ap=$(aport "$1")
	curl -sf "http://127.0.0.1:$ap/metrics" | awk -v n="$2" '$1 == n { print $2 }'
}

# Waits (up to 120 s) until every replica applied what the others published
# and nothing is queued: a count, not a time. EXTRA: observations every
# replica applied that no replica published (the test's own).
EXTRA=0
wait_applied() {
	i=0
	while :; do
		pa=$(metric a vigil_cluster_published_total) pb=$(metric b vigil_cluster_published_total)
		pc=$(metric c vigil_cluster_published_total)
		aa=$(metric a vigil_cluster_applied_total) ab=$(metric b vigil_cluster_applied_total)
		ac=$(metric c vigil_cluster_applied_total)
		q=$(( $(metric a vigil_cluster_queue_depth) + $(metric b vigil_cluster_queue_depth) +
		    $(metric c vigil_cluster_queue_depth) ))
		[ "$q" -eq 0 ] && [ "$aa" -eq $((pb + pc + EXTRA)) ] &&
		    [ "$ab" -eq $((pa + pc + EXTRA)) ] && [ "$ac" -eq $((pa + pb + EXTRA)) ] &&
		    [ $((pa + pb + pc)) -eq "$1" ] && return 0
		i=$((i + 1))
		[ "$i" -lt 1200 ] || cl_fail "not caught up after 120 s: published $pa/$pb/$pc, applied $aa/$ab/$ac, queued $q (want $1 published)"
		sleep 0.1
	done
}

check_all() { # check_all WHEN
	for r in a b c; do
		got=$(probe "ipc://$D/$r.ipc")
		[ "$got" = "$WANT" ] || cl_fail "$1: replica $r: $got, single instance: $WANT"
	done
	echo "cluster: $1: every replica agrees with the single instance"
}

send "$D/t1.jsonl"
wait_applied 40
# the traffic did spread: no replica scored it all (else the test proves nothing)
for r in a b c; do
	p=$(metric "$r" vigil_cluster_published_total)
	{ [ "$p" -gt 0 ] && [ "$p" -lt 40 ]; } || cl_fail "replica $r published $p of 40: the ring did not spread the cards"
done

# ---- a message that is not ours on the cluster's subjects: skipped, counted,
# one line naming the subject, the sequence and the offset ----
python3 - "$N1" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.recv(4096)  # INFO
s.sendall(b'CONNECT {"verbose":false}\r\nPUB vigil.vt.obs.intruder 5\r\nhello\r\nPING\r\n')
buf = b""
while b"PONG" not in buf:
    buf += s.recv(4096)
EOF
i=0
until [ "$(metric a vigil_cluster_bad_messages_total)" = 1 ] &&
    [ "$(metric b vigil_cluster_bad_messages_total)" = 1 ] &&
    [ "$(metric c vigil_cluster_bad_messages_total)" = 1 ]; do
	i=$((i + 1)); [ "$i" -lt 600 ] || cl_fail "the intruder's message was not counted as bad"; sleep 0.1
done
grep -q 'cluster: vigil.vt.obs.intruder sequence [0-9]*: offset 0: truncated header (magic "VOB1" and count); skipped' "$D/a.log" ||
    cl_fail "no line naming the bad message: $(grep intruder "$D/a.log")"

# ---- an observation from the future (from a replica whose clock is ahead,
# or whose guard is off): refused as a transaction would be
# (max_future_skew_ms), counted and logged; applied, it would empty the
# windows of merchant m-0, the shared device and IP on every replica for as
# long as it is ahead; one at INT64_MIN, outside the times a transaction
# may have, is refused the same way ----
seq=$(metric a vigil_cluster_last_sequence)
before=$(probe "ipc://$D/a.ipc")
python3 - "$N1" <<'EOF'
import socket, struct, sys, time
ids = b"".join(bytes([len(x)]) + x for x in (b"m-0", b"term-0", b"dev-shared", b"192.0.2.7"))
ahead = struct.pack("<qQq", int(time.time() * 1000) + 2 * 86400 * 1000, 42, int(time.time() * 1e6))
# no vigild sends this one: event time and commit time at INT64_MIN
lowest = struct.pack("<qQq", -2**63, 43, -2**63)
# past max_future_skew_ms (300 s) and the clocks' slack (1 s) when stored
soon = struct.pack("<qQq", int(time.time() * 1000) + 305 * 1000, 44, int(time.time() * 1e6))
body = b"VOB1" + struct.pack("<I", 3) + ahead + ids + lowest + ids + soon + ids
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.recv(4096)  # INFO
s.sendall(b'CONNECT {"verbose":false}\r\nPUB vigil.vt.obs.ahead %d\r\n' % len(body) + body +
    b'\r\nPING\r\n')
buf = b""
while b"PONG" not in buf:
    buf += s.recv(4096)
EOF
ahead_at=$(date +%s)
for r in a b c; do
	i=0
	until [ "$(metric "$r" vigil_cluster_last_sequence)" -gt "$seq" ]; do
		i=$((i + 1)); [ "$i" -lt 600 ] || cl_fail "replica $r: the observation from the future not handled"; sleep 0.1
	done
done
for r in a b c; do
	got=$(probe "ipc://$D/$r.ipc")
	[ "$got" = "$before" ] || cl_fail "after an observation 2 days ahead: replica $r: $got, before: $before"
done
for r in a b c; do
	[ "$(metric "$r" vigil_cluster_refused_total)" = 3 ] ||
	    cl_fail "replica $r: the observations from the future and from before 2000 not counted as refused"
done
grep -q 'cluster: vigil.vt.obs.ahead sequence [0-9]*: observation 1: event_time_ms [0-9]* is [0-9]* ms ([0-9.]* d) ahead of when the stream stored it; the limit is 300000 ms (max_future_skew_ms) and 1000 ms for the clocks; refused' "$D/a.log" ||
    cl_fail "no line naming the observation from the future: $(grep ahead "$D/a.log")"
grep -q 'cluster: vigil.vt.obs.ahead sequence [0-9]*: observation 2: event_time_ms -9223372036854775808 is outside \[2000-01-01, 2100-01-01); refused' "$D/a.log" ||
    cl_fail "no line naming the observation from before 2000: $(grep ahead "$D/a.log")"
grep -q 'cluster: vigil.vt.obs.ahead sequence [0-9]*: observation 3: event_time_ms [0-9]* is 30[0-9]* ms (5.[01] min) ahead of when the stream stored it' "$D/a.log" ||
    cl_fail "no line naming the observation 305 s ahead: $(grep ahead "$D/a.log")"
echo "cluster: observations 2 days and 305 s ahead and one at INT64_MIN: refused, counted, logged"

# ---- a batch stored twice: its first attempt stored but not acknowledged,
# the retry past the stream's duplicate window (1 s in this test, js_dup).
# Each replica applies it once, counts and logs the copy. ----
seq=$(metric a vigil_cluster_last_sequence)
aa=$(metric a vigil_cluster_applied_total) ab=$(metric b vigil_cluster_applied_total)
ac=$(metric c vigil_cluster_applied_total)
js_dup publish
for r in a b c; do
	i=0
	until [ "$(metric "$r" vigil_cluster_last_sequence)" -ge $((seq + 2)) ]; do
		i=$((i + 1))
		[ "$i" -lt 600 ] || cl_fail "replica $r: the batch stored twice not handled (last sequence $(metric "$r" vigil_cluster_last_sequence), want $((seq + 2)))"
		sleep 0.1
	done
done
da=$(( $(metric a vigil_cluster_applied_total) - aa ))
db=$(( $(metric b vigil_cluster_applied_total) - ab ))
dc=$(( $(metric c vigil_cluster_applied_total) - ac ))
[ "$da$db$dc" = 111 ] || cl_fail "a batch stored twice: applied $da/$db/$dc times (a/b/c), want once"
for r in a b c; do
	[ "$(metric "$r" vigil_cluster_duplicates_total)" = 1 ] ||
	    cl_fail "replica $r: the second copy not counted: $(metric "$r" vigil_cluster_duplicates_total)"
	grep -q "cluster: vigil.vt.obs.zz sequence $((seq + 2)): batch zz-18ab3f-7 was applied already" "$D/$r.log" ||
	    cl_fail "replica $r: no line naming the second copy: $(grep 'obs.zz' "$D/$r.log")"
done
EXTRA=1
echo "cluster: a batch stored twice (retried past the duplicate window): applied once by every replica"

# ---- NATS down mid-traffic: scoring goes on, degraded, ready ----
nats_stop
send "$D/t2.jsonl"
ap=$(aport a)
curl -s -o "$D/readyz.json" -w '%{http_code}' "http://127.0.0.1:$ap/readyz" >"$D/code" || true
[ "$(cat "$D/code")" = 200 ] || cl_fail "NATS down: /readyz $(cat "$D/code"), want 200: $(cat "$D/readyz.json")"
grep -q '"degraded": *true' "$D/readyz.json" || cl_fail "NATS down: not degraded: $(cat "$D/readyz.json")"
grep -q 'NATS unreachable' "$D/readyz.json" || cl_fail "NATS down: no reason: $(cat "$D/readyz.json")"
[ "$(metric a vigil_cluster_degraded)" = 1 ] || cl_fail "NATS down: vigil_cluster_degraded not 1"
nats_start 1; nats_start 2; nats_start 3
send "$D/t3.jsonl"
wait_applied 120
check_all "after NATS stopped and restarted"
curl -sf "http://127.0.0.1:$ap/healthz" | grep -q '"degraded": *false' ||
    cl_fail "caught up but still degraded: $(curl -s "http://127.0.0.1:$ap/healthz")"

# ---- a replica killed and restarted: the stream gives the others' part back ----
kill -9 "$PID_b"
wait "$PID_b" 2>/dev/null || true
# b's replay is judged by when the stream stored each message: the
# observation 305 s ahead is refused again although b's clock is now 7 s or
# more later (300 s or less behind its event time)
left=$((ahead_at + 7 - $(date +%s)))
[ "$left" -le 0 ] || sleep "$left"
replica_start b
i=0
until [ "$(metric b vigil_cluster_applied_total)" -eq \
    $(( $(metric a vigil_cluster_published_total) + $(metric c vigil_cluster_published_total) + EXTRA )) ]; do
	i=$((i + 1)); [ "$i" -lt 1200 ] || cl_fail "restarted replica b did not catch up"; sleep 0.1
done
check_all "after replica b was killed and restarted"
[ "$(metric b vigil_cluster_refused_total)" = 3 ] ||
    cl_fail "restarted replica b refused $(metric b vigil_cluster_refused_total) observations of the replay, want the 3 every replica refused live"

# ---- the stream lost: every NATS node's store deleted ----
pa=$(metric a vigil_cluster_published_total) pc=$(metric c vigil_cluster_published_total)
aa=$(metric a vigil_cluster_applied_total) ab=$(metric b vigil_cluster_applied_total)
ac=$(metric c vigil_cluster_applied_total)
nats_stop
rm -rf "$D/js1" "$D/js2" "$D/js3"
nats_start 1; nats_start 2; nats_start 3
# through a and c only: b scores nothing, so publishes nothing
URLS="ipc://$D/a.ipc ipc://$D/c.ipc"
send "$D/t4.jsonl"
i=0
while :; do
	da=$(( $(metric a vigil_cluster_published_total) - pa ))
	dc=$(( $(metric c vigil_cluster_published_total) - pc ))
	[ $((da + dc)) -eq 40 ] && [ "$(metric b vigil_cluster_applied_total)" -eq $((ab + 40)) ] &&
	    [ "$(metric a vigil_cluster_applied_total)" -eq $((aa + dc)) ] &&
	    [ "$(metric c vigil_cluster_applied_total)" -eq $((ac + da)) ] && break
	i=$((i + 1))
	[ "$i" -lt 600 ] || cl_fail "stream lost: after 60 s published $da (a) + $dc (c) of 40, applied $(( $(metric a vigil_cluster_applied_total) - aa ))/$(( $(metric b vigil_cluster_applied_total) - ab ))/$(( $(metric c vigil_cluster_applied_total) - ac )) (a/b/c)"
	sleep 0.1
done
grep -q "cluster: stream VIGIL_vt was created again" "$D/b.log" ||
    cl_fail "replica b: no line saying the stream was created again"
got_a=$(probe "ipc://$D/a.ipc") got_b=$(probe "ipc://$D/b.ipc") got_c=$(probe "ipc://$D/c.ipc")
{ [ "$got_a" = "$got_b" ] && [ "$got_b" = "$got_c" ]; } ||
    cl_fail "stream lost: the replicas disagree: a $got_a, b $got_b, c $got_c"
[ "$got_a" != "$WANT" ] || cl_fail "stream lost: the fourth part counted nowhere: $got_a"
echo "cluster: the stream lost and created again: every replica applies the others' new traffic"
URLS="ipc://$D/a.ipc ipc://$D/b.ipc ipc://$D/c.ipc"

# ---- NATS paused mid-publish (SIGSTOP): the batch offered when it stopped
# is stored when it resumes, and retried as it was, under its id: the
# observations that queued behind it go in the next batch. A retry that
# took them in under the first attempt's id would be dropped as a
# duplicate of it, and b and c would never apply them. ----
pa=$(metric a vigil_cluster_published_total)
ab=$(metric b vigil_cluster_applied_total) ac=$(metric c vigil_cluster_applied_total)
fa=$(metric a vigil_cluster_publish_failures_total)
for p in $NATS_PIDS; do kill -STOP "$p"; done
URLS="ipc://$D/a.ipc"
send "$D/t5.jsonl"
i=0
until [ "$(metric a vigil_cluster_publish_failures_total)" -gt "$fa" ]; do
	i=$((i + 1)); [ "$i" -lt 600 ] || cl_fail "NATS paused: replica a's publish never failed"
	sleep 0.1
done
send "$D/t6.jsonl"
for p in $NATS_PIDS; do kill -CONT "$p"; done
i=0
until [ $(( $(metric a vigil_cluster_published_total) - pa )) -eq 80 ] &&
    [ $(( $(metric b vigil_cluster_applied_total) - ab )) -eq 80 ] &&
    [ $(( $(metric c vigil_cluster_applied_total) - ac )) -eq 80 ]; do
	i=$((i + 1))
	[ "$i" -lt 1200 ] || cl_fail "NATS paused and resumed: after 120 s replica a published $(( $(metric a vigil_cluster_published_total) - pa )) of 80, b applied $(( $(metric b vigil_cluster_applied_total) - ab )), c $(( $(metric c vigil_cluster_applied_total) - ac ))"
	sleep 0.1
done
URLS="ipc://$D/a.ipc ipc://$D/b.ipc ipc://$D/c.ipc"
echo "cluster: NATS paused mid-publish: the batch retried as it was, the next one after it, all 80 applied"

# ---- two live processes under one replica name: each says so once
# (naming the subject and both nonces), counts it and is degraded, still
# ready; replica b's restart above, replaying its earlier start's messages,
# is no such thing ----
for r in a b c; do
	[ "$(metric "$r" vigil_cluster_replica_conflict_total)" = 0 ] ||
	    cl_fail "replica $r: a replica name conflict counted with none: $(grep 'another process' "$D/$r.log")"
done
A_x=$(vt_free_port)
replica_start x "$A_x" a
i=0
until grep -q "from the start of stream VIGIL_vt" "$D/x.log"; do
	i=$((i + 1)); [ "$i" -lt 300 ] || cl_fail "a second replica a: not subscribed"; sleep 0.1
done
sed 's/"txn_id": "t-/"txn_id": "u-/' "$D/t4.jsonl" >"$D/u.jsonl"
URLS="ipc://$D/x.ipc"
send "$D/t1.jsonl"
URLS="ipc://$D/a.ipc"
send "$D/u.jsonl"
i=0
until [ "$(metric a vigil_cluster_replica_conflict_total)" -gt 0 ] &&
    [ "$(curl -sf "http://127.0.0.1:$A_x/metrics" |
    awk '$1 == "vigil_cluster_replica_conflict_total" { print $2 }')" -gt 0 ]; do
	i=$((i + 1)); [ "$i" -lt 600 ] || cl_fail "two processes as replica a: no conflict counted"; sleep 0.1
done
line='cluster: vigil.vt.obs.a sequence [0-9]*: another process publishes on this replica'"'"'s subject (nonce [0-9a-f]*, this process'"'"'s [0-9a-f]*): two vigild run as replica a'
[ "$(grep -c "$line" "$D/a.log")" = 1 ] || cl_fail "replica a: want one line on the conflict: $(grep 'another process' "$D/a.log")"
[ "$(grep -c "$line" "$D/x.log")" = 1 ] || cl_fail "second a: want one line on the conflict: $(grep 'another process' "$D/x.log")"
na=$(grep -o "(nonce [0-9a-f]*, this process's [0-9a-f]*)" "$D/a.log")
nx=$(grep -o "(nonce [0-9a-f]*, this process's [0-9a-f]*)" "$D/x.log")
mine_a=${na##* } other_a=${na#(nonce } other_a=${other_a%%,*}
[ "$nx" = "(nonce ${mine_a%)}, this process's $other_a)" ] ||
    cl_fail "the two processes name different nonces: a $na, second a $nx"
[ "$other_a" != "${mine_a%)}" ] || cl_fail "one nonce for two processes: $na"
for ap in "$(aport a)" "$A_x"; do
	curl -s -o "$D/readyz.json" -w '%{http_code}' "http://127.0.0.1:$ap/readyz" >"$D/code" || true
	[ "$(cat "$D/code")" = 200 ] || cl_fail "replica name conflict: /readyz $(cat "$D/code"): $(cat "$D/readyz.json")"
	grep -q '"reason": *"another process runs as replica a (nonce [0-9a-f]*' "$D/readyz.json" ||
	    cl_fail "replica name conflict: /readyz does not say so: $(cat "$D/readyz.json")"
	grep -q '"degraded": *true' "$D/readyz.json" || cl_fail "replica name conflict: not degraded"
done
[ "$(metric a vigil_cluster_degraded)" = 1 ] || cl_fail "replica name conflict: vigil_cluster_degraded not 1"
for r in b c; do
	[ "$(metric "$r" vigil_cluster_replica_conflict_total)" = 0 ] ||
	    cl_fail "replica $r counted a conflict of replica a's"
done
stop_checked "$PID_x" "$D/x.log"
echo "cluster: two processes as replica a: each logs it once, counts it, is degraded"
stop_checked "$PID_a" "$D/a.log"
stop_checked "$PID_b" "$D/b.log"
stop_checked "$PID_c" "$D/c.log"
PIDS=""
grep -q "not published" "$D/a.log" "$D/b.log" "$D/c.log" &&
    cl_fail "a replica stopped with observations not published while NATS ran"
echo "cluster: ok"
