#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/tsan.sh - the test suite under ThreadSanitizer: every test of the
# build but the few below, so that a new test is covered from the day it
# lands (the live state and its expiry, the archive and its writer thread,
# the generation switch, vigild's nng callbacks, admin and maintenance
# threads, the console, the C client's peers and the cluster link). A race
# in any process a test starts (vigild included) makes that process exit
# 66, and the test fails. .ci/run runs it; by hand:
#
#   ./deploy/build.sh build-tsan -Db_sanitize=thread -Db_lundef=false
#   tests/tsan.sh build-tsan
#
# Left out, by name (TSAN_SKIP below), each for a reason:
# - the tests that train XGBoost in the process (vigil-rebuild, --nightly
#   replays, the model cycle, the console's and report's browser tests
#   that start from a trained model): libxgboost and its OpenMP runtime
#   are not instrumented, so TSan reports their own synchronisation as
#   races, and they run 10-40 times slower under it;
# - clients-python: Python loads the C client with ctypes, and the TSan
#   runtime cannot be loaded by dlopen ("cannot allocate memory in static
#   TLS block");
# - the lint suite: no program of ours runs in it.
# Third-party reports TSan cannot see into are in tests/tsan.supp.
set -eu

# shellcheck source=bench/help.sh
. "$(dirname "$0")/../bench/help.sh"
[ $# -ge 1 ] || { echo "usage: tests/tsan.sh BUILD_DIR" >&2; exit 2; }
BUILD=$1
SRC=$(cd "$(dirname "$0")/.." && pwd)
if ! meson introspect "$BUILD" --buildoptions 2>/dev/null |
	grep -q '"name": "b_sanitize", "value": "thread"'; then
	echo "tsan.sh: $BUILD is not a build directory configured with -Db_sanitize=thread" >&2
	exit 2
fi
TSAN_SKIP="batch-train batch-rebuild batch-model-cycle batch-omp-passive bench-train-nightly
test_model_xgboost tools-replay tools-replay-exact rules-tool-explain-data cluster-night
server-vigild-model console-ui-selenium tools-report-ui
clients-python"
ninja -C "$BUILD" >/dev/null
# "vigil:SUITE / NAME", one a line; the lint suite and TSAN_SKIP dropped
TESTS=$(meson test -C "$BUILD" --list --no-rebuild 2>/dev/null |
	awk -v skip="$TSAN_SKIP" '
		BEGIN { n = split(skip, s, /[ \n]+/); for (i = 1; i <= n; i++) out[s[i]] = 1 }
		/ \/ / && $1 !~ /:lint$/ && !($3 in out) { print $3 }')
[ -n "$TESTS" ] || { echo "tsan.sh: no tests listed in $BUILD" >&2; exit 1; }
echo "tsan.sh: $(echo "$TESTS" | wc -l) tests under ThreadSanitizer" >&2
# TSan's defaults do the rest: every report printed, exit status 66.
TSAN_OPTIONS="suppressions=$SRC/tests/tsan.supp:second_deadlock_stack=1${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
export TSAN_OPTIONS
# Without address randomisation: gcc 12's TSan runtime aborts ("unexpected
# memory mapping") on kernels that randomise mmap with more bits than it
# expects; setarch -R holds for every process the tests start.
# shellcheck disable=SC2086 # one test name a word
exec setarch "$(uname -m)" -R meson test -C "$BUILD" --no-rebuild --print-errorlogs \
	--num-processes 2 --timeout-multiplier 4 $TESTS
