#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/shellcheck.sh - the `lint` suite: every shell script of the source
# tree (*.sh outside build directories, the scripts without that suffix
# whose first line is a #!/bin/sh or bash one, such as deploy/vigil-ship,
# the Slurm *.sbatch files and .ci/run) through shellcheck at warning
# level. Exit 77 (skipped, with a message) when shellcheck is not
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
# Scripts named without .sh (installed commands, sbatch files, .ci/run):
# by their first line.
more=$(find . -type f \( ! -name '*.*' -o -name '*.sbatch' \) ! -path './build*' ! -path './.git/*' \
	! -path './demo-data/*' ! -path '*/node_modules/*' \
	-exec sh -c 'head -n 1 "$1" | grep -Eq "^#! ?(/usr)?/bin/(env )?(ba)?sh( |\$)"' _ {} \; -print | sort)
[ -n "$more" ] && files="$files $more"
n=$(echo "$files" | wc -w)
[ "$n" -gt 0 ] || { echo "shellcheck.sh: no scripts found under $SRC" >&2; exit 1; }
# shellcheck disable=SC2086
shellcheck -S warning $files
echo "shellcheck.sh: $n scripts clean"
