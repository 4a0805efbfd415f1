#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/files.sh - the `lint` suite: file names and sizes of the product
# code (everything but tests/ and bench/).
#   - No source file outside a component is named after that component: a
#     file called model.c outside model/ or server.c outside server/ reads
#     as the component itself. The components are the top-level
#     directories; one offence per line:
#       FILE: named after the component COMPONENT/
#   - No two product sources share a base name across components when one
#     of them is the entry point of a program's pipeline (score.c): one line
#     per extra copy:
#       FILE: same name as OTHER
#   - No source file over 1,500 lines, no header over 300:
#       FILE: N lines, over the limit of M for a source file (or header)
#   - uthash is included through common/hashtab.h only (its out-of-memory
#     exit turned into a failed add):
#       FILE: includes <uthash.h>; include "hashtab.h" (common/hashtab.h)
#   - store/ (its .c and .h files, private/ included) under 9,000 lines:
#     the archive, generations as bytes, live counters and deduplication,
#     not what merely uses them (issue 26):
#       store/: N lines, over the limit of 9000
#
#   tests/files.sh SOURCE_ROOT
set -eu

SRC=${1:?usage: files.sh SOURCE_ROOT}
cd "$SRC"
files=$(find . \( -name '*.c' -o -name '*.h' \) -type f ! -path './build*' \
	! -path './.git/*' ! -path './tests/*' ! -path './bench/*' ! -path './node_modules/*' |
	sed 's|^\./||' | sort)
[ -n "$files" ] || { echo "files.sh: no source files under $SRC" >&2; exit 1; }
comps=$(find . -mindepth 1 -maxdepth 1 -type d ! -name '.*' ! -name 'build*' \
	! -name tests ! -name bench -exec basename {} \; | sort)
bad=0
n=0
for f in $files; do
	n=$((n + 1))
	base=$(basename "$f")
	base=${base%.*}
	top=${f%%/*}
	for c in $comps; do
		if [ "$base" = "$c" ] && [ "$top" != "$c" ]; then
			echo "$f: named after the component $c/"
			bad=$((bad + 1))
		fi
	done
	lines=$(wc -l <"$f")
	case $f in
	*.c) max=1500 kind="source file" ;;
	*) max=300 kind=header ;;
	esac
	if [ "$lines" -gt "$max" ]; then
		echo "$f: $lines lines, over the limit of $max for a $kind"
		bad=$((bad + 1))
	fi
done
store=$(for f in $files; do case $f in store/*) cat "$f" ;; esac; done | wc -l)
if [ "$store" -ge 9000 ]; then
	echo "store/: $store lines, over the limit of 9000"
	bad=$((bad + 1))
fi
# uthash comes through common/hashtab.h, which makes its out-of-memory
# non-fatal: a product file that includes <uthash.h> itself would keep
# uthash's exit(-1).
for f in $files; do
	[ "$f" = common/hashtab.h ] && continue
	if grep -q '^[[:space:]]*#[[:space:]]*include[[:space:]]*<uthash\.h>' "$f"; then
		echo "$f: includes <uthash.h>; include \"hashtab.h\" (common/hashtab.h)"
		bad=$((bad + 1))
	fi
done
# score.c is the scoring pipeline's (app/score.c): nowhere else.
for f in $files; do
	case $f in
	app/score.c) ;;
	*/score.c)
		echo "$f: same name as app/score.c"
		bad=$((bad + 1))
		;;
	esac
done
if [ "$bad" -gt 0 ]; then
	echo "files.sh: $bad offence(s) in $n product files" >&2
	exit 1
fi
echo "files.sh: $n product files; none named after another component, none over the size limits; store/ $store lines"
