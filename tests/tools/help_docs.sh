#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/tools/help_docs.sh - each program's --help against its manual page
# (docs/tools.md lists them). cli_vocab.sh holds --help to the shared
# tables; this test holds it to the program's own page, where the two
# drifted apart most: an option renamed or added on one side only, and an
# argument named one way in --help and another on the page (--start DATE
# against --start YYYY-MM-DD). For every program:
#   - each long option --help names (vigil-rules: with every COMMAND --help)
#     is on the page, in SYNOPSIS or OPTIONS;
#   - each "--option ARG" of --help, ARG in capitals (FILE, HOST:PORT,
#     URL[,URL...]), is written the same on the page there, and the page
#     gives no other capitalised ARG to an option --help gives one;
#   - each long option of the page's SYNOPSIS and OPTIONS exists: the
#     program does not call it an unknown option;
#   - each code of --help's exit-status list is in the page's EXIT STATUS.
# An option of another command is written after that command's name
# (`vigil-rebuild --threads`, `meson install --destdir D`) and is not
# counted as the program's, on the page as in --help.
#
#   help_docs.sh SOURCE_ROOT BUILD_ROOT
# SOURCE_ROOT is where docs/ is read from (a copy with a page broken on
# purpose must fail); the programs are BUILD_ROOT's.
set -u

SRC=${1:?usage: help_docs.sh SOURCE_ROOT BUILD_ROOT}
VIGIL_BUILD_ROOT=${2:?build root}
export VIGIL_BUILD_ROOT
: "${VIGIL_SOURCE_ROOT:=$SRC}"
export VIGIL_SOURCE_ROOT
VT_NAME=help_docs.sh VT_KEEP_GOING=1
# shellcheck source=tests/lib/vt.sh
. "$SRC/tests/lib/vt.sh"
T=$D
trap vt_cleanup EXIT INT TERM

page_of() {
	case "$1" in
	vigil-console) echo "$SRC/docs/console.md" ;;
	*) echo "$SRC/docs/$1.md" ;;
	esac
}

# section NAME... < page: the text of those "## NAME" sections
section() {
	awk -v want=" $* " '
		/^## / { on = index(want, " " substr($0, 4) " ") > 0; next }
		on' | sed 's/`//g'
}

# options SELF < text: "--name ARG" per long option SELF's text names (ARG
# "-" when the next word is no capitalised argument); skips the options of
# another command written after its name
options() {
	awk -v self="$1" '
	function flush_arg(tok,   a, o, c) {
		# ARG: FILE, HOST:PORT|unix:/PATH|off, URL[,URL...]; drop
		# trailing punctuation and unbalanced closing brackets
		a = tok
		sub(/[,.;:)]+$/, "", a)
		o = gsub(/\[/, "[", a); c = gsub(/\]/, "]", a)
		while (c > o && a ~ /\]$/) { sub(/\]$/, "", a); c-- }
		sub(/[,.;:)]+$/, "", a)
		return a ~ /^[A-Z][A-Z0-9_-]*([:|\/.,\[\]][A-Za-z0-9_:|\/.,\[\]]*)?$/ ? a : "-"
	}
	{
		n = split($0, w, /[ \t]+/)
		foreign = 0; first = 0
		for (i = 1; i <= n; i++) {
			t = w[i]
			core = t; sub(/^[[(|"'\'']+/, "", core)
			name = core; sub(/(\([0-9]\))?('\''s)?[]),.;:]*$/, "", name)
			if (name ~ /^(vigild|vigil-[a-z]+|meson)$/ && name != self) {
				foreign = 1; first = 1; continue
			}
			if (foreign) {
				if (core ~ /^-/ || name ~ /^[A-Z][A-Z0-9_.]*$/) { first = 0; continue }
				if (first && name ~ /^[a-z]+$/) { first = 0; continue }
				foreign = 0
			}
			first = 0
			rest = core
			while (match(rest, /--[a-z][a-z0-9-]*[a-z0-9]/)) {
				opt = substr(rest, RSTART, RLENGTH)
				after = substr(rest, RSTART + RLENGTH)
				rest = after
				if (after == "" && i < n)
					print opt, flush_arg(w[i + 1])
				else
					print opt, "-"
			}
		}
	}'
}

# exists PROGRAM OPTION: the program does not call OPTION unknown. Two bad
# options follow it, so that nothing runs: an OPTION that takes a value
# takes the first, the second is refused. The options of vigil-archive and
# vigil-rules are their commands'.
exists() {
	case "$1" in
	vigil-archive) subs="verify dump stats" ;;
	vigil-rules) subs="check fmt explain test features" ;;
	*) subs=- ;;
	esac
	x=$(vt_prog "$1")
	for sub in $subs; do
		[ "$sub" = - ] && sub=
		# shellcheck disable=SC2086 # $sub: no word or one
		"$x" $sub "$2" --zz-one --zz-two </dev/null >"$T/probe" 2>&1
		grep -qF -e "$2: unknown option" "$T/probe" || return 0
	done
	return 1
}

checked=0
for p in $VT_PROGS; do
	x=$(vt_prog "$p")
	page=$(page_of "$p")
	[ -x "$x" ] || { fail "$p: $x not built"; continue; }
	[ -f "$page" ] || { fail "$p: no manual page $page"; continue; }
	# the probe must see an unknown option, or its "exists" proves nothing
	exists "$p" --zz-bogus && fail "$p: an unknown option is not reported as one: $(cat "$T/probe")"

	"$x" --help >"$T/help" 2>&1 || fail "$p --help: exit $?"
	if [ "$p" = vigil-rules ]; then
		for c in check fmt explain test features; do
			"$x" "$c" --help >>"$T/help" 2>&1 || fail "$p $c --help: exit $?"
		done
	fi
	options "$p" <"$T/help" | sort -u >"$T/help.opts"
	section SYNOPSIS OPTIONS <"$page" | options "$p" | sort -u >"$T/page.opts"
	[ "$(wc -l <"$T/help.opts")" -ge 5 ] || fail "$p --help: fewer than 5 options found"
	[ "$(wc -l <"$T/page.opts")" -ge 5 ] || fail "$p: $page: fewer than 5 options in SYNOPSIS and OPTIONS"

	# --help -> page: the option, and its argument's name
	cut -d' ' -f1 "$T/page.opts" | sort -u >"$T/page.names"
	cut -d' ' -f1 "$T/help.opts" | sort -u | while read -r o; do
		grep -qxF -- "$o" "$T/page.names" ||
			echo "$p: $o is in --help but not in $page (SYNOPSIS, OPTIONS)"
	done >"$T/miss"
	grep -v ' -$' "$T/help.opts" | while read -r o a; do
		grep -qxF -- "$o $a" "$T/page.opts" ||
			echo "$p: --help writes '$o $a', $page writes $(grep -- "^$o " "$T/page.opts" |
				grep -v ' -$' | sed "s/.*/'&'/" | tr '\n' ' ')"
	done >>"$T/miss"
	# page -> --help: an argument the page names otherwise (an option
	# --help shows with no capitalised argument is not compared)
	grep -v ' -$' "$T/page.opts" | while read -r o a; do
		grep -q -- "^$o [^-]" "$T/help.opts" || continue
		grep -qxF -- "$o $a" "$T/help.opts" ||
			echo "$p: $page writes '$o $a', --help writes $(grep -- "^$o " "$T/help.opts" |
				grep -v ' -$' | sed "s/.*/'&'/" | tr '\n' ' ')"
	done >>"$T/miss"
	# page -> program: the option exists
	cut -d' ' -f1 "$T/page.opts" | sort -u | while read -r o; do
		case "$o" in --help | --version) continue ;; esac
		exists "$p" "$o" || echo "$p: $page documents $o, which $p does not know"
	done >>"$T/miss"
	while read -r line; do fail "$line"; done <"$T/miss"

	# exit codes: --help's list, all on the page
	sed -n '/^Exit status/,$p' "$T/help" | sed -nE 's/^  ([0-9])  .*/\1/p' | sort -u >"$T/codes"
	[ -s "$T/codes" ] || fail "$p --help: no exit-status list"
	section "EXIT STATUS" <"$page" >"$T/exit"
	while read -r c; do
		grep -qE "(^|[^0-9.])$c([^0-9.]|\$)" "$T/exit" ||
			fail "$p: exit status $c of --help is not in $page's EXIT STATUS"
	done <"$T/codes"
	checked=$((checked + 1))
done
[ "$checked" -eq 8 ] || fail "checked $checked programs, want 8"
vt_done "$checked programs' --help agree with their manual pages"
