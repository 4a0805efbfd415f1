# SPDX-License-Identifier: MIT
# shellcheck shell=sh
# bench/help.sh - sourced by every bench script and by tests/tsan.sh right
# after `set -eu`: with -h or --help as the script's first argument,
# prints its header comment (from its third line to `set -eu`) and exits 0.
case "${1:-}" in
-h | --help)
	sed -n '3,/^set -eu$/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit 0
	;;
esac
