#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/tsan.sh - the tests of vigil's own threads under ThreadSanitizer:
# the live state and its expiry, the archive and its writer thread, the
# generation switch, vigild's nng callbacks, admin and maintenance
# threads, the C client's peers and the cluster link. A race in any
# process a test starts (vigild included) makes that process exit 66, and
# the test fails. .ci/run runs it; by hand:
#
#   ./deploy/build.sh build-tsan -Db_sanitize=thread -Db_lundef=false
#   tests/tsan.sh build-tsan
#
# Left out: the tests that train XGBoost in the process (batch-train,
# batch-rebuild, tools-replay, test_model_xgboost, and the integration
# tests around vigil-rebuild and --nightly replays): libxgboost and its
# OpenMP runtime are not instrumented, so TSan reports their own
# synchronisation as races, and they run 10-40 times slower under it.
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
# TSan's defaults do the rest: every report printed, exit status 66.
TSAN_OPTIONS="suppressions=$SRC/tests/tsan.supp:second_deadlock_stack=1${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
export TSAN_OPTIONS
# Without address randomisation: gcc 12's TSan runtime aborts ("unexpected
# memory mapping") on kernels that randomise mmap with more bits than it
# expects; setarch -R holds for every process the tests start.
exec setarch "$(uname -m)" -R meson test -C "$BUILD" --print-errorlogs --num-processes 2 --timeout-multiplier 4 \
	common common-hashtab common-vec common-evconn \
	test_app_score \
	store-archive store-archive-group store-record store-archive-fault store-archive-crash \
	store-archive-vigild-fault store-archive-vigild-corrupt \
	store-gen store-gencheck store-live store-db store-live-crash store-live-sweep \
	store-db-maintain store-live-hot store-live-mask store-ids store-vigild-gen \
	server-wire server-obs server-config server-tune \
	server-vigild server-exposure server-inflight server-tls server-tls-crl \
	server-admin-probes server-admin-unix server-ship server-steady \
	clients-ring clients-reply clients-peers clients-vigild clients-redial \
	batch-kill batch-live-switch bench-pipeline cluster-nats
