#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/layout_selftest.sh - the `lint` suite: tests/layout.sh on a small
# tree of its own, so that each rule is seen to fail where it must: a
# product file including another component's private header, or a store/
# view (*_view.h) outside store/ and features/db/; and the tree without
# them passes.
#
#   tests/layout_selftest.sh LAYOUT_SH
set -eu

LAYOUT=${1:?usage: layout_selftest.sh LAYOUT_SH}
dir=$(mktemp -d)
out=$(mktemp)
trap 'rm -rf "$dir" "$out"' EXIT
fail() {
	echo "layout_selftest.sh: $*" >&2
	cat "$out" >&2
	exit 1
}

mkdir -p "$dir/store/private" "$dir/features/db" "$dir/app"
echo '/* private */' >"$dir/store/private/live_obj_int.h"
echo '/* view */' >"$dir/store/live_view.h"
printf '#include "live_view.h"\n#include "live_obj_int.h"\n' >"$dir/store/live.c"
printf '#include "live_view.h"\n' >"$dir/features/db/velocity.c"
printf '#include "app.h"\n' >"$dir/app/score.c"
echo '/* app */' >"$dir/app/app.h"

# The allowed includes: store/'s own, features/db/'s view.
sh "$LAYOUT" "$dir" >"$out" 2>&1 || fail "a clean tree fails"

# A view outside features/db/, by name and by path.
printf '#include "app.h"\n#include "live_view.h"\n' >"$dir/app/score.c"
printf '#include "store/live_view.h"\n' >"$dir/app/other.c"
if sh "$LAYOUT" "$dir" >"$out" 2>&1; then
	fail "app/ including store/live_view.h passes"
fi
grep -qx "app/score.c:2: includes store/live_view.h, store/'s view for features/db/ only" "$out" ||
	fail "no line for app/score.c:2"
grep -qx "app/other.c:1: includes store/live_view.h, store/'s view for features/db/ only" "$out" ||
	fail "no line for app/other.c:1"
rm "$dir/app/other.c"

# A private header outside its component.
printf '#include "app.h"\n#include "live_obj_int.h"\n' >"$dir/app/score.c"
if sh "$LAYOUT" "$dir" >"$out" 2>&1; then
	fail "app/ including store/private/live_obj_int.h passes"
fi
grep -qx "app/score.c:2: includes store/private/live_obj_int.h, private to store/" "$out" ||
	fail "no line for app/score.c:2 (private header)"
echo "layout_selftest.sh: views and private headers reported where included"
