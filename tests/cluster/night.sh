#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/cluster/night.sh - the nightly of a cluster on a real job engine
# (docs/operations.md, "The nightly of a cluster"): a local Slurm (munged,
# slurmctld and slurmd started here, in a temporary directory), a 3-node NATS
# JetStream cluster (the stream on all three), three vigild replicas shipping their sealed archive
# segments (deploy/vigil-ship) to one shared directory, vigil-gen traffic
# through the C client's ring (vigil-score with three --server), one replica
# killed (kill -9) and restarted while the traffic runs, labels on the way.
# Then:
#   - 0 acknowledged transactions lost: every txn_id answered OK is in a
#     replica's archive;
#   - every sealed segment is shipped, and the shipped copies verify;
#   - deploy/slurm/vigil-night.sh runs 3 partitions as a job array and the
#     merge as a dependent job; each txn_id of the shipped archives is
#     counted once (records_read = distinct txn_ids; duplicates = the rest);
#   - the night equals a single-machine vigil-rebuild of the same archives
#     byte for byte (card, merchant, terminal and threshold tables, model);
#   - the two running replicas serve the new generation (hot swap), and the
#     third, stopped during the night, gets it at start
#     (vigil-install-generation before vigild, as the unit's drop-in does);
#   - a night whose partition 1 fails: the merge job is cancelled, --wait
#     exits 1, no generation changes anywhere, the failed night's partial
#     files are kept;
#   - two nights of the same date submitted at once with --force: both
#     succeed, merged one after the other (two new generations, the same
#     tables), each merged night's partial files removed;
#   - the Kubernetes CronJob's script (deploy/k8s/night.yaml, its paths
#     moved into this directory) run as pods 0, 1 and 2 of an Indexed Job,
#     pod 0 first: it waits for the other two, merges (MERGE_OPTS=--force)
#     the same tables, and ignores partial files of an earlier Job.
# Skipped (exit 77) where nats-server or Slurm (slurmctld, slurmd, munged,
# sbatch) is missing.
set -eu
VT_NAME=night
VT_LOG=night.log
# shellcheck source=tests/lib/vt.sh
. "${VIGIL_SOURCE_ROOT:?VIGIL_SOURCE_ROOT not set}/tests/lib/vt.sh"

# --help prints the script's whole header, its exit codes last (no Slurm needed)
"$S/deploy/slurm/vigil-night.sh" --help >"$D/night-help" 2>&1 ||
	{ echo "night: FAIL: vigil-night.sh --help exited $?"; exit 1; }
tail -1 "$D/night-help" | grep -q "1 failed, 2 usage" ||
	{ echo "night: FAIL: vigil-night.sh --help stops short: $(tail -1 "$D/night-help")"; exit 1; }

for p in nats-server slurmctld slurmd munged sbatch squeue scontrol mdb_dump; do
	command -v "$p" >/dev/null 2>&1 || {
		echo "night: SKIP: $p not installed (Debian packages nats-server, slurmctld, slurmd, slurm-client, munge, lmdb-utils; deploy/bootstrap.sh installs them)"
		exit 77
	}
done
VIGILD="$B/server/vigild"
SCORE="$B/tools/score/vigil-score"
GEN="$B/tools/gen/vigil-gen"
ARCH="$B/tools/archive/vigil-archive"
RULES="$S/rules/default.rules"

PIDS="" # everything started here, stopped at exit
pid_r2='' # start() sets pid_r1, pid_r2, pid_r3 (eval)
DPIDS="" # the daemons (munged, slurm, nats)
nt_cleanup() {
	for p in $PIDS $DPIDS; do kill -TERM "$p" 2>/dev/null || true; done
	for p in $PIDS $DPIDS; do wait "$p" 2>/dev/null || true; done
	rm -rf "$D"
}
trap nt_cleanup EXIT INT TERM
nt_fail() {
	echo "night: $*" >&2
	for f in "$D"/*.log "$D"/build/logs/*.log; do
		[ -f "$f" ] && tail -n 12 "$f" | sed "s|^|  $(basename "$f"): |" >&2
	done
	exit 1
}
wait_for() { # wait_for WHAT CMD...: up to 60 s
	what=$1
	shift
	i=0
	until "$@" >/dev/null 2>&1; do
		i=$((i + 1)); [ "$i" -lt 600 ] || nt_fail "no $what after 60 s"; sleep 0.1
	done
}

# ---- Slurm on this machine: munged, slurmctld, slurmd ----
mkdir -p "$D/munge" "$D/slurm/state" "$D/slurm/spool"
chmod 700 "$D/munge"
dd if=/dev/urandom of="$D/munge/key" bs=1024 count=1 2>/dev/null
chmod 600 "$D/munge/key"
munged -F -f --key-file="$D/munge/key" --socket="$D/munge/sock" --pid-file="$D/munge/pid" \
    --log-file="$D/munged.log" --seed-file="$D/munge/seed" >>"$D/munged.log" 2>&1 &
DPIDS="$DPIDS $!"
wait_for "munge socket" test -S "$D/munge/sock"
HOST=$(hostname -s)
ME=$(id -un)
CP=$(vt_free_port) NP=$(vt_free_port)
export SLURM_CONF="$D/slurm/slurm.conf"
cat >"$SLURM_CONF" <<EOT
ClusterName=vigiltest
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CP
SlurmdPort=$NP
SlurmUser=$ME
SlurmdUser=$ME
AuthType=auth/munge
AuthInfo=socket=$D/munge/sock
CredType=cred/munge
StateSaveLocation=$D/slurm/state
SlurmdSpoolDir=$D/slurm/spool
SlurmctldPidFile=$D/slurm/slurmctld.pid
SlurmdPidFile=$D/slurm/slurmd.pid
SlurmctldLogFile=$D/slurmctld.log
SlurmdLogFile=$D/slurmd.log
ProctrackType=proctrack/pgid
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
MinJobAge=600
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=vt Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
EOT
slurmctld -D -i >>"$D/slurmctld.log" 2>&1 &
DPIDS="$DPIDS $!"
wait_for "slurmctld answering" scontrol ping
slurmd -D >>"$D/slurmd.log" 2>&1 &
DPIDS="$DPIDS $!"
wait_for "an idle Slurm node" sh -c 'sinfo -h -o %t | grep -q idle'
echo "night: Slurm up (controller port $CP)"

# ---- a 3-node NATS cluster with JetStream, and three replicas ----
N1=$(vt_free_port) N2=$(vt_free_port) N3=$(vt_free_port)
R1=$(vt_free_port) R2=$(vt_free_port) R3=$(vt_free_port)
ROUTES="nats://127.0.0.1:$R1,nats://127.0.0.1:$R2,nats://127.0.0.1:$R3"
for i in 1 2 3; do
	case $i in
	1) np=$N1 rp=$R1 ;;
	2) np=$N2 rp=$R2 ;;
	*) np=$N3 rp=$R3 ;;
	esac
	nats-server -a 127.0.0.1 -p "$np" -n "n$i" -js -sd "$D/js$i" --cluster_name vn \
	    --cluster "nats://127.0.0.1:$rp" --routes "$ROUTES" >>"$D/nats-$i.log" 2>&1 &
	DPIDS="$DPIDS $!"
	wait_for "NATS node $i" python3 -c "import socket; socket.create_connection(('127.0.0.1', $np), 1)"
done
NATS="nats://127.0.0.1:$N1,nats://127.0.0.1:$N2,nats://127.0.0.1:$N3"
mkdir -p "$D/shared"
for r in r1 r2 r3; do
	mkdir -p "$D/$r"
	# the observations' stream on all three NATS nodes
	printf '[store]\nsegment_max_mb = 1\nship_command = %s %%p %s/%%r\nship_retry_max_s = 1\n[cluster]\nstream_replicas = 3\n' \
	    "$S/deploy/vigil-ship" "$D/shared" >"$D/$r.ini"
done
A1=$(vt_free_port) A2=$(vt_free_port) A3=$(vt_free_port)
admin_of() { case $1 in r1) echo "$A1" ;; r2) echo "$A2" ;; *) echo "$A3" ;; esac; }
start() { # start rN: vigild in the background, waits for ready; its pid in pid_rN
	touch "$D/$1.log"
	n=$(grep -c "vigild: ready" "$D/$1.log" || true)
	"$VIGILD" --config "$D/$1.ini" --data "$D/$1" --listen "ipc://$D/$1.ipc" \
	    --admin "127.0.0.1:$(admin_of "$1")" --rules "$RULES" --nats "$NATS" \
	    --replica "$1" >>"$D/$1.log" 2>&1 &
	eval "pid_$1=$!"
	PIDS="$PIDS $!"
	i=0
	until [ "$(grep -c "vigild: ready" "$D/$1.log")" -gt "$n" ]; do
		i=$((i + 1)); [ "$i" -lt 600 ] || nt_fail "$1 not ready"; sleep 0.1
	done
}
stop() { # stop rN: SIGTERM, must exit 0
	eval "p=\$pid_$1"
	kill -TERM "$p"
	st=0
	wait "$p" || st=$?
	[ "$st" -eq 0 ] || nt_fail "$1 exited $st after SIGTERM"
}
for r in r1 r2 r3; do start "$r"; done
URLS="-s ipc://$D/r1.ipc -s ipc://$D/r2.ipc -s ipc://$D/r3.ipc"

# ---- traffic: yesterday, through the ring; r2 killed and restarted ----
DAY=$(date -u -d yesterday +%Y-%m-%d)
TODAY=$(date -u +%Y-%m-%d)
# Enough traffic that every replica seals a 1 MiB segment (about 1,500
# records) whatever share the ring gives it: with 8,000 cards r2, killed
# and restarted, was left 1,589 of 8,405 once and sealed none.
"$GEN" --cards 16000 --days 1 --start "$DAY" --fraud-rate 0.01 -q -o "$D/all.csv"
N=$(($(wc -l <"$D/all.csv") - 1))
HALF=$((N * 6 / 10))
head -n $((HALF + 1)) "$D/all.csv" >"$D/a.csv"
{ head -n 1 "$D/all.csv"; tail -n +$((HALF + 2)) "$D/all.csv"; } >"$D/b.csv"
# A failover retry by hand: 5 transactions scored by r1 and again by r3 (a
# client that got no answer from r1 in time retries on the next replica):
# in two archives, to be counted once by the night.
i=0
while [ "$i" -lt 5 ]; do
	for r in r1 r3; do
		"$SCORE" -q -s "ipc://$D/$r.ipc" --txn-id "dup-$i" --card "c-dup-$i" --merchant m-dup \
		    --amount 10 --currency EUR --time "${DAY}T12:00:0${i}Z" >>"$D/dup.out" 2>&1 ||
		    nt_fail "dup-$i on $r: $(tail -1 "$D/dup.out")"
	done
	i=$((i + 1))
done
# labels of frauds (known late yesterday), each to its card's replica, sent
# first: they are in the first segments sealed and shipped
python3 - "$D/all.csv" >"$D/labels.txt" <<'PY'
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["label"] == "1"]
for r in rows[:25]:
    print(r["txn_id"], r["card_id"])
PY
while read -r t c; do
	# shellcheck disable=SC2086
	"$SCORE" -q $URLS label "$t" --fraud --card "$c" --time "${DAY}T23:59:00Z" >>"$D/labels.out" 2>&1 ||
	    nt_fail "label $t: $(tail -1 "$D/labels.out")"
done <"$D/labels.txt"
: >"$D/a.out"
# shellcheck disable=SC2086 # URLS: several options
"$SCORE" -q $URLS --attempts 3 --timeout 2000 --csv "$D/a.csv" >"$D/a.out" 2>"$D/a.err" &
SP=$!
i=0
until [ "$(wc -l <"$D/a.out")" -ge $((HALF / 3)) ]; do
	i=$((i + 1)); [ "$i" -lt 600 ] || nt_fail "traffic did not start: $(cat "$D/a.err")"; sleep 0.1
done
kill -9 "$pid_r2"
wait "$pid_r2" 2>/dev/null || true
echo "night: r2 killed after $(wc -l <"$D/a.out") replies"
sleep 1
start r2
st=0
wait "$SP" || st=$?
[ "$st" -eq 0 ] || nt_fail "vigil-score (first part, r2 killed) exited $st: $(tail -3 "$D/a.err")"
# shellcheck disable=SC2086
"$SCORE" -q $URLS --csv "$D/b.csv" >"$D/b.out" 2>"$D/b.err" ||
    nt_fail "vigil-score (second part): $(tail -3 "$D/b.err")"
cat "$D/a.out" "$D/b.out" >"$D/replies"
OK=$(grep -c '"status":"OK"' "$D/replies" || true)
[ "$OK" -eq "$N" ] || nt_fail "$OK of $N transactions answered OK"
echo "night: $N transactions scored, $(grep -c '"attempts":[2-9]' "$D/replies" || true) after a retry, $(wc -l <"$D/labels.txt") labels;" \
    "by replica: $(sed -n 's/.*"replica":"ipc:[^"]*\/\(r[0-9]\)\.ipc".*/\1/p' "$D/replies" | sort | uniq -c | tr -s ' \n' ' ')"

# ---- 0 acknowledged transactions lost ----
for r in r1 r2 r3; do "$ARCH" dump "$D/$r/archive" >"$D/$r.dump" || nt_fail "vigil-archive dump $r"; done
python3 - "$D/replies" "$D/r1.dump" "$D/r2.dump" "$D/r3.dump" <<'PY' || nt_fail "acknowledged transactions lost"
import json, sys
acked = {json.loads(l)["txn_id"] for l in open(sys.argv[1]) if '"status":"OK"' in l}
have = set()
for f in sys.argv[2:]:
    for l in open(f):
        r = json.loads(l)
        if r.get("type") == "score":
            have.add(r["txn"]["txn_id"])
lost = acked - have
if lost:
    sys.exit(f"{len(lost)} acknowledged, in no archive: {sorted(lost)[:5]}")
PY

# ---- every sealed segment shipped, and whole ----
for r in r1 r2 r3; do
	# the last sealed segment shipped (the unshipped gauge is as of the last
	# scan, up to 2 s old)
	last=$(find "$D/$r/archive" -maxdepth 1 -name 'seg-*.idx' | sort | tail -1 |
	    sed 's/.*seg-[0-9]*-0*\([0-9]*\)\.idx$/\1/')
	[ -n "$last" ] || nt_fail "$r sealed no segment"
	wait_for "$r's segments all shipped" sh -c \
	    "curl -sf http://127.0.0.1:$(admin_of $r)/metrics | grep -q '^vigil_archive_shipped_through $last\$'"
	[ -n "$(find "$D/shared/$r" -name 'seg-*.idx' 2>/dev/null)" ] || nt_fail "$r shipped nothing"
	(cd "$D/shared/$r" && sha256sum -c --quiet ./*.sha256) || nt_fail "$r: shipped files do not verify"
done
"$ARCH" verify "$D/shared/r1" "$D/shared/r2" "$D/shared/r3" >"$D/verify.out" 2>&1 ||
    nt_fail "shipped archives: $(cat "$D/verify.out")"

# ---- the night on Slurm: r3 stopped meanwhile ----
stop r3
mkdir -p "$D/bin" "$D/build"
ln -s "$B/batch/vigil-rebuild" "$D/bin/vigil-rebuild"
ln -s "$S/deploy/vigil-install-generation" "$D/bin/vigil-install-generation"
VIGIL_ARCHIVES="$D/shared" VIGIL_BUILD="$D/build" VIGIL_REPLICAS="$D/r1 $D/r2" \
    VIGIL_RULES="$RULES" VIGIL_PARTS=3 VIGIL_BIN="$D/bin" VIGIL_REBUILD_OPTS="--threads 1" \
    "$S/deploy/slurm/vigil-night.sh" --as-of "$TODAY" --wait >"$D/night.log" 2>&1 ||
    nt_fail "vigil-night.sh failed"
grep -q "partitions job [0-9]* (array of 3), merge job [0-9]*" "$D/night.log" || nt_fail "no job ids"
for i in 0 1 2; do
	grep -q '"partition": *"'"$i"'/3"' "$D/build/logs/part-$TODAY-$i.log" ||
	    nt_fail "partition $i did not run as array task $i"
done
python3 - "$D/build/logs/merge-$TODAY.log" >"$D/merge.json" <<'PY' || nt_fail "no merge summary"
import json, sys
t = open(sys.argv[1]).read()
print(json.dumps(json.JSONDecoder().raw_decode(t[t.index("{"):])[0]))
PY
GENN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["generation"])' "$D/merge.json") ||
    nt_fail "merge summary unreadable"
echo "night: generation $GENN built by Slurm"

# ---- each txn_id counted once; equal to one machine's rebuild ----
mkdir -p "$D/single"
"$B/batch/vigil-rebuild" --data "$D/single" --archive "$D/shared" --as-of "$TODAY" \
    --rules "$RULES" --threads 1 --json --quiet >"$D/single.json" 2>"$D/single.err" ||
    nt_fail "single-machine rebuild: $(cat "$D/single.err")"
for r in r1 r2 r3; do "$ARCH" dump "$D/shared/$r" >>"$D/shipped.dump"; done
python3 - "$D/shipped.dump" "$D/single.json" "$D/merge.json" "$TODAY" <<'PY' || nt_fail "txn_ids not counted once"
import json, sys, datetime
asof = int(datetime.datetime.strptime(sys.argv[4], "%Y-%m-%d").replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)
scores, ids = 0, set()
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r.get("type") == "score" and asof - 90 * 86400000 <= r["event_time_ms"] < asof:
        scores += 1
        ids.add(r["txn"]["txn_id"])
single = json.load(open(sys.argv[2]))
merged = json.load(open(sys.argv[3]))
assert single["records_read"] == len(ids), (single["records_read"], len(ids))
assert single["duplicates"] == scores - len(ids) >= 5, (single["duplicates"], scores, len(ids))
assert merged["records_read"] == len(ids), (merged["records_read"], len(ids))
assert single["labels"]["read"] == merged["labels"]["read"] > 0, (single["labels"], merged["labels"])
print(f"night: {len(ids)} distinct txn_ids in {scores} shipped score records, each counted once "
      f"({single['duplicates']} duplicates dropped)")
PY
SG=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["generation"])' "$D/single.json")
for db in card merchant terminal threshold; do
	mdb_dump -s "$db" "$D/single/features/gen-$(printf %06d "$SG")" >"$D/single.$db" ||
	    nt_fail "mdb_dump $db (single)"
	mdb_dump -s "$db" "$D/build/features/gen-$(printf %06d "$GENN")" >"$D/night.$db" ||
	    nt_fail "mdb_dump $db (night)"
	[ "$(wc -l <"$D/night.$db")" -gt 5 ] || nt_fail "table $db empty"
	cmp -s "$D/single.$db" "$D/night.$db" || nt_fail "table $db: the night differs from one machine's rebuild"
done
"$B/batch/vigil-rebuild" --data "$D/single" --dump-model >"$D/single.model" 2>&1 || true
"$B/batch/vigil-rebuild" --data "$D/build" --dump-model >"$D/night.model" 2>&1 || true
sed -i "s|$D/single|DATA|; s|$D/build|DATA|" "$D/single.model" "$D/night.model"
cmp -s "$D/single.model" "$D/night.model" || nt_fail "model: the night differs from one machine's"
echo "night: the Slurm night equals one machine's rebuild (tables and model)"

# ---- every replica serves it ----
served() { # served rN: features_generation of /healthz
	curl -sf "http://127.0.0.1:$(admin_of "$1")/healthz" |
	    python3 -c 'import json,sys; print(json.load(sys.stdin)["features_generation"])'
}
for r in r1 r2; do
	wait_for "$r serving generation $GENN" sh -c "[ \"\$(curl -sf http://127.0.0.1:$(admin_of $r)/healthz | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"features_generation\"])')\" = $GENN ]"
done
[ ! -f "$D/r3/features/CURRENT" ] || [ "$(cat "$D/r3/features/CURRENT")" != "gen-$(printf %06d "$GENN")" ] ||
    nt_fail "r3 was not to be installed by the merge job"
"$S/deploy/vigil-install-generation" "$D/build" "$D/r3" \
    >>"$D/night.log" 2>&1 || nt_fail "r3: pull at start failed"
start r3
[ "$(served r3)" = "$GENN" ] || nt_fail "r3 serves generation $(served r3), not $GENN"
# once more: nothing to do
"$S/deploy/vigil-install-generation" "$D/build" "$D/r3" ||
    nt_fail "a second install of the same generation failed"
echo "night: every replica serves generation $GENN"

# ---- a partition fails: no merge, nothing changes ----
mkdir -p "$D/badbin"
cat >"$D/badbin/vigil-rebuild" <<EOT
#!/bin/sh
for a; do [ "\$a" = 1/3 ] && { echo "vigil-rebuild: partition 1 fails (test)" >&2; exit 1; }; done
exec "$B/batch/vigil-rebuild" "\$@"
EOT
chmod +x "$D/badbin/vigil-rebuild"
ln -s "$S/deploy/vigil-install-generation" "$D/badbin/vigil-install-generation"
# a site's night.env: its defaults never undo what the environment says
# (VIGIL_PARTS=2 from the file would make the failing partition 1/3 none)
printf 'VIGIL_PARTS=2\nVIGIL_REBUILD_OPTS="--threads 2"\n' >"$D/night.env"
night() { # night BIN LOG: vigil-night.sh --force --wait for today, every replica
	VIGIL_NIGHT_ENV="$D/night.env" \
	VIGIL_ARCHIVES="$D/shared" VIGIL_BUILD="$D/build" VIGIL_REPLICAS="$D/r1 $D/r2 $D/r3" \
	    VIGIL_RULES="$RULES" VIGIL_PARTS=3 VIGIL_BIN="$1" VIGIL_REBUILD_OPTS="--threads 1" \
	    VIGIL_MERGE_OPTS="--threads 1" "$S/deploy/slurm/vigil-night.sh" --as-of "$TODAY" \
	    --force --wait >"$2" 2>&1
}
cur_all() { for d in build r1 r2 r3; do cat "$D/$d/features/CURRENT"; done | tr '\n' ' '; }
before=$(cur_all)
if night "$D/badbin" "$D/bad.log"; then nt_fail "a night with a failed partition succeeded"; fi
grep -q "merge job [0-9]* ended CANCELLED" "$D/bad.log" ||
    nt_fail "failed partition: the merge job was not cancelled: $(cat "$D/bad.log")"
[ "$(cur_all)" = "$before" ] || nt_fail "failed partition: CURRENT changed: $before -> $(cur_all)"
badjob=$(sed -n 's/.*partitions job \([0-9]*\) .*/\1/p' "$D/bad.log")
[ -f "$D/build/parts/$TODAY/$badjob/part-0.vpart" ] && [ ! -f "$D/build/parts/$TODAY/$badjob/part-1.vpart" ] ||
    nt_fail "failed partition: partial files of job $badjob: $(ls -R "$D/build/parts")"
echo "night: a failed partition: merge cancelled, no generation changed"

# ---- two nights of one date at once, forced: both merge, one after the other ----
night "$D/bin" "$D/n1.log" &
N1P=$!
night "$D/bin" "$D/n2.log" &
N2P=$!
st1=0 st2=0
wait "$N1P" || st1=$?
wait "$N2P" || st2=$?
[ "$st1" -eq 0 ] && [ "$st2" -eq 0 ] ||
    nt_fail "two nights at once: exit $st1 and $st2: $(cat "$D/n1.log" "$D/n2.log")"
want="gen-$(printf %06d $((GENN + 2)))"
for d in build r1 r2 r3; do
	[ "$(cat "$D/$d/features/CURRENT")" = "$want" ] || nt_fail "two nights at once: $d: $(cat "$D/$d/features/CURRENT"), want $want"
done
# (the thresholds move on from the previous generation's: not compared)
for db in card merchant terminal; do
	mdb_dump -s "$db" "$D/build/features/$want" >"$D/again.$db" || nt_fail "mdb_dump $db ($want)"
	cmp -s "$D/night.$db" "$D/again.$db" || nt_fail "table $db: $want differs from generation $GENN"
done
[ "$(ls "$D/build/parts/$TODAY")" = "$badjob" ] ||
    nt_fail "merged nights' partial files not removed: $(ls "$D/build/parts/$TODAY")"
for r in r1 r2 r3; do
	wait_for "$r serving $want" sh -c "[ \"\$(curl -sf http://127.0.0.1:$(admin_of $r)/healthz | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"features_generation\"])')\" = $((GENN + 2)) ]"
done
for r in r1 r2 r3; do stop "$r"; done
PIDS=""
echo "night: two nights at once merged one after the other; every replica serves generation $((GENN + 2))"

# ---- the Kubernetes Job's script: three pods of an Indexed Job ----
python3 - "$S/deploy/k8s/night.yaml" "$D" >"$D/k8s-night.sh" <<'PY' || nt_fail "no script in night.yaml"
import sys, yaml
cj = yaml.safe_load(open(sys.argv[1]))
c = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
script = c["command"][c["command"].index("-c") + 1]
print(script.replace("/srv/vigil-build", sys.argv[2] + "/build")
      .replace("/srv/vigil-archive", sys.argv[2] + "/shared"))
PY
# an earlier Job's partial files, damaged: never to be merged by this one
printf 'damaged' >"$D/build/parts/$TODAY/part-1.vpart"
printf 'damaged' >"$D/build/parts/$TODAY/part-2.vpart"
pod() { # pod I: the Job's container, index I
	PATH="$D/bin:$PATH" JOB_COMPLETION_INDEX=$1 PARTS=3 RULES="$RULES" MERGE_OPTS=--force \
	    JOB=vigil-night-test OMP_WAIT_POLICY=passive sh "$D/k8s-night.sh" >"$D/pod-$1.log" 2>&1
}
pod 0 &
P0=$!
pod 1 || nt_fail "k8s pod 1: $(cat "$D/pod-1.log")"
pod 2 || nt_fail "k8s pod 2: $(cat "$D/pod-2.log")"
st=0
wait "$P0" || st=$?
[ "$st" -eq 0 ] || nt_fail "k8s pod 0 exited $st: $(cat "$D/pod-0.log")"
want="gen-$(printf %06d $((GENN + 3)))"
[ "$(cat "$D/build/features/CURRENT")" = "$want" ] ||
    nt_fail "k8s night: CURRENT $(cat "$D/build/features/CURRENT"), want $want"
for db in card merchant terminal; do
	mdb_dump -s "$db" "$D/build/features/$want" >"$D/k8s.$db" || nt_fail "mdb_dump $db ($want)"
	cmp -s "$D/night.$db" "$D/k8s.$db" || nt_fail "table $db: the k8s night differs from generation $GENN"
done
[ ! -e "$D/build/parts/$TODAY/vigil-night-test" ] || nt_fail "k8s night: its partial files not removed"
# a pod of the Job the CronJob scheduled yesterday (its name ends in that
# time, in minutes), retried today, builds yesterday's partition
YESTERDAY=$(date -u -d yesterday +%Y-%m-%d)
YJOB=vigil-night-$(( $(date -u -d "$YESTERDAY 02:30" +%s) / 60 ))
PATH="$D/bin:$PATH" JOB_COMPLETION_INDEX=1 PARTS=3 RULES="$RULES" MERGE_OPTS='' \
    JOB=$YJOB OMP_WAIT_POLICY=passive sh "$D/k8s-night.sh" >"$D/pod-y.log" 2>&1 ||
    nt_fail "k8s pod 1 of $YJOB: $(cat "$D/pod-y.log")"
[ -f "$D/build/parts/$YESTERDAY/$YJOB/part-1.vpart" ] ||
    nt_fail "k8s pod of $YJOB: no partition as of $YESTERDAY: $(ls -R "$D/build/parts")"
rm -rf "$D/build/parts/$YESTERDAY"
echo "night: OK: the Kubernetes Job's script builds the same night"
