#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/shellcheck.sh - the `lint` suite: every shell script of the source
# tree (*.sh outside build directories, and .ci/run) through shellcheck at
# warning level. Exit 77 (skipped, with a message) when shellcheck is not
# installed; deploy/bootstrap.sh installs it.
#
#   tests/shellcheck.sh SOURCE_ROOT
set -eu

SRC=${1:?usage: shellcheck.sh SOURCE_ROOT}
if ! command -v shellcheck >/dev/null 2>&1; then
	echo "shellcheck.sh: shellcheck not installed; skipped (deploy/bootstrap.sh installs it)"
	exit 77
fi
cd "$SRC"
# Build directories may sit inside the source tree (build*/, gitignored).
files=$(find . -name '*.sh' -type f ! -path './build*' ! -path './.git/*' ! -path './demo-data/*' | sort)
[ -f .ci/run ] && files="$files .ci/run"
n=$(echo "$files" | wc -w)
[ "$n" -gt 0 ] || { echo "shellcheck.sh: no scripts found under $SRC" >&2; exit 1; }
# shellcheck disable=SC2086
shellcheck -S warning $files
echo "shellcheck.sh: $n scripts clean"
