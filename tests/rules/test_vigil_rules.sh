#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/rules/test_vigil_rules.sh - vigil-rules as scripts see it: exit
# codes (0 ok, 1 findings, 2 usage or I/O), the error format with line,
# column, source line and caret, JSON output, fmt -w/--check, explain and
# failing cases. Usage: test_vigil_rules.sh PATH/TO/vigil-rules
set -u
V=$(cd "$(dirname "$1")" && pwd)/$(basename "$1") # absolute: some checks run in ROOT
ROOT=${VIGIL_SOURCE_ROOT:-.}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0

fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}

# expect_rc WANT CMD...: runs CMD, output in $T/out and $T/err
expect_rc() {
	want=$1
	shift
	"$@" >"$T/out" 2>"$T/err"
	rc=$?
	[ "$rc" = "$want" ] || fail "exit $rc, want $want: $* ($(head -c 300 "$T/err"))"
}

expect_grep() {
	grep -qF -- "$1" "$2" || fail "expected '$1' in $2: $(head -c 400 "$2")"
}

# expect_line TEXT FILE: FILE is exactly the one line TEXT
expect_line() {
	[ "$(cat "$2")" = "$1" ] || fail "expected exactly '$1' in $2: $(head -c 400 "$2")"
}

# help and usage
expect_rc 0 "$V" --help
expect_grep "usage: vigil-rules COMMAND" "$T/out"
for c in check fmt explain test; do
	expect_rc 0 "$V" "$c" --help
	expect_grep "usage: vigil-rules $c" "$T/out"
done
expect_rc 2 "$V"
expect_rc 2 "$V" frobnicate
expect_rc 2 "$V" check
expect_rc 2 "$V" check --bogus x
# a file that cannot be read is one "FILE: error: ..." line, as vigild and
# the library say it, and exit 2 (I/O), whatever the command
expect_rc 2 "$V" check "$T/no-such-file.rules"
expect_line "$T/no-such-file.rules: error: cannot open: No such file or directory" "$T/err"
mkdir "$T/dir.rules"
expect_rc 2 "$V" check "$T/dir.rules"
expect_line "$T/dir.rules: error: not a regular file" "$T/err"
expect_rc 2 "$V" fmt "$T/dir.rules"
expect_line "$T/dir.rules: error: not a regular file" "$T/err"

# check: a broken file gives every error with line, column and caret
cat >"$T/bad.rules" <<'R'
rule a {
  when amount > > 5
  score 1
  reason "x"
}
rule b { when card.count_7 > 1 score 1 reason "y" }
R
# a rule file that does not compile: exit 2, as in vigild and every tool (docs/tools.md)
expect_rc 2 "$V" check "$T/bad.rules"
expect_grep "$T/bad.rules:2:17: error: expected an expression, found '>'" "$T/err"
expect_grep "      when amount > > 5" "$T/err"
expect_grep "                    ^" "$T/err"
expect_grep "$T/bad.rules:6:15: error: unknown feature 'card.count_7' (did you mean 'card.count_7d'?)" "$T/err"
expect_rc 2 "$V" check --json "$T/bad.rules"
expect_grep '"ok": false' "$T/out"
# each error the one error object of docs/tools.md: code, message, where
python3 - "$T/out" "$T/bad.rules" <<'PY' || fail "check --json: errors are not the docs/tools.md error object: $(head -c 600 "$T/out")"
import json, sys
doc = json.load(open(sys.argv[1]))
errs = doc["files"][0]["errors"]
assert errs[0] == {"code": "INVALID", "message": "expected an expression, found '>'",
                   "where": {"file": sys.argv[2], "line": 2, "column": 17}}, errs[0]
assert errs[1]["where"] == {"file": sys.argv[2], "line": 6, "column": 15}, errs[1]
PY
# a file that cannot be read is in the JSON too, with its code
expect_rc 2 "$V" check --json "$T/none.rules"
expect_grep '"code": "NOT_FOUND"' "$T/out"
expect_grep "\"file\": \"$T/none.rules\"" "$T/out"
# options before or after the command and its files, as git takes them
for args in "--json check $T/bad.rules" "check $T/bad.rules --json" "-j check $T/bad.rules"; do
	# shellcheck disable=SC2086 # the words are the test
	expect_rc 2 "$V" $args
	expect_grep '"ok": false' "$T/out"
done
expect_rc 0 "$V" -q check "$ROOT/rules/default.rules"
[ -s "$T/out" ] && fail "-q before check printed: $(head -c 200 "$T/out")"
# several files: one bad makes the exit 1
expect_rc 2 "$V" check "$ROOT/rules/default.rules" "$T/bad.rules"
expect_rc 0 "$V" check --json "$ROOT/rules/default.rules"
expect_grep '"ok": true' "$T/out"
# the version the file declares, whatever it is today
ver=$(sed -n 's/^version "\(.*\)".*/\1/p' "$ROOT/rules/default.rules")
[ -n "$ver" ] || { echo "no version line in default.rules"; exit 1; }
expect_grep "\"version\": \"$ver\"" "$T/out"

# fmt: --check, -w, idempotence, refuses broken files
printf 'rule a{when amount>1 score 1 reason "x"} # c\n' >"$T/ugly.rules"
expect_rc 1 "$V" fmt --check "$T/ugly.rules"
expect_rc 0 "$V" fmt "$T/ugly.rules"
cp "$T/out" "$T/once.rules"
expect_rc 0 "$V" fmt -w "$T/ugly.rules"
cmp -s "$T/ugly.rules" "$T/once.rules" || fail "fmt -w differs from fmt"
expect_rc 0 "$V" fmt --check "$T/ugly.rules"
expect_grep "# c" "$T/ugly.rules"
# -w through a symbolic link rewrites its target, mode kept; the link stays
printf 'rule a{when amount>1 score 1 reason "x"} # c\n' >"$T/target.rules"
chmod 640 "$T/target.rules"
mkdir "$T/links"
ln -s ../target.rules "$T/links/link.rules"
expect_rc 0 "$V" fmt -w "$T/links/link.rules"
[ -L "$T/links/link.rules" ] || fail "fmt -w replaced the symbolic link by a file"
cmp -s "$T/target.rules" "$T/once.rules" || fail "fmt -w through a link: the target is not formatted"
[ "$(stat -c %a "$T/target.rules")" = 640 ] || fail "fmt -w: mode $(stat -c %a "$T/target.rules"), want 640"
for f in "$T"/links/* "$T"/links/.[!.]*; do
	[ "$f" = "$T/links/link.rules" ] || [ ! -e "$f" ] || fail "fmt -w left $f beside the link"
done
# -w - : standard input has no file to rewrite (it made a file named "-")
(cd "$T" && expect_rc 2 "$V" fmt -w - <"$T/ugly.rules")
expect_line "vigil-rules fmt: -w: standard input cannot be rewritten in place; give a FILE (see --help)" "$T/err"
[ -e "$T/-" ] && fail "fmt -w - created a file named -"
expect_rc 2 "$V" fmt "$T/bad.rules"
expect_grep "bad.rules:2:17: error:" "$T/err"

# explain: text and JSON, inline and from a file
TXN='{"txn":{"txn_id":"t1","card_id":"tok_blocked_0001","merchant_id":"m1","currency":"EUR","amount":12,"event_time":"2026-11-20T14:00:00Z","country":"FR","channel":"ecom"},"features":{"card.count_90d":2}}'
expect_rc 0 "$V" explain "$ROOT/rules/default.rules" --txn "$TXN"
expect_grep "decision: decline  score: 100" "$T/out"
expect_grep "FIRED   blocked_card  (+100, active)" "$T/out"
expect_grep 'card_id = "tok_blocked_0001"' "$T/out"
printf '%s' "$TXN" >"$T/txn.json"
expect_rc 0 "$V" explain --json "$ROOT/rules/default.rules" --txn "@$T/txn.json"
expect_grep '"decision": "decline"' "$T/out"
expect_grep '"outcome": "true"' "$T/out"
expect_grep '"source": "fallback"' "$T/out"
# without --data the output is what explain printed before it scored
# through the pipeline (files made by that version; paths relative to ROOT).
# explain.rules is a frozen copy of rules/default.rules (2026.11.4), so that
# editing the shipped rules does not change these golden outputs.
for c in blocked model; do
	(cd "$ROOT" && "$V" explain tests/rules/data/explain.rules --txn "@tests/rules/data/explain-$c.json") >"$T/out" ||
		fail "explain $c: exit $?"
	cmp -s "$T/out" "$ROOT/tests/rules/data/explain-$c.out" || fail "explain $c: output differs: $(diff "$ROOT/tests/rules/data/explain-$c.out" "$T/out" | head -20)"
	(cd "$ROOT" && "$V" explain --json tests/rules/data/explain.rules --txn "@tests/rules/data/explain-$c.json") >"$T/out" ||
		fail "explain --json $c: exit $?"
	cmp -s "$T/out" "$ROOT/tests/rules/data/explain-$c.json.out" || fail "explain --json $c: output differs: $(diff "$ROOT/tests/rules/data/explain-$c.json.out" "$T/out" | head -20)"
done
# the bands shown are those that decided: default.rules names its bands by
# tuned thresholds, so tuned values (the input's here, a generation's with
# --data) replace the file's fallbacks 40 and 80
cat >"$T/bands.json" <<'EOF2'
{"txn": {"txn_id": "t1", "card_id": "tok_c1", "merchant_id": "m1", "currency": "EUR",
         "amount": 700, "event_time": "2026-11-20T14:00:00Z", "mcc": 5411, "country": "FR",
         "channel": "pos"},
 "features": {"card.count_90d": 12},
 "thresholds": {"amount_high_for_mcc": {"5411": 500}, "review_at": 25, "decline_at": 62.5}}
EOF2
expect_rc 0 "$V" explain "$ROOT/rules/default.rules" --txn "@$T/bands.json"
expect_grep "decision: review  score: 30  points: 30  (review at 25, decline at 62.5)" "$T/out"
expect_rc 0 "$V" explain --json "$ROOT/rules/default.rules" --txn "@$T/bands.json"
expect_grep '"review": 25.0,' "$T/out"
expect_grep '"decline": 62.5' "$T/out"
# --txn takes the one transaction shape (vigil-score, /v1/score): the
# transaction itself as well as the {"txn":..,"features":..} envelope
PLAIN='{"txn_id":"t1","card_id":"tok_blocked_0001","merchant_id":"m1","currency":"EUR","amount":12,"event_time":"2026-11-20T14:00:00Z","country":"FR","channel":"ecom"}'
expect_rc 0 "$V" explain "$ROOT/rules/default.rules" --txn "$PLAIN"
expect_grep "FIRED   blocked_card  (+100, active)" "$T/out"
expect_rc 0 "$V" --json explain --txn "$PLAIN" "$ROOT/rules/default.rules"
expect_grep '"decision": "decline"' "$T/out"
# without event_time: the time it is read, as every JSON reader does
expect_rc 0 "$V" explain "$ROOT/rules/default.rules" --txn '{"txn_id":"t1","card_id":"c","merchant_id":"m1","currency":"EUR","amount":12}'
expect_rc 2 "$V" explain "$ROOT/rules/default.rules" --txn '{"txn":{"card_id":"x"}}'
expect_grep "vigil-rules: --txn: txn." "$T/err"
# the reader's error: its place (txn.FIELD, or txn for the object), then what
expect_rc 2 "$V" explain "$ROOT/rules/default.rules" --txn '{"txn":{"card_id":7}}'
expect_line "vigil-rules: --txn: txn.card_id: must be a string" "$T/err"
expect_rc 2 "$V" explain "$ROOT/rules/default.rules" --txn '{"txn":[1]}'
expect_line "vigil-rules: --txn: txn: the transaction must be a JSON object" "$T/err"
expect_rc 2 "$V" explain "$ROOT/rules/default.rules" --txn "$(echo "$TXN" | sed 's/card.count_90d/card.count_9d/')"
expect_grep "features.card.count_9d: unknown feature" "$T/err"
expect_rc 2 "$V" explain "$ROOT/rules/default.rules" --txn '{not json'
# a misspelt key of the input is an error, not dropped with its values
expect_rc 2 "$V" explain "$ROOT/rules/default.rules" --txn "$(echo "$TXN" | sed 's/"features"/"feature"/')"
expect_line "vigil-rules: --txn: feature: unknown key (one of txn, features, thresholds)" "$T/err"
# a --txn file that cannot be read: the flag's error, with the program's name
expect_rc 2 "$V" explain "$ROOT/rules/default.rules" --txn "@$T/no-such.json"
expect_line "vigil-rules: --txn $T/no-such.json: No such file or directory" "$T/err"
# the input of explain --help, copied as it is, runs on the shipped rules
expect_rc 0 "$V" explain --help
python3 - "$T/out" "$TXN" >"$T/help-txn" <<'PY' || fail "explain --help: no \"thresholds\" example: $(cat "$T/out")"
import json, re, sys
text = open(sys.argv[1]).read()
# the example's "thresholds": {...} object, over one or more lines
m = re.search(r'"thresholds": (\{[^{}]*(\{[^{}]*\}[^{}]*)*\})', text)
doc = json.loads(sys.argv[2])
doc["thresholds"] = json.loads(m.group(1))
print(json.dumps(doc))
PY
expect_rc 0 "$V" explain "$ROOT/rules/default.rules" --txn "@$T/help-txn"
expect_grep "zscore_high = 3.5 (threshold, global)" "$T/out"
expect_rc 2 "$V" explain "$ROOT/rules/default.rules"

# test: failing cases are reported with their line and exit 1
cat >"$T/c.cases" <<'C'
# a comment
{"name": "passes", "txn": {"txn_id":"t1","card_id":"c","merchant_id":"m","currency":"EUR","amount":1,"event_time":"2026-11-20T14:00:00Z","country":"IR"}, "expect": {"decision": "decline", "hits": ["sanctioned_country"]}}
{"name": "wrong decision", "txn": {"txn_id":"t2","card_id":"c","merchant_id":"m","currency":"EUR","amount":1,"event_time":"2026-11-20T14:00:00Z"}, "expect": {"decision": "review"}}
{"name": "right points", "txn": {"txn_id":"t3","card_id":"c","merchant_id":"m","currency":"EUR","amount":1,"event_time":"2026-11-20T14:00:00Z","country":"IR"}, "expect": {"hits": ["sanctioned_country"], "points": 1}}
C
expect_rc 1 "$V" test "$ROOT/rules/default.rules" "$T/c.cases"
expect_grep "3 cases, 1 passed, 2 failed" "$T/out"
expect_grep "c.cases:3: FAIL wrong decision: decision allow, expected review (score 0)" "$T/err"
expect_grep "c.cases:4: FAIL right points: points " "$T/err"
# a line that is not JSON: a cases file that does not parse is exit 2, the others still run
{ cat "$T/c.cases"; printf '{broken\n'; } >"$T/bad.cases"
expect_rc 2 "$V" test "$ROOT/rules/default.rules" "$T/bad.cases"
expect_grep "4 cases, 1 passed, 3 failed" "$T/out"
expect_grep "bad.cases:5:" "$T/err"
# a key given twice is refused, as vigil-score refuses it: read as its last
# value, a case expecting "decline" then "allow" passed on an allow
{ sed -n 2p "$T/c.cases"; printf '%s\n' '{"name":"twice","txn":{"txn_id":"t1","card_id":"c","merchant_id":"m","currency":"EUR","amount":1,"event_time":"2026-11-20T14:00:00Z"},"expect":{"decision":"decline","decision":"allow"}}'; } >"$T/dup.cases"
expect_rc 2 "$V" test "$ROOT/rules/default.rules" "$T/dup.cases"
expect_grep "2 cases, 1 passed, 1 failed" "$T/out"
expect_line "$T/dup.cases:2:175: error: duplicate object key near '\"decision\"'" "$T/err"
expect_rc 2 "$V" explain "$ROOT/rules/default.rules" --txn '{"txn_id":"t1","card_id":"c","merchant_id":"m","currency":"EUR","amount":1,"amount":90000}'
expect_line "vigil-rules: --txn:1:83: duplicate object key near '\"amount\"'" "$T/err"
# a case that is JSON but not a case is an error in CASES, not a FAIL: a
# misspelt expect key made the case pass whatever the rules decided
CT='"txn": {"txn_id":"t1","card_id":"c","merchant_id":"m","currency":"EUR","amount":1,"event_time":"2026-11-20T14:00:00Z"}'
for c in \
    "{$CT, \"expect\": {\"decison\": \"decline\", \"hits\": []}}|expect.decison: unknown key (one of decision, hits, shadow, points, score)" \
    "{$CT, \"expct\": {\"hits\": []}}|expct: unknown key (one of name, txn, features, thresholds, expect)" \
    '[1, 2]|a case must be a JSON object with "txn" and "expect"' \
    '{"name": "x", "expect": {"hits": []}}|txn: missing (the transaction object)' \
    "{$CT}|expect: missing (an object with \"decision\" or \"hits\")" \
    "{$CT, \"expect\": {\"score\": 0}}|expect: \"decision\" or \"hits\" is required" \
    "{$CT, \"expect\": {\"hits\": [], \"points\": \"abc\"}}|expect.points: must be an integer" \
    "{$CT, \"expect\": {\"hits\": [], \"score\": \"0\"}}|expect.score: must be a number" \
    "{$CT, \"expect\": {\"hits\": \"a\"}}|expect.hits: must be an array of rule names" \
    "{$CT, \"expect\": {\"hits\": [], \"shadow\": [1]}}|expect.shadow: must be an array of rule names" \
    "{$CT, \"expect\": {\"decision\": \"deny\"}}|expect.decision: must be allow, review or decline" \
    "{$CT, \"features\": {\"card.count_9d\": 1}, \"expect\": {\"hits\": []}}|features.card.count_9d: unknown feature; did you mean 'card.count_7d'?"; do
	{ sed -n 2p "$T/c.cases"; printf '%s\n' "${c%%|*}"; } >"$T/shape.cases"
	expect_rc 2 "$V" test "$ROOT/rules/default.rules" "$T/shape.cases"
	expect_line "$T/shape.cases:2: error: ${c#*|}" "$T/err"
	expect_grep "2 cases, 1 passed, 1 failed" "$T/out"
done
# test --help names every expect key the command reads
expect_rc 0 "$V" test --help
for k in decision hits shadow points score; do
	expect_grep "\"$k\"" "$T/out"
done
expect_rc 0 "$V" test -v "$ROOT/rules/default.rules" "$ROOT/rules/default.cases"
expect_grep "ok   established card" "$T/out"
printf '# nothing\n' >"$T/empty.cases"
expect_rc 2 "$V" test "$ROOT/rules/default.rules" "$T/empty.cases"
expect_grep "empty.cases: no cases" "$T/err"
# -q: a valid file prints nothing; failures only, no summary line
expect_rc 0 "$V" check -q "$ROOT/rules/default.rules"
[ -s "$T/out" ] && fail "check -q printed: $(cat "$T/out")"
expect_rc 1 "$V" test -q "$ROOT/rules/default.rules" "$T/c.cases"
grep -q "cases," "$T/out" && fail "test -q printed the summary line"
expect_grep "FAIL wrong decision" "$T/err"
expect_rc 0 "$V" -V
expect_line "vigil-rules $(sed -n "s/^  version : '\(.*\)',/\1/p" "$ROOT/meson.build")" "$T/out"

if [ "$fails" -ne 0 ]; then
	echo "$fails failures" >&2
	exit 1
fi
echo "vigil-rules: all CLI checks passed"
