#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/deploy/test_install.sh - the install recipe of docs/operations.md
# runs (issue 18): `meson install --destdir` of this build into a temporary
# DESTDIR puts the programs, the configuration (vigild.ini, the default
# rules and every list file they read), the systemd units, sysusers.d and
# tmpfiles.d files, the console's logrotate example and the manuals where
# the units and the configuration say (logrotate -d checks the example
# where logrotate is installed); the installed vigild, started with the
# installed configuration (only its paths rewritten into the DESTDIR, a
# temporary data directory and local sockets), passes --check-config,
# scores one transaction sent by the installed vigil-score and stops with
# status 0; the installed vigil-replay and vigil-console, run with no path
# option from another directory, read the installed default rules and web
# UI. A second install keeps an edited configuration file and the
# directories' modes that tmpfiles.d set.
# Usage: test_install.sh (VIGIL_BUILD_ROOT set by meson).
set -eu

B=${VIGIL_BUILD_ROOT:?VIGIL_BUILD_ROOT not set}
T=$(mktemp -d /tmp/vigil-install-XXXXXX)
D="$T/root"
PID=

fail() {
	echo "test_install: $*" >&2
	[ -f "$T/vigild.log" ] && sed 's/^/  vigild.log: /' "$T/vigild.log" >&2
	exit 1
}
cleanup() {
	if [ -n "$PID" ]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
	rm -rf "$T"
}
trap cleanup EXIT INT TERM

install_tree() {
	meson install -C "$B" --no-rebuild --destdir "$D" >"$T/install.log" 2>&1 ||
		{ cat "$T/install.log" >&2; fail "meson install --destdir failed"; }
}
install_tree

# Where this build's layout put things: found from the installed files.
one() { # FIND-ARGS...: exactly one match, printed
	n=$(find "$D" "$@" | wc -l)
	[ "$n" -eq 1 ] || fail "expected one installed file for: $* (found $n)"
	find "$D" "$@"
}
unitdir=$(dirname "$(one -path '*/lib/systemd/system/vigild.service')")
vigild=$(one -path '*/bin/vigild' -type f)
score=$(one -path '*/bin/vigil-score' -type f)
ini=$(one -path '*/vigil/vigild.ini' ! -path '*/examples/*')
etc=$(dirname "$ini")
for f in default.rules blocked_cards.txt test_bins.txt; do
	[ -f "$etc/rules/$f" ] || fail "$etc/rules/$f not installed"
done
# every list file the installed default rules read is installed beside them
grep -o 'file "[^"]*"' "$etc/rules/default.rules" | sed 's/^file "//; s/"$//' |
	while read -r l; do [ -f "$etc/rules/$l" ] || fail "list file $l not installed"; done
for u in vigild.service vigil-rebuild.service vigil-rebuild.timer vigil-console.service; do
	[ -f "$unitdir/$u" ] || fail "$u not installed in $unitdir"
done
# the console's logrotate example rotates the audit log in the unit's --state
lr=$(one -path '*/examples/vigil-console.logrotate')
cstate=$(sed -n 's/.*--state \([^ ]*\).*/\1/p' "$unitdir/vigil-console.service")
[ -n "$cstate" ] && grep -q "^$cstate/audit.log {\$" "$lr" ||
	fail "$lr does not rotate $cstate/audit.log, vigil-console.service's --state"
if command -v logrotate >/dev/null 2>&1; then
	logrotate -d -s "$T/logrotate.status" "$lr" >"$T/logrotate.log" 2>&1 ||
		{ cat "$T/logrotate.log" >&2; fail "logrotate -d refuses $lr"; }
fi
lib=$(dirname "$(dirname "$unitdir")")
[ -f "$lib/sysusers.d/vigil.conf" ] || fail "no sysusers.d/vigil.conf in $lib"
[ -f "$lib/tmpfiles.d/vigil.conf" ] || fail "no tmpfiles.d/vigil.conf in $lib"
grep -q '^u vigil ' "$lib/sysusers.d/vigil.conf" || fail "sysusers.d/vigil.conf makes no vigil user"
grep -q "^d ${etc#"$D"}/rules " "$lib/tmpfiles.d/vigil.conf" ||
	fail "tmpfiles.d/vigil.conf does not name the installed ${etc#"$D"}/rules"

# The units name the installed programs, configuration and manuals.
for u in vigild.service vigil-rebuild.service vigil-console.service; do
	sed -n 's/^Exec[A-Za-z]*=//p' "$unitdir/$u" | grep -o '/[^ ]*/bin/[a-z-]*' | sort -u |
		while read -r p; do [ -x "$D$p" ] || fail "$u runs $p, which is not installed"; done
done
grep -q "^ExecStart=.* --config ${etc#"$D"}/vigild.ini\$" "$unitdir/vigild.service" ||
	fail "vigild.service does not read the installed ${etc#"$D"}/vigild.ini"
grep -q "^Environment=VIGIL_RULES=${etc#"$D"}/rules/default.rules\$" "$unitdir/vigil-rebuild.service" ||
	fail "vigil-rebuild.service does not read the installed default rules"
ndoc=0
for u in vigild.service vigil-rebuild.service vigil-rebuild.timer vigil-console.service; do
	docs=$(sed -n 's/^Documentation=//p' "$unitdir/$u")
	[ -n "$docs" ] || fail "$u has no Documentation="
	for d in $docs; do
		case "$d" in
		man:*)
			page=${d#man:}
			name=${page%%(*}
			sec=${page#*(}
			sec=${sec%)}
			[ -n "$(find "$D" -path "*/man/man$sec/$name.$sec")" ] ||
				fail "$u: Documentation=$d is not installed"
			;;
		file:*)
			[ -f "$D${d#file:}" ] || fail "$u: Documentation=$d is not installed" ;;
		*) fail "$u: Documentation=$d is neither an installed man page nor a file" ;;
		esac
		ndoc=$((ndoc + 1))
	done
done
if command -v pandoc >/dev/null 2>&1; then
	grep -q '^Documentation=man:vigild(8)' "$unitdir/vigild.service" ||
		fail "pandoc is installed but vigild.service names no man page"
	# Every installed page starts with a NAME section ("name - what"), which
	# whatis and apropos index.
	npages=0
	find "$D" -path '*/man/man[0-9]/*' -type f >"$T/manpages"
	while read -r page; do
		if command -v lexgrog >/dev/null 2>&1; then
			lexgrog "$page" >/dev/null 2>&1 || fail "$page: whatis cannot parse its NAME section"
		else
			awk '/^\.SH/ { if (seen) exit; seen = ($2 == "NAME"); next }
			     seen && NF && !/^\./ { found = 1; exit } END { exit !found }' "$page" ||
				fail "$page: no NAME section first"
		fi
		npages=$((npages + 1))
	done <"$T/manpages"
	[ "$npages" -ge 19 ] || fail "only $npages man pages installed"
fi

# Every manual of docs/ is installed as Markdown (operations.md, "Install"):
# each program's --help ends naming docs/tools.md, and the pages name each
# other by file.
docdir=$(dirname "$(one -path '*/doc/vigil/operations.md')")
for m in "${VIGIL_SOURCE_ROOT:?VIGIL_SOURCE_ROOT not set}"/docs/*.md; do
	[ -f "$docdir/$(basename "$m")" ] || fail "docs/$(basename "$m") is not installed in ${docdir#"$D"}"
done

# Run the installed vigild with the installed configuration: only the paths
# move into the DESTDIR (the runtime directory /run/vigil to $T/run, the
# loopback port to a free one).
PORT=$(python3 "${VIGIL_SOURCE_ROOT:?VIGIL_SOURCE_ROOT not set}/tests/lib/vt_port.py")
mkdir "$T/run"
sed -i -e "s|^data_dir = .*|data_dir = $T/data|" \
	-e "/^listen = /s|tcp://127.0.0.1:9465|tcp://127.0.0.1:$PORT|" \
	-e "/^listen = /s|ipc:///run/vigil/|ipc://$T/run/|g" \
	-e "s|^admin = .*|admin = unix:$T/admin.sock|" \
	-e "s|^path = /|path = $D/|" "$ini"
grep -q "^path = $etc/rules/default.rules\$" "$ini" || fail "the installed vigild.ini does not serve the installed rules"
mkdir "$T/data"
"$vigild" --config "$ini" --check-config >"$T/check.log" 2>&1 ||
	{ cat "$T/check.log" >&2; fail "--check-config refused the installed configuration"; }
"$vigild" --config "$ini" 2>"$T/vigild.log" &
PID=$!
i=0
until curl -s --unix-socket "$T/admin.sock" http://vigild/readyz 2>/dev/null | grep -q '"ready": *true'; do
	i=$((i + 1))
	[ "$i" -lt 600 ] || fail "the installed vigild did not become ready"
	kill -0 "$PID" 2>/dev/null || { PID=; fail "the installed vigild exited"; }
	sleep 0.1
done
# Scored through the URL vigil-console.service sends its verdicts to: the
# installed configuration serves it.
console_url=$(sed -n 's/.*--server \([^ ]*\).*/\1/p' "$unitdir/vigil-console.service")
case $console_url in
ipc:///run/vigil/*) url="ipc://$T/run/${console_url#ipc:///run/vigil/}" ;;
*) fail "vigil-console.service: --server '$console_url' is not an ipc:// socket in /run/vigil" ;;
esac
libdir=$(dirname "$(one -name 'libvigil-client.so*' -type f)")
out=$(LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$score" --server "$url" \
	--txn-id inst-1 --card card-1 --merchant m-1 --amount 12.50 --currency EUR 2>&1) ||
	fail "vigil-console.service's --server $console_url: the installed vigild.ini does not serve it ($out)"
echo "$out" | grep -Eq '"decision": *"(allow|review|decline)"' || fail "no decision in the reply: $out"
kill -TERM "$PID"
st=0
wait "$PID" || st=$?
PID=
[ "$st" -eq 0 ] || fail "vigild exited with status $st on SIGTERM"

# Installed programs find installed files with no path option (issue 25):
# vigil-replay its default rules in SYSCONFDIR/vigil/rules, vigil-console
# its web UI in DATADIR/vigil/console/www, here under the DESTDIR; run from
# another working directory.
gen=$(one -path '*/bin/vigil-gen' -type f)
replay=$(one -path '*/bin/vigil-replay' -type f)
console=$(one -path '*/bin/vigil-console' -type f)
www=$(dirname "$(one -path '*/vigil/console/www/index.html')")
export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
mkdir "$T/cwd"
(cd "$T/cwd" && "$gen" --cards 20 --days 1 -q -o small.csv) || fail "the installed vigil-gen failed"
(cd "$T/cwd" && "$replay" --csv small.csv -q -j >"$T/replay.json" 2>"$T/replay.err") ||
	fail "the installed vigil-replay without --rules: $(cat "$T/replay.err")"
grep -q "\"rules\": \"$etc/rules/default.rules\"" "$T/replay.json" ||
	fail "the installed vigil-replay does not read $etc/rules/default.rules: $(grep '"rules"' "$T/replay.json")"
mkdir "$T/cdata" "$T/cstate"
printf 'alice admin alice-admin-token-000000001\n' >"$T/tokens"
chmod 600 "$T/tokens" # vigil-console refuses a tokens file other users can read
CPORT=$(python3 "${VIGIL_SOURCE_ROOT:?VIGIL_SOURCE_ROOT not set}/tests/lib/vt_port.py")
(cd "$T/cwd" && exec "$console" --data "$T/cdata" --rules "$etc/rules/default.rules" \
	--tokens "$T/tokens" --state "$T/cstate" --listen "127.0.0.1:$CPORT") 2>"$T/console.log" &
PID=$!
i=0
until grep -q "listening on" "$T/console.log"; do
	i=$((i + 1))
	[ "$i" -lt 300 ] || fail "the installed vigil-console did not listen: $(cat "$T/console.log")"
	kill -0 "$PID" 2>/dev/null || { PID=; fail "the installed vigil-console exited: $(cat "$T/console.log")"; }
	sleep 0.1
done
grep -q "www $www," "$T/console.log" || fail "the installed vigil-console does not serve $www: $(cat "$T/console.log")"
curl -sf "http://127.0.0.1:$CPORT/app.js" >"$T/app.js" || fail "the installed vigil-console does not serve /app.js"
cmp -s "$T/app.js" "$www/app.js" || fail "the installed vigil-console's /app.js is not $www/app.js"
kill -TERM "$PID"
wait "$PID" || true
PID=

# A second install keeps the operator's edits, and the modes tmpfiles.d
# gave the directories (as systemd-tmpfiles --create would: the
# configuration's d lines, here without the owners).
echo "; edited by the operator" >>"$ini"
sed -n 's/^d \([^ ]*\) *\([0-7]*\) .*/\2 \1/p' "$lib/tmpfiles.d/vigil.conf" >"$T/tmpfiles.modes"
[ -s "$T/tmpfiles.modes" ] || fail "tmpfiles.d/vigil.conf has no d lines"
while read -r mode dir; do chmod "$mode" "$D$dir" || fail "cannot chmod $D$dir"; done <"$T/tmpfiles.modes"
install_tree
grep -q '^; edited by the operator$' "$ini" || fail "a reinstall replaced the edited $ini"
while read -r mode dir; do
	got=$(stat -c %a "$D$dir")
	[ "$got" = "${mode#0}" ] || fail "a reinstall made $dir $got, tmpfiles.d made it $mode"
done <"$T/tmpfiles.modes"
echo "test_install: ok ($ndoc Documentation= references resolved; scored: $out)"
