#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/tools/iface_agree.sh - every interface agrees (issue 25): the
# programs against docs/tools.md's tables, read from the page itself:
#   - "Exit status": each row of the case table (missing, no-column,
#     bad-rows) is run against every program the row names, with the same
#     input, and must exit with the row's code;
#   - "JSON errors": the error objects vigild (/v1/score and another admin
#     endpoint), vigil-score (a refused row and an unreachable replica),
#     vigil-rules check --json (a rule file that does not compile and one
#     that does not exist) and vigil-console (its API) write have exactly
#     the table's keys and types, and a code of the code table;
#   - rules_version (the declared version) and rules_hash (the content hash)
#     are the same in a /v1/score reply, /healthz, /v1/rules, the Python
#     client and vigild's log line;
#   - vigil-replay --results - writes the result lines on standard output;
#   - the bad-records and txn-conflict rows: a damaged archive record and a
#     txn_id reused for another transaction exit 1 like bad rows.
#
#   iface_agree.sh SOURCE_ROOT BUILD_ROOT
set -u

SRC=${1:?usage: iface_agree.sh SOURCE_ROOT BUILD_ROOT}
B=${2:?build root}
DOC="$SRC/docs/tools.md"
VT_NAME=iface_agree.sh VT_KEEP_GOING=1
# shellcheck source=tests/lib/vt.sh
. "$SRC/tests/lib/vt.sh"
T=$D
VPID=
CPID=
cleanup() {
	[ -n "$VPID" ] && kill "$VPID" 2>/dev/null && wait "$VPID" 2>/dev/null
	[ -n "$CPID" ] && kill "$CPID" 2>/dev/null && wait "$CPID" 2>/dev/null
	vt_cleanup
}
trap cleanup EXIT INT TERM
PY=/usr/bin/python3


# ---- the inputs, the same for every program ----
RULES="$SRC/rules/default.rules"
mkdir "$T/data" "$T/cdata"
printf 'alice admin alice-admin-token-000000001\n' >"$T/tokens"
chmod 600 "$T/tokens" # vigil-console refuses a tokens file other users can read
"$(vt_prog vigil-gen)" --cards 20 --days 1 -q -o "$T/good.csv" || fail "vigil-gen: exit $?"
# no txn_id column
cut -d, -f2- "$T/good.csv" >"$T/no-column.csv"
# two rows refused (a bad currency, a short row) among good ones
{
	head -n 6 "$T/good.csv"
	sed -n 7p "$T/good.csv" | sed 's/,EUR,/,EUX,/'
	echo "t-short,2024-01-01T10:00:00Z"
	sed -n '8,$p' "$T/good.csv"
} >"$T/bad-rows.csv"

# a txn_id that comes again for another card (ids of their own: vigild keeps them)
awk -F, -v OFS=, 'NR > 1 { $1 = "cf-" $1 } { print } NR == 2 { $3 = "cf-other-card"; dup = $0 }
	END { print dup }' "$T/good.csv" >"$T/txn-conflict.csv"
# an archive with a damaged record: good.csv archived by an offline --nightly
# replay, then bytes in the middle of its first segment overwritten
"$(vt_prog vigil-replay)" --csv "$T/good.csv" -r "$RULES" --nightly --no-model --work "$T/arch" -q \
	>/dev/null 2>"$T/err" || fail "vigil-replay --work (the archive): $(head -c 300 "$T/err")"
seg=$(ls "$T"/arch/archive/seg-*.log 2>/dev/null | head -n 1)
if [ -n "$seg" ]; then
	half=$(($(wc -c <"$seg") / 2))
	printf 'XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX' | dd of="$seg" bs=1 seek="$half" conv=notrunc 2>/dev/null
else
	fail "vigil-replay --work: no archive segment in $T/arch/archive"
fi

# a vigild for the programs that talk to one: nng on ipc, admin on a socket
"$(vt_prog vigild)" -r "$RULES" -d "$T/data" -l "ipc://$T/v.sock" --admin "unix:$T/admin.sock" \
	>"$T/vigild.log" 2>&1 &
VPID=$!
i=0
while ! grep -q 'vigild: ready' "$T/vigild.log" && [ $i -lt 600 ] && kill -0 "$VPID" 2>/dev/null; do
	sleep 0.1
	i=$((i + 1))
done
grep -q 'vigild: ready' "$T/vigild.log" || fail "vigild did not become ready: $(tail -5 "$T/vigild.log")"
URL="ipc://$T/v.sock"

# run_case CASE PROGRAM: the program against the case's input
run_case() {
	x=$(vt_prog "$2")
	case "$1:$2" in
	missing:vigild) "$x" --check-config -c "$T/none.ini" ;;
	missing:vigil-rebuild) "$x" -d "$T/none" -q ;;
	missing:vigil-archive) "$x" verify "$T/none" ;;
	missing:vigil-replay) "$x" --csv "$T/none.csv" -r "$RULES" -q ;;
	missing:vigil-score) "$x" -s "$URL" --csv "$T/none.csv" ;;
	missing:vigil-rules) "$x" check "$T/none.rules" ;;
	missing:vigil-console) "$x" -d "$T/cdata" -r "$RULES" --tokens "$T/none.tokens" \
		--state "$T/cstate" --listen 127.0.0.1:1 -q ;;
	no-column:vigil-replay) "$x" --csv "$T/no-column.csv" -r "$RULES" -q ;;
	no-column:vigil-score) "$x" -s "$URL" --csv "$T/no-column.csv" ;;
	bad-rows:vigil-replay) "$x" --csv "$T/bad-rows.csv" -r "$RULES" -q ;;
	bad-rows:vigil-score) "$x" -s "$URL" --dry-run --csv "$T/bad-rows.csv" ;;
	bad-records:vigil-replay) "$x" --archive "$T/arch" -r "$RULES" -q ;;
	bad-records:vigil-archive) "$x" verify -q "$T/arch/archive" ;;
	txn-conflict:vigil-replay) "$x" --csv "$T/txn-conflict.csv" -r "$RULES" -q ;;
	txn-conflict:vigil-score) "$x" -s "$URL" --csv "$T/txn-conflict.csv" ;;
	*) echo "iface_agree.sh: no command for case $1 of $2" >&2; return 99 ;;
	esac
}

# ---- the case table of docs/tools.md, "Exit status" ----
sed -n '/^## Exit status/,/^## /p' "$DOC" | grep -E '^\| `[a-z-]+` \|' |
	sed -E 's/^\| `([a-z-]+)` \|[^|]*\| ([0-9]) \| ([^|]*) \|$/\1 \2 \3/; s/, /,/g; s/ *$//' >"$T/cases"
[ "$(wc -l <"$T/cases")" -ge 3 ] || fail "docs/tools.md: the case table of Exit status not found"
ncase=0
while read -r c want progs; do
	for p in $(echo "$progs" | tr ',' ' '); do
		run_case "$c" "$p" >"$T/out" 2>"$T/err" </dev/null
		rc=$?
		[ "$rc" -eq "$want" ] || fail "$c: $p exits $rc, docs/tools.md says $want: $(head -c 300 "$T/err")"
		ncase=$((ncase + 1))
	done
done <"$T/cases"
[ "$ncase" -ge 15 ] || fail "only $ncase program runs from the case table"

# ---- the error object of docs/tools.md, "JSON errors" ----
sed -n '/^## JSON errors/,/^## /p' "$DOC" | grep -E '^\| `[a-z.]+` \| (string|integer|object) \|' |
	sed -E 's/^\| `([a-z.]+)` \| ([a-z]+) \|.*/\1 \2/' >"$T/keys"
sed -n '/^## JSON errors/,/^## /p' "$DOC" | grep -E '^\| `[A-Z_]+` \|' |
	sed -E 's/^\| `([A-Z_]+)` \|.*/\1/' >"$T/codes"
[ "$(wc -l <"$T/keys")" -ge 8 ] || fail "docs/tools.md: the error object's key table not found"
[ "$(wc -l <"$T/codes")" -ge 10 ] || fail "docs/tools.md: the error code table not found"

# check_errors NAME FILE WANT-CODE JQ-LIKE-PATH: every error object found at
# PATH in each JSON document of FILE (one per line, or one whole) follows
# the tables; at least one has code WANT-CODE
check_errors() {
	"$PY" - "$T/keys" "$T/codes" "$1" "$2" "$3" "$4" <<'PY' || fail "$1: $(head -c 600 "$2")"
import json, sys
keys = dict(l.split() for l in open(sys.argv[1]))
codes = set(open(sys.argv[2]).read().split())
name, path, want, where = sys.argv[3:7]
text = open(path).read()
try:
    docs = [json.loads(text)]
except ValueError:
    docs = [json.loads(l) for l in text.splitlines() if l.strip()]
types = {"string": str, "integer": int, "object": dict}
found = []
for d in docs:
    objs = [d]
    for step in where.split("."):
        nxt = []
        for o in objs:
            if step == "[]":
                nxt.extend(o if isinstance(o, list) else [])
            elif isinstance(o, dict) and step in o:
                nxt.append(o[step])
        objs = nxt
    found.extend(objs)
assert found, "%s: no error object at %s" % (name, where)
for e in found:
    assert isinstance(e, dict), "%s: error is %r, not an object" % (name, e)
    for k in ("code", "message"):
        assert k in e, "%s: no %s in %r" % (name, k, e)
    for k, v in list(e.items()) + [("where." + k, v) for k, v in e.get("where", {}).items()]:
        assert k in keys, "%s: key %s is not in docs/tools.md's table: %r" % (name, k, e)
        assert isinstance(v, types[keys[k]]) and not isinstance(v, bool), \
            "%s: %s is %r, docs/tools.md says %s" % (name, k, v, keys[k])
    assert e["code"] in codes, "%s: code %s is not in docs/tools.md's table" % (name, e["code"])
    assert "where" not in e or e["where"], "%s: an empty where" % name
    assert not ("line" in e.get("where", {}) and "offset" in e.get("where", {})), name
    # the message says what; the place is where's, never repeated in it
    f = e.get("where", {}).get("field", "")
    for p in filter(None, {f, f.split(".")[-1]}):
        assert not e["message"].startswith(p + ": "), "%s: message repeats %s: %r" % (name, p, e)
assert want in [e["code"] for e in found], "%s: no error with code %s: %r" % (name, want, found)
PY
}

# vigild: /v1/score and another admin endpoint
curl -s --unix-socket "$T/admin.sock" -X POST -d '{"txn_id":"e-1","card_id":"c","merchant_id":"m","amount_minor":100,"currency":"EUX","event_time":"2026-11-01T10:00:00Z"}' \
	http://vigild/v1/score >"$T/score.json" || fail "POST /v1/score: curl $?"
check_errors "vigild /v1/score" "$T/score.json" INVALID error
"$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["status"]=="INVALID" and d["txn_id"]=="e-1" and d["error"]["where"]=={"field":"txn.currency"}, d' \
	"$T/score.json" || fail "/v1/score: status, txn_id or where: $(cat "$T/score.json")"
# a txn_id scored before for another transaction: refused on txn.txn_id
for amt in 100 200; do
	curl -s --unix-socket "$T/admin.sock" -X POST -d '{"txn_id":"e-dup","card_id":"c","merchant_id":"m","amount_minor":'"$amt"',"currency":"EUR","event_time":"2026-11-01T10:00:00Z"}' \
		http://vigild/v1/score >"$T/dup.json" || fail "POST /v1/score: curl $?"
done
check_errors "vigild /v1/score, txn_id reused" "$T/dup.json" INVALID error
curl -s --unix-socket "$T/admin.sock" http://vigild/nope >"$T/nope.json"
check_errors "vigild GET /nope" "$T/nope.json" NOT_FOUND error
for body in '{"generation":1,"bogus":1}' '{"generation":"x"}' '{"generation":1,"expect_current":-1}'; do
	curl -s --unix-socket "$T/admin.sock" -X POST -d "$body" \
		http://vigild/v1/generations/current >"$T/gen.json"
	check_errors "vigild POST /v1/generations/current $body" "$T/gen.json" INVALID error
done

# vigil-score: the refused rows, and a replica that is not there
run_case bad-rows vigil-score >"$T/rows.jsonl" 2>/dev/null
grep -v '"status":"OK"' "$T/rows.jsonl" >"$T/rows.err"
[ "$(wc -l <"$T/rows.err")" -eq 2 ] || fail "vigil-score: want 2 error lines: $(cat "$T/rows.err")"
check_errors "vigil-score bad rows" "$T/rows.err" INVALID error
grep -q '"where":{"field":"currency","file":"'"$T"'/bad-rows.csv","line":7}' "$T/rows.err" ||
	fail "vigil-score: the refused currency's where: $(cat "$T/rows.err")"
"$(vt_prog vigil-score)" -s "ipc://$T/none.sock" --timeout 100 --attempts 1 \
	--txn '{"txn_id":"e-2","card_id":"c","merchant_id":"m","amount":"1","currency":"EUR"}' >"$T/down.json" 2>/dev/null
check_errors "vigil-score unreachable" "$T/down.json" UNAVAILABLE error

# vigil-rules check --json
printf 'rule broken {\n  when amount > > 5\n  score 1\n  reason "x"\n}\n' >"$T/bad.rules"
"$(vt_prog vigil-rules)" check --json "$T/bad.rules" "$T/none.rules" >"$T/check.json" 2>/dev/null
check_errors "vigil-rules check --json" "$T/check.json" INVALID "files.[].errors.[]"
check_errors "vigil-rules check --json, missing" "$T/check.json" NOT_FOUND "files.[].errors.[]"

# vigil-console: its API without a token
CPORT=$(vt_free_port)
"$(vt_prog vigil-console)" -d "$T/cdata" -r "$RULES" --tokens "$T/tokens" --state "$T/cstate" \
	--listen "127.0.0.1:$CPORT" 2>"$T/console.log" &
CPID=$!
i=0
while ! grep -q 'listening on' "$T/console.log" 2>/dev/null && [ $i -lt 300 ] && kill -0 "$CPID" 2>/dev/null; do
	sleep 0.1
	i=$((i + 1))
done
curl -s "http://127.0.0.1:$CPORT/api/queue" >"$T/console.json" || fail "console: curl $?: $(cat "$T/console.log")"
check_errors "vigil-console /api/queue" "$T/console.json" UNAUTHENTICATED error
curl -s -H 'Authorization: Bearer alice-admin-token-000000001' \
	"http://127.0.0.1:$CPORT/api/queue?colour=red" >"$T/console2.json"
check_errors "vigil-console /api/queue?colour=red" "$T/console2.json" INVALID error
grep -q '"where":{"field":"colour"}' "$T/console2.json" || fail "console: where: $(cat "$T/console2.json")"

# ---- rules_version and rules_hash: the same in every place ----
# the declared version and the content hash of the file and its lists, in a
# /v1/score reply, /healthz, /v1/rules (content_hash), the Python client's
# reply and vigild's log line
curl -s --unix-socket "$T/admin.sock" -X POST -d '{"txn_id":"rv-1","card_id":"c","merchant_id":"m","amount":"1","currency":"EUR","event_time":"2026-11-01T10:00:00Z"}' \
	http://vigild/v1/score >"$T/ok.json"
curl -s --unix-socket "$T/admin.sock" http://vigild/healthz >"$T/health.json"
curl -s --unix-socket "$T/admin.sock" http://vigild/v1/rules >"$T/rules.json"
ver=$(sed -n 's/^version "\(.*\)".*/\1/p' "$RULES")
hash=$("$(vt_prog vigil-rules)" check --json "$RULES" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["files"][0]["hash"])')
"$PY" - "$T/ok.json" "$T/health.json" "$T/rules.json" "$ver" "$hash" <<'PY' || fail "rules_version/rules_hash: $(cat "$T/ok.json" "$T/health.json")"
import json, sys
ok, health, rules = (json.load(open(p)) for p in sys.argv[1:4])
ver, h = sys.argv[4:6]
assert len(h) == 32, h
for name, d in (("/v1/score", ok), ("/healthz", health)):
    assert d["rules_version"] == ver, (name, d["rules_version"], ver)
    assert d["rules_hash"] == h, (name, d["rules_hash"], h)
assert rules["version"] == ver and rules["content_hash"] == h, rules
PY
grep -q "rules: loaded .*rules_version \"$ver\", rules_hash $hash" "$T/vigild.log" ||
	fail "vigild's log does not name rules_version \"$ver\", rules_hash $hash: $(grep 'rules:' "$T/vigild.log")"
PYTHONPATH="$B/clients/python" "$PY" - "$URL" "$ver" "$hash" <<'PY' || fail "the Python client's rules_version/rules_hash"
import sys
import vigil_client as vc
with vc.Client(sys.argv[1], timeout=5) as c:
    r = c.score({"txn_id": "rv-2", "card_id": "c", "merchant_id": "m", "amount": "1",
                 "currency": "EUR"}, dry_run=True)
    h = c.health()
assert (r.rules_version, r.rules_hash) == (sys.argv[2], sys.argv[3]), r
assert (h.rules_version, h.rules_hash) == (sys.argv[2], sys.argv[3]), h
PY
# vigil-score (the C client): a reply's and a health answer's
"$(vt_prog vigil-score)" --server "$URL" --dry-run \
	--txn '{"txn_id":"rv-3","card_id":"c","merchant_id":"m","amount":"1","currency":"EUR"}' \
	>"$T/sc.json" 2>&1 || fail "vigil-score --dry-run: $(cat "$T/sc.json")"
"$(vt_prog vigil-score)" --server "$URL" health >"$T/sch.json" 2>&1 ||
	fail "vigil-score health: $(cat "$T/sch.json")"
"$PY" - "$T/sc.json" "$T/sch.json" "$ver" "$hash" <<'PY' || fail "vigil-score's rules_version/rules_hash: $(cat "$T/sc.json" "$T/sch.json")"
import json, sys
for p in sys.argv[1:3]:
    d = json.loads(open(p).read().splitlines()[0])
    assert (d["rules_version"], d["rules_hash"]) == (sys.argv[3], sys.argv[4]), (p, d)
PY

# ---- the keys of docs/vigild.md's ADMIN HTTP and docs/console.md's API tables ----
# every key a reply has is in its row, and every key of the row is in the
# reply but those that depend on the setup (TLS, a model, shipping, not
# ready); a row's keys are its `identifiers` outside parentheses, in the
# part of the cell that describes the answer
curl -s -H 'Authorization: Bearer alice-admin-token-000000001' "http://127.0.0.1:$CPORT/api/me" >"$T/cme.json"
curl -s -H 'Authorization: Bearer alice-admin-token-000000001' "http://127.0.0.1:$CPORT/api/queue" >"$T/cqueue.json"
curl -s -H 'Authorization: Bearer alice-admin-token-000000001' "http://127.0.0.1:$CPORT/api/status" >"$T/cstatus.json"
"$PY" - "$SRC/docs/vigild.md" "$SRC/docs/console.md" "$T" <<'PY' || fail "the API tables' keys"
import json, re, sys
vd, cd, t = open(sys.argv[1]).read(), open(sys.argv[2]).read(), sys.argv[3]
def cell(doc, section, row):
    sec = doc.split(section, 1)[1].split("\n## ", 1)[0]
    for line in sec.splitlines():
        if line.startswith("| `" + row + "` |") or line.startswith("| `" + row + "?"):
            return line.split(" | ")[-1]
    raise AssertionError("no row %s in %s" % (row, section))
def keys(text):
    while re.search(r"\([^()]*\)", text):
        text = re.sub(r"\([^()]*\)", "", text)
    return set(re.findall(r"`([a-z_]+)`", text))
def agree(name, doc, got, optional=()):
    got = set(json.load(open(t + "/" + got)))
    assert got <= doc, "%s: undocumented keys %s" % (name, sorted(got - doc))
    assert doc - got <= set(optional), "%s: documented, not there: %s" % (name, sorted(doc - got - set(optional)))
c = cell(vd, "## ADMIN HTTP", "GET /healthz")
agree("vigild /healthz", keys(c), "health.json", ("tls", "archive_ship", "reason"))
agree("vigild /v1/rules", keys(cell(vd, "## ADMIN HTTP", "GET /v1/rules")), "rules.json")
c = cell(vd, "## ADMIN HTTP", "POST /v1/score")
agree("vigild /v1/score", keys(c.split("200 with", 1)[1].split("A transaction without")[0]), "ok.json", ("model",))
for row, f in (("GET /api/me", "cme.json"), ("GET /api/queue", "cqueue.json"), ("GET /api/status", "cstatus.json")):
    agree("vigil-console " + row, keys(cell(cd, "\n## API", row).split(" | ")[-1].split(";")[0]), f)
PY

# ---- vigil-replay --results -: standard output, as --csv - and --summary - ----
(cd "$T" && "$(vt_prog vigil-replay)" --csv good.csv -r "$RULES" -q --results - >"$T/res.jsonl" 2>"$T/err") ||
	fail "vigil-replay --results -: $(cat "$T/err")"
[ -e "$T/-" ] && fail "vigil-replay --results - wrote a file named -"
[ "$(wc -l <"$T/res.jsonl")" -eq "$(($(wc -l <"$T/good.csv") - 1))" ] ||
	fail "vigil-replay --results -: $(wc -l <"$T/res.jsonl") lines for $(($(wc -l <"$T/good.csv") - 1)) rows"
grep -vq '^{"txn_id":' "$T/res.jsonl" && fail "vigil-replay --results -: not only result lines: $(grep -v '^{"txn_id":' "$T/res.jsonl" | head -3)"

vt_done "$ncase program runs agree with docs/tools.md's exit codes; the error objects of vigild, vigil-score, vigil-rules and vigil-console with its JSON errors"
