#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/layout.sh - the `lint` suite: private headers stay private. A header
# named *_int.h belongs to the component directory it is in (the directory
# above, for one in a private/ directory): store/private/live_obj_int.h is
# store/'s, tools/replay/report_int.h is tools/replay/'s. No product file
# outside that directory may include it; tests/ and bench/ may (white-box
# tests and benches of a component's internals, which say so in meson by
# depending on e.g. store_private_dep). One line per offence:
#   FILE:LINE: includes HEADER, private to DIR/
# store/'s views (live_view.h, table_view.h) are for features/db/ only.
# The layers features/ (the schema library) < store/ < features/db/
# (store_db): no file includes a header of a layer above its own. And sizes:
# in the components that hold the data path's core (store/, features/), no
# source file over 1,500 lines and no header over 300:
#   FILE: N lines, over the limit of M for a source file (or header)
#
#   tests/layout.sh SOURCE_ROOT
set -eu

SRC=${1:?usage: layout.sh SOURCE_ROOT}
cd "$SRC"
# Build directories may sit inside the source tree (build*/, gitignored).
headers=$(find . -name '*_int.h' -type f ! -path './build*' ! -path './.git/*' \
	! -path './tests/*' ! -path './bench/*' | sed 's|^\./||' | sort)
[ -n "$headers" ] || { echo "layout.sh: no *_int.h found under $SRC" >&2; exit 1; }
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
bad=0
nfiles=0
for f in $(find . \( -name '*.c' -o -name '*.h' \) -type f ! -path './build*' \
	! -path './.git/*' ! -path './tests/*' ! -path './bench/*' | sed 's|^\./||' | sort); do
	nfiles=$((nfiles + 1))
	# #include "X_int.h" (or "dir/X_int.h"): the line number and the base name
	grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[^"]*_int\.h"' "$f" 2>/dev/null |
		sed 's|^\([0-9]*\):.*"\([^"]*/\)\{0,1\}\([^"/]*_int\.h\)".*|\1 \3|' >"$tmp" || true
	while read -r line base; do
		for h in $headers; do
			[ "$(basename "$h")" = "$base" ] || continue
			dir=$(dirname "$h")
			case $dir in */private) dir=${dir%/private} ;; esac
			case $f in
			"$dir"/*) ;;
			*)
				echo "$f:$line: includes $h, private to $dir/"
				bad=$((bad + 1))
				;;
			esac
		done
	done <"$tmp"
done
# store/'s views (*_view.h: the live objects as a lookup reads them) are
# public for features/db/ (the velocity features, the profile cache) only:
#   FILE:LINE: includes HEADER, store/'s view for features/db/ only
views=$(find store -maxdepth 1 -name '*_view.h' -type f -exec basename {} \; | sort)
for f in $(find . \( -name '*.c' -o -name '*.h' \) -type f ! -path './build*' \
	! -path './.git/*' ! -path './tests/*' ! -path './bench/*' \
	! -path './store/*' ! -path './features/db/*' | sed 's|^\./||' | sort); do
	for h in $views; do
		grep -n "^[[:space:]]*#[[:space:]]*include[[:space:]]*\"\([^\"]*/\)\{0,1\}$h\"" "$f" |
			sed "s|^\([0-9]*\):.*|$f:\1: includes store/$h, store/'s view for features/db/ only|" >"$tmp" || true
		if [ -s "$tmp" ]; then
			cat "$tmp"
			bad=$((bad + $(wc -l <"$tmp")))
		fi
	done
done
if [ "$bad" -gt 0 ]; then
	echo "layout.sh: $bad include(s) of another component's private header or view" >&2
	exit 1
fi
# The layers of the data path, bottom up: features/ (the schema library:
# schema.def and what is made from it, on common/ only), store/ (archive,
# generations, live state, on features/), features/db/ (store_db, the
# serving object, on store/'s public headers). Arrows point down only:
#   FILE:LINE: includes HEADER of store/, which builds on features/
#   FILE:LINE: includes HEADER of features/db/, which builds on store/
: >"$tmp"
storeh=$(find store -name '*.h' -type f -exec basename {} \; | sort -u)
for f in $(find features -maxdepth 1 \( -name '*.c' -o -name '*.h' \) -type f 2>/dev/null | sort); do
	for h in $storeh; do
		grep -n "^[[:space:]]*#[[:space:]]*include[[:space:]]*\"$h\"" "$f" |
			sed "s|^\([0-9]*\):.*|$f:\1: includes $h of store/, which builds on features/|" >>"$tmp" || true
	done
done
dbh=$(find features/db -name '*.h' -type f -exec basename {} \; 2>/dev/null | sort -u)
for f in $(find store features -maxdepth 1 \( -name '*.c' -o -name '*.h' \) -type f 2>/dev/null | sort) \
	$(find store/private -name '*.h' -type f 2>/dev/null | sort); do
	for h in $dbh; do
		grep -n "^[[:space:]]*#[[:space:]]*include[[:space:]]*\"$h\"" "$f" |
			sed "s|^\([0-9]*\):.*|$f:\1: includes $h of features/db/, which builds on store/|" >>"$tmp" || true
	done
done
if [ -s "$tmp" ]; then
	cat "$tmp"
	echo "layout.sh: an include points up the layers (features/ < store/ < features/db/)" >&2
	exit 1
fi
big=0
for f in $(find store features \( -name '*.c' -o -name '*.h' \) -type f 2>/dev/null | sort); do
	n=$(wc -l <"$f")
	case $f in
	*.c) max=1500 kind="source file" ;;
	*) max=300 kind=header ;;
	esac
	if [ "$n" -gt "$max" ]; then
		echo "$f: $n lines, over the limit of $max for a $kind"
		big=$((big + 1))
	fi
done
if [ "$big" -gt 0 ]; then
	echo "layout.sh: $big file(s) of store/ or features/ over the size limit" >&2
	exit 1
fi
echo "layout.sh: $nfiles files, no private header included outside its component," \
	"store/'s views only in features/db/;" \
	"layers features/ < store/ < features/db/ kept; store/ and features/ within the size limits"
