#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/tools/cli_vocab.sh - every program against docs/tools.md's flag and
# exit-status tables (issue 18, "one vocabulary"):
#   - each short letter a program's --help shows is the table's, with the
#     table's long name, and each program has the flags the table gives it;
#   - -h equals --help, -V and --version print "PROGRAM VERSION";
#   - --help's exit-status list has the table's names and the codes the
#     table gives the program;
#   - an unknown option, and a stray argument, exit 2 with one line
#     "PROGRAM: ... (see --help)";
#   - a rule file that does not load exits 2 in every program that reads
#     one; --json prints JSON on stdout and takes no file;
#   - a second vigild on a data directory in use exits 3 (busy).
#
#   cli_vocab.sh SOURCE_ROOT BUILD_ROOT VERSION
set -u

SRC=${1:?usage: cli_vocab.sh SOURCE_ROOT BUILD_ROOT VERSION}
B=${2:?build root}
VERSION=${3:?version}
DOC="$SRC/docs/tools.md"
VT_NAME=cli_vocab.sh VT_KEEP_GOING=1
# shellcheck source=tests/lib/vt.sh
. "$SRC/tests/lib/vt.sh"
T=$D
VPID=
cleanup() {
	[ -n "$VPID" ] && kill "$VPID" 2>/dev/null && wait "$VPID" 2>/dev/null
	vt_cleanup
}
trap cleanup EXIT INT TERM

# ---- the tables, from docs/tools.md ----
# flags: "SHORT LONG PROGRAMS" (SHORT "-" when none); programs comma-joined
sed -n '/^## Flags/,/^## /p' "$DOC" | grep -E '^\| `-[A-Za-z]` \| `--' |
	sed -E 's/^\| `-([A-Za-z])` \| `--([a-z-]+)` \|[^|]*\|[^|]*\| ([^|]*) \|$/\1 \2 \3/' |
	sed -E 's/, /,/g; s/ *$//' >"$T/flags"
[ "$(wc -l <"$T/flags")" -ge 10 ] || fail "docs/tools.md: flag table not found ($(wc -l <"$T/flags") rows)"
# flags that take a value: "LONG PROGRAMS"
sed -n '/^## Flags/,/^## /p' "$DOC" | grep -E '^\| `-[A-Za-z]` \| `--[a-z-]+` \| [A-Z]' |
	sed -E 's/^\| `-[A-Za-z]` \| `--([a-z-]+)` \|[^|]*\|[^|]*\| ([^|]*) \|$/\1 \2/' |
	sed -E 's/, /,/g; s/ *$//' >"$T/valued"
[ "$(wc -l <"$T/valued")" -ge 5 ] || fail "docs/tools.md: no flags with a value found"
grep -vqE '^[A-Za-z] [a-z-]+ [a-z,-]+$' "$T/flags" && fail "docs/tools.md: unreadable flag rows: $(grep -vE '^[A-Za-z] [a-z-]+ [a-z,-]+$' "$T/flags")"
# exit codes: "CODE NAME"
sed -n '/^## Exit status/,/^## /p' "$DOC" | grep -E '^\| [0-9] \| [a-z]+ \|' |
	sed -E 's/^\| ([0-9]) \| ([a-z]+) \|.*/\1 \2/' >"$T/codes"
[ "$(wc -l <"$T/codes")" -eq 4 ] || fail "docs/tools.md: exit-status table not found"
# codes per program: "PROGRAM 0 1 2"
sed -n '/^## Exit status/,/^## /p' "$DOC" | grep -E '^\| vigil[a-z-]* \| [0-9 ]+\|' |
	sed -E 's/^\| ([a-z-]+) \| ([0-9 ]+) \|.*/\1 \2/; s/ *$//' >"$T/progcodes"
[ "$(wc -l <"$T/progcodes")" -eq 8 ] || fail "docs/tools.md: per-program exit codes not found"

has_flag() { # PROGRAM PROGRAMS-FIELD
	[ "$2" = all ] && return 0
	case ",$2," in *",$1,"*) return 0 ;; esac
	return 1
}

# ---- per program: help, version, short letters, exit list ----
for p in $VT_PROGS; do
	x=$(vt_prog "$p")
	[ -x "$x" ] || { fail "$p: $x not built"; continue; }
	"$x" --help >"$T/$p.help" 2>"$T/$p.err"; rc=$?
	[ "$rc" -eq 0 ] || fail "$p --help: exit $rc"
	[ -s "$T/$p.err" ] && fail "$p --help wrote to stderr: $(head -c 200 "$T/$p.err")"
	grep -q '^usage: ' "$T/$p.help" || fail "$p --help: no 'usage:' line"
	"$x" -h >"$T/$p.h" 2>&1 || fail "$p -h: exit $?"
	cmp -s "$T/$p.help" "$T/$p.h" || fail "$p: -h differs from --help"
	for v in --version -V; do
		out=$("$x" "$v" 2>&1); rc=$?
		[ "$rc" -eq 0 ] && [ "$out" = "$p $VERSION" ] ||
			fail "$p $v: exit $rc, '$out' (want '$p $VERSION')"
	done
	"$x" --no-such-flag >"$T/out" 2>"$T/err"; rc=$?
	[ "$rc" -eq 2 ] || fail "$p --no-such-flag: exit $rc, want 2"
	[ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "^$p.*(see --help)\$" "$T/err" ||
		fail "$p --no-such-flag: want one line '$p: ... (see --help)': $(cat "$T/err")"
	# a flag that takes a value, last and without one: its long name in the
	# line, whatever letter getopt_long returns for it (vigil-rules: the
	# flags belong to its commands)
	while read -r l progs; do
		[ "$p" = vigil-rules ] && continue
		has_flag "$p" "$progs" || continue
		"$x" "--$l" </dev/null >"$T/out" 2>"$T/err"; rc=$?
		[ "$rc" -eq 2 ] && [ "$(wc -l <"$T/err")" -eq 1 ] &&
			grep -q "^$p: --$l: missing its value (see --help)\$" "$T/err" ||
			fail "$p --$l (no value): exit $rc, want 2 and '$p: --$l: missing its value (see --help)': $(cat "$T/err")"
	done <"$T/valued"
	"$x" stray-arg </dev/null >"$T/out" 2>"$T/err"; rc=$?
	[ "$rc" -eq 2 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "^$p: .*(see --help)\$" "$T/err" ||
		fail "$p stray-arg: exit $rc, want 2 and one line '$p: ... (see --help)': $(cat "$T/err")"
	# vigil-rules: each command words an unknown flag as every program does
	if [ "$p" = vigil-rules ]; then
		for sub in check fmt explain test features; do
			"$x" "$sub" --no-such-flag </dev/null >"$T/out" 2>"$T/err"; rc=$?
			want="$p $sub: --no-such-flag: unknown option or missing value (see --help)"
			[ "$rc" -eq 2 ] && [ "$(cat "$T/err")" = "$want" ] ||
				fail "$p $sub --no-such-flag: exit $rc, '$(cat "$T/err")' (want 2, '$want')"
		done
	fi

	# every "-X, --long" (or "-X | --long") shown is the table's pair
	grep -oE -- '(^|[[ ])-[A-Za-z](, | \| )--[a-z][a-z-]*' "$T/$p.help" |
		sed -E 's/^[[ ]?-([A-Za-z])(, | \| )--([a-z-]+)$/\1 \3/' | sort -u >"$T/$p.pairs"
	while read -r s l; do
		row=$(grep -E "^$s " "$T/flags")
		if [ -z "$row" ]; then
			fail "$p: -$s (--$l) is not a short letter of docs/tools.md (long only, or add it)"
			continue
		fi
		want=$(echo "$row" | cut -d' ' -f2)
		[ "$want" = "$l" ] || fail "$p: -$s means --$l, docs/tools.md says --$want"
		has_flag "$p" "$(echo "$row" | cut -d' ' -f3)" ||
			fail "$p: has -$s, --$l; docs/tools.md does not list $p for it"
	done <"$T/$p.pairs"
	# every flag the table gives this program is there, with its letter
	while read -r s l progs; do
		has_flag "$p" "$progs" || continue
		grep -qx "$s $l" "$T/$p.pairs" || fail "$p: docs/tools.md gives it -$s, --$l; --help does not show it"
	done <"$T/flags"
	# --json never takes an argument
	grep -qE -- '-j(, | \| )--json [A-Z]' "$T/$p.help" && fail "$p: --json takes an argument"

	# the exit-status list: the table's names, the table's codes
	sed -n '/^Exit status (docs\/tools.md):$/,$p' "$T/$p.help" | grep -E '^  [0-9]  ' |
		sed -E 's/^  ([0-9])  ([a-z]+).*/\1 \2/' >"$T/$p.codes"
	[ -s "$T/$p.codes" ] || fail "$p --help: no 'Exit status (docs/tools.md):' list"
	while read -r c n; do
		grep -qx "$c $n" "$T/codes" || fail "$p --help: exit $c is '$n', docs/tools.md says '$(grep "^$c " "$T/codes" | cut -d' ' -f2)'"
	done <"$T/$p.codes"
	got=$(cut -d' ' -f1 "$T/$p.codes" | tr '\n' ' ' | sed 's/ $//')
	want=$(grep "^$p " "$T/progcodes" | cut -d' ' -f2-)
	[ "$got" = "$want" ] || fail "$p --help lists exit codes '$got', docs/tools.md '$want'"
done

# vigild's long-only flags return letters that are no short option of it
for l in admin fsync workers; do
	"$(vt_prog vigild)" "--$l" >"$T/out" 2>"$T/err"; rc=$?
	[ "$rc" -eq 2 ] && grep -qx "vigild: --$l: missing its value (see --help)" "$T/err" ||
		fail "vigild --$l (no value): exit $rc: $(cat "$T/err")"
done

# ---- a rule file that does not load: 2 everywhere ----
printf 'rule broken {\n  when amount > > 5\n  score 1\n  reason "x"\n}\n' >"$T/bad.rules"
printf '{"txn_id":"t","card_id":"c","merchant_id":"m","amount":"1","currency":"EUR"}\n' >"$T/txn.json"
"$(vt_prog vigil-gen)" --cards 20 --days 2 -q -o "$T/t.csv" || fail "vigil-gen: exit $?"
mkdir -p "$T/data" "$T/cdata/archive"
expect_rc() { # WANT NAME CMD...
	want=$1 name=$2
	shift 2
	"$@" >"$T/out" 2>"$T/err"; rc=$?
	[ "$rc" -eq "$want" ] || fail "$name: exit $rc, want $want: $(head -c 300 "$T/err")"
}
expect_rc 2 "vigild --check-config, bad rules" "$(vt_prog vigild)" --check-config -r "$T/bad.rules" -d "$T/data"
grep -q "bad.rules:2:" "$T/err" || fail "vigild --check-config: no file:line for the bad rule file"
expect_rc 2 "vigild start, bad rules" "$(vt_prog vigild)" -r "$T/bad.rules" -d "$T/data" \
	-l "ipc://$T/a.sock" --admin off
expect_rc 2 "vigil-rebuild -r bad" "$(vt_prog vigil-rebuild)" -d "$T/data" -r "$T/bad.rules"
grep -q "bad.rules:2:" "$T/err" || fail "vigil-rebuild: no file:line for the bad rule file"
expect_rc 2 "vigil-replay -r bad" "$(vt_prog vigil-replay)" --csv "$T/t.csv" -r "$T/bad.rules"
expect_rc 2 "vigil-replay --compare bad" "$(vt_prog vigil-replay)" --csv "$T/t.csv" \
	-r "$SRC/rules/default.rules" --compare "$T/bad.rules"
expect_rc 2 "vigil-rules check bad" "$(vt_prog vigil-rules)" check "$T/bad.rules"
expect_rc 2 "vigil-rules fmt bad" "$(vt_prog vigil-rules)" fmt "$T/bad.rules"
expect_rc 2 "vigil-rules explain bad" "$(vt_prog vigil-rules)" explain "$T/bad.rules" --txn "@$T/txn.json"
expect_rc 2 "vigil-rules test bad" "$(vt_prog vigil-rules)" test "$T/bad.rules" "$SRC/rules/default.cases"
expect_rc 2 "vigil-console, no rule file" "$(vt_prog vigil-console)" -d "$T/cdata" -r "$T/none.rules" \
	--tokens "$T/none.tokens" --state "$T/state"
# a bad value is a usage error: one line ending (see --help)
for c in "vigil-gen --cards 0" "vigil-archive stats $T $T" "vigil-archive dump --from x $T" \
	"vigil-rebuild -d $T/data --dump foo x" \
	"vigil-rebuild -d $T/data --rollback --dump card x" \
	"vigil-rebuild -d $T/data --dump-model --dump-model-meta" \
	"vigil-archive dump --from 2026-11-22 --to 2026-11-20 $T" \
	"vigil-replay --csv $T/t.csv --no-model" "vigil-replay --csv $T/t.csv --tls-ca x" \
	"vigil-replay --archive $T --from 2026-11-22 --to 2026-11-20"; do
	set -- $c
	p=$1
	shift
	expect_rc 2 "$c" "$(vt_prog "$p")" "$@"
	[ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "^$p: .*(see --help)\$" "$T/err" ||
		fail "$c: want one line '$p: ... (see --help)': $(cat "$T/err")"
done
# a directory that is no archive is not an empty, healthy one
mkdir -p "$T/noarch"
expect_rc 2 "vigil-archive verify, not an archive" "$(vt_prog vigil-archive)" verify "$T/noarch"
grep -qxF "vigil-archive: $T/noarch: not an archive directory (no seg-* file, no JOURNAL, no LOCK)" \
	"$T/err" || fail "vigil-archive verify, not an archive: $(cat "$T/err")"
# a seg-* file whose name the reader does not list (renamed by hand) is said, not passed over
mkdir -p "$T/oddarch"
echo x >"$T/oddarch/seg-x.log"
expect_rc 0 "vigil-archive verify, a seg-* name that is no segment's" "$(vt_prog vigil-archive)" \
	verify "$T/oddarch"
grep -qx "vigil-archive: warning: $T/oddarch/seg-x.log: not a segment file name .*: not read" \
	"$T/err" || fail "vigil-archive verify, seg-x.log: $(cat "$T/err")"
expect_rc 2 "vigil-rebuild, no archive/" "$(vt_prog vigil-rebuild)" -d "$T/noarch" -q
grep -qxF "vigil-rebuild: $T/noarch/archive: cannot open archive directory: No such file or directory" \
	"$T/err" || fail "vigil-rebuild, no archive/: $(cat "$T/err")"
# bad JSON in --txn: where it is, FILE:LINE:COL, or the file alone when it does not open
printf '{"txn_id":\n1,}' >"$T/bad.json"
expect_rc 2 "vigil-rules explain --txn @bad" "$(vt_prog vigil-rules)" explain \
	"$SRC/rules/default.rules" --txn "@$T/bad.json"
grep -q "^vigil-rules: --txn $T/bad.json:2:3: " "$T/err" || fail "vigil-rules --txn @bad: $(cat "$T/err")"
expect_rc 2 "vigil-rules explain --txn @none" "$(vt_prog vigil-rules)" explain \
	"$SRC/rules/default.rules" --txn "@$T/none.json"
grep -q "^vigil-rules: --txn $T/none.json: " "$T/err" || fail "vigil-rules --txn @none: $(cat "$T/err")"
expect_rc 2 "vigil-score --txn @none" "$(vt_prog vigil-score)" -s "ipc://$T/none.sock" \
	--txn "@$T/none.json"
grep -q "^vigil-score: --txn $T/none.json: " "$T/err" || fail "vigil-score --txn @none: $(cat "$T/err")"
expect_rc 2 "vigil-score --txn @DIR" "$(vt_prog vigil-score)" -s "ipc://$T/none.sock" --txn "@$T"
grep -qx "vigil-score: --txn $T: Is a directory" "$T/err" || fail "vigil-score --txn @DIR: $(cat "$T/err")"
# a transaction given by flags: a bad value names the flag, not the JSON field
for c in "--amount 1.234 --currency EUR|--amount: " "--amount 12.00|--amount needs --currency" \
	"--amount 1 --currency EUR --channel foo|--channel: " \
	"--amount 1 --currency EUR --time yesterday|--time: " \
	"--amount 1 --currency EUR --lat 100 --lon 0|--lat: "; do
	say=${c#*|}
	# shellcheck disable=SC2086 # the flags are words
	expect_rc 2 "vigil-score ${c%|*}" "$(vt_prog vigil-score)" -s "ipc://$T/none.sock" \
		--txn-id t1 --card c1 --merchant m1 ${c%|*}
	[ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "^vigil-score: $say.*(see --help)\$" "$T/err" ||
		fail "vigil-score ${c%|*}: want 'vigil-score: $say... (see --help)': $(cat "$T/err")"
done
# VIGIL_SERVER set but naming nobody is no licence to use the default server
VIGIL_SERVER=', ' expect_rc 2 "VIGIL_SERVER=', '" "$(vt_prog vigil-score)" health
grep -q 'VIGIL_SERVER: ", " names no URL' "$T/err" || fail "VIGIL_SERVER=', ': $(cat "$T/err")"
# a line of stdin: the error object's message does not repeat where.field
printf '{"txn_id":"a","card_id":"c","merchant_id":"m","amount":"1.00","currency":"EUX"}\n' |
	"$(vt_prog vigil-score)" -s "ipc://$T/none.sock" >"$T/out" 2>"$T/err"
grep -q '"message":"\\"EUX\\" is not' "$T/out" && grep -q '"field":"txn.currency","line":1' "$T/out" ||
	fail "vigil-score stdin, bad currency: $(cat "$T/out")"
# a missing input is a usage error (docs/tools.md, "missing"), one line naming it
expect_rc 2 "vigil-console, no data directory" "$(vt_prog vigil-console)" -d "$T/none" \
	-r "$SRC/rules/default.rules" --tokens "$T/none.tokens" --state "$T/state"
grep -qx "vigil-console: --data $T/none: No such file or directory" "$T/err" ||
	fail "vigil-console, no data directory: $(cat "$T/err")"
expect_rc 2 "vigil-rebuild --merge, missing files" "$(vt_prog vigil-rebuild)" -d "$T/data" \
	--merge "$T/none1.part" "$T/none2.part"
grep -qx "vigil-rebuild: $T/none1.part: No such file or directory" "$T/err" ||
	fail "vigil-rebuild --merge, missing files: $(cat "$T/err")"
expect_rc 2 "vigil-rebuild --merge, one file" "$(vt_prog vigil-rebuild)" -d "$T/data" \
	--merge "$T/none1.part"
grep -q "(see --help)\$" "$T/err" || fail "vigil-rebuild --merge, one file: $(cat "$T/err")"

# standard output that cannot be written: exit 1 and one line saying so,
# whatever the work's own result (docs/tools.md, "Exit status")
"$(vt_prog vigil-replay)" --csv "$T/t.csv" --nightly --no-model --work "$T/w" -q \
	--rebuild-threads 1 >/dev/null 2>&1 || fail "vigil-replay --nightly: exit $?"
for c in "vigil-rules check --json $SRC/rules/default.rules" "vigil-rules fmt $SRC/rules/default.rules" \
	"vigil-rules features --json" "vigil-replay --csv $T/t.csv" \
	"vigil-rebuild -d $T/w --force --no-model --threads 1 --json"; do
	set -- $c
	p=$1
	shift
	expect_rc 1 "$c > /dev/full" sh -c 'exec "$@" >/dev/full' sh "$(vt_prog "$p")" "$@"
	grep -v ': warning: ' "$T/err" | grep -qx "$p: standard output: .*" ||
		fail "$c > /dev/full: want one line '$p: standard output: ...': $(cat "$T/err")"
done

# ---- addresses and default paths ----
# vigil-replay's default rule file does not depend on the working directory
(cd "$T" && "$(vt_prog vigil-replay)" --csv t.csv -q -j >"$T/out" 2>"$T/err") ||
	fail "vigil-replay without --rules, run from $T: $(head -c 300 "$T/err")"
grep -q "\"rules\": \"$SRC/rules/default.rules\"" "$T/out" ||
	fail "vigil-replay's default rule file is not the source tree's: $(grep '"rules"' "$T/out")"
# an admin address with a scheme fails --check-config, with the form to write
expect_rc 2 "vigild --admin http://..." "$(vt_prog vigild)" --check-config -q \
	-r "$SRC/rules/default.rules" -d "$T/data" --admin http://127.0.0.1:9466
grep -q 'no scheme: 127.0.0.1:9466' "$T/err" || fail "vigild --admin http://: $(cat "$T/err")"
expect_rc 2 "vigil-console --listen http://..." "$(vt_prog vigil-console)" -d "$T/cdata" \
	-r "$SRC/rules/default.rules" --tokens "$T/none.tokens" --state "$T/state" \
	--listen http://127.0.0.1:9480
[ "$(wc -l <"$T/err")" -eq 1 ] && grep -q 'no scheme: 127.0.0.1:9480' "$T/err" ||
	fail "vigil-console --listen http://: $(cat "$T/err")"
# an address that cannot be bound (TEST-NET-1 is no local address): one line
# with the system's reason, exit 1 (docs/tools.md), no bare "[warn]" of libevent's
printf 'alice analyst alice-token-0123456789abcdef0123456789\n' >"$T/ok.tokens"
chmod 600 "$T/ok.tokens"
expect_rc 1 "vigil-console --listen 192.0.2.1:9480" "$(vt_prog vigil-console)" -d "$T/cdata" \
	-r "$SRC/rules/default.rules" --tokens "$T/ok.tokens" --state "$T/state" \
	--listen 192.0.2.1:9480
[ "$(wc -l <"$T/err")" -eq 1 ] &&
	grep -q '^vigil-console: --listen 192.0.2.1:9480: cannot listen: [A-Z]' "$T/err" ||
	fail "vigil-console --listen 192.0.2.1:9480: $(cat "$T/err")"
expect_rc 1 "vigild --admin 192.0.2.1:9466" "$(vt_prog vigild)" -r "$SRC/rules/default.rules" \
	-d "$T/data" -l "ipc://$T/b.sock" --admin 192.0.2.1:9466
grep -q '^vigild: admin: cannot listen on 192.0.2.1:9466: [A-Z]' "$T/err" &&
	! grep -q '^\[' "$T/err" || fail "vigild --admin 192.0.2.1:9466: $(cat "$T/err")"
expect_rc 0 "vigild --check-config -q" "$(vt_prog vigild)" --check-config -q \
	-r "$SRC/rules/default.rules" -d "$T/data" --admin '[::1]:9466'
[ -s "$T/out" ] && fail "vigild --check-config -q printed: $(head -c 200 "$T/out")"
# a --data that is a file is a bad configuration, for --check-config too
: >"$T/afile"
expect_rc 2 "vigild --check-config --data FILE" "$(vt_prog vigild)" --check-config -q \
	-r "$SRC/rules/default.rules" -d "$T/afile"
grep -qx "vigild: \[store\] data_dir (--data) $T/afile: not a directory" "$T/err" ||
	fail "vigild --check-config --data FILE: $(cat "$T/err")"
# the console checks every input before it makes STATE: nothing left behind
expect_rc 2 "vigil-console --server HOST:PORT" "$(vt_prog vigil-console)" -d "$T/cdata" \
	-r "$SRC/rules/default.rules" --tokens "$T/ok.tokens" --state "$T/state-srv" \
	--server 127.0.0.1:19465
[ "$(wc -l <"$T/err")" -eq 1 ] && grep -q 'tcp://HOST:PORT.*(see --help)$' "$T/err" ||
	fail "vigil-console --server HOST:PORT: $(cat "$T/err")"
[ -e "$T/state-srv" ] && fail "vigil-console --server HOST:PORT made its state directory"
expect_rc 2 "vigil-console, no tokens file" "$(vt_prog vigil-console)" -d "$T/data" \
	-r "$SRC/rules/default.rules" --tokens "$T/none.tokens" --state "$T/state-tok"
[ -e "$T/state-tok" ] && fail "vigil-console without its tokens file made its state directory"
# a data directory without archive/ (a mistyped --data) is said, not served as "no alerts"
grep -q "^vigil-console: warning: --data $T/data has no archive/" "$T/err" ||
	fail "vigil-console, --data without archive/: no warning: $(cat "$T/err")"
# a TLS file the TLS library refuses: what is wrong with it, not "Cryptographic error"
expect_rc 2 "vigil-score --tls-ca NOT-PEM" "$(vt_prog vigil-score)" -s tls+tcp://127.0.0.1:1 \
	--tls-ca "$T/t.csv" health
grep -q ": $T/t.csv: not a PEM X.509 certificate\$" "$T/err" ||
	fail "vigil-score --tls-ca NOT-PEM: $(cat "$T/err")"
# a FIFO in a TLS file's place is refused at once, not waited on
mkfifo "$T/ca.fifo"
expect_rc 2 "vigil-score --tls-ca FIFO" "$(vt_prog vigil-score)" -s tls+tcp://127.0.0.1:1 \
	--tls-ca "$T/ca.fifo" health
grep -q ": $T/ca.fifo: not a regular file\$" "$T/err" ||
	fail "vigil-score --tls-ca FIFO: $(cat "$T/err")"
# a server address without a scheme says what a URL looks like, in the same
# words wherever a URL is given (VIGIL_CLI_URL_FORMS)
forms='write tcp://HOST:PORT, tls+tcp://HOST:PORT or ipc:///PATH'
expect_rc 2 "vigil-score --server HOST:PORT" "$(vt_prog vigil-score)" --server 127.0.0.1:19465 health
grep -qF "$forms" "$T/err" || fail "vigil-score --server HOST:PORT: $(cat "$T/err")"
expect_rc 2 "vigil-replay --server HOST:PORT" "$(vt_prog vigil-replay)" --csv "$T/t.csv" \
	--server 127.0.0.1:19465
grep -qF "$forms" "$T/err" || fail "vigil-replay --server HOST:PORT: $(cat "$T/err")"
expect_rc 2 "vigild --listen HOST:PORT" "$(vt_prog vigild)" --check-config -d "$T/data" \
	-r "$SRC/rules/default.rules" --listen 127.0.0.1:19465
grep -qF "$forms" "$T/err" || fail "vigild --listen HOST:PORT: $(cat "$T/err")"

# ---- --json: JSON on stdout, no file ----
is_json() { # FILE: one JSON document
	if [ -x /usr/bin/python3 ]; then
		/usr/bin/python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$1" 2>/dev/null
	else
		head -c 1 "$1" | grep -q '[{[]'
	fi
}
expect_rc 0 "vigil-replay --json" "$(vt_prog vigil-replay)" --csv "$T/t.csv" -r "$SRC/rules/default.rules" -j -q
is_json "$T/out" || fail "vigil-replay -j: stdout is not one JSON document: $(head -c 200 "$T/out")"
expect_rc 2 "vigil-replay --json FILE" "$(vt_prog vigil-replay)" --csv "$T/t.csv" --json "$T/s.json"
grep -q -- "--summary FILE" "$T/err" || fail "vigil-replay --json FILE: the error does not name --summary"
expect_rc 0 "vigil-replay --summary" "$(vt_prog vigil-replay)" --csv "$T/t.csv" -r "$SRC/rules/default.rules" --summary "$T/s.json" -q
is_json "$T/s.json" || fail "vigil-replay --summary FILE: not JSON"
expect_rc 0 "vigil-rules check -j" "$(vt_prog vigil-rules)" check -j "$SRC/rules/default.rules"
is_json "$T/out" || fail "vigil-rules check -j: not JSON"
expect_rc 2 "vigil-score --json OBJECT" "$(vt_prog vigil-score)" -s "ipc://$T/none.sock" --json "$(cat "$T/txn.json")"
grep -q -- "--txn" "$T/err" || fail "vigil-score --json OBJECT: the error does not name --txn"

# ---- 3: a second vigild on a data directory in use ----
"$(vt_prog vigild)" -r "$SRC/rules/default.rules" -d "$T/data" -l "ipc://$T/one.sock" \
	--admin off >"$T/one.log" 2>&1 &
VPID=$!
i=0
while ! grep -q 'vigild: ready' "$T/one.log" && [ $i -lt 600 ] && kill -0 "$VPID" 2>/dev/null; do
	sleep 0.1
	i=$((i + 1))
done
if grep -q 'vigild: ready' "$T/one.log"; then
	expect_rc 3 "second vigild on the same data directory" "$(vt_prog vigild)" \
		-r "$SRC/rules/default.rules" -d "$T/data" -l "ipc://$T/two.sock" --admin off
	grep -q "locked" "$T/err" || fail "second vigild: the log does not say the archive is locked"
else
	fail "the first vigild did not become ready: $(tail -5 "$T/one.log")"
fi

vt_done "8 programs follow docs/tools.md"
