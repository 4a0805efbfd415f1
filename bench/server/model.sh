#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/server/model.sh - vigild's throughput with the nightly model against
# the same vigild without it, in one run (docs/BENCHMARKS.md, issue 16's
# "vigild throughput with the model >= 90% of without"). It builds a data
# directory offline (vigil-gen traffic replayed with nightly rebuilds, so the
# current generation has a trained model), copies it, makes the copy's
# current generation model-free (vigil-rebuild --no-model --force), then
# alternates closed-loop vigil-loadgen runs against vigild on each copy and
# prints replies/s per run and the median ratio.
#   bench/server/model.sh [BUILD_DIR] [SECONDS] [ROUNDS]   (build-bench, 3, 5)
# Environment: CONCURRENCY (default 32), URL_KIND (ipc or tcp; default ipc).
set -eu

# shellcheck source=bench/help.sh
. "$(dirname "$0")/../help.sh"
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
BUILD=${1:-build-bench}
SECS=${2:-3}
ROUNDS=${3:-5}
CONC=${CONCURRENCY:-32}
KIND=${URL_KIND:-ipc}
for p in server/vigild bench/server/vigil-loadgen; do
	[ -x "$BUILD/$p" ] || { echo "model.sh: $BUILD/$p missing: build it first" >&2; exit 1; }
done
TMP=$(mktemp -d /tmp/vigil-bench-model-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
RULES=$src/rules/default.rules
. "$here/modeldata.sh"
model_data "$BUILD" "$RULES" "$TMP/with"
mv "$TMP/with.meta.json" "$TMP/meta.json"
cp -r "$TMP/with" "$TMP/without"
# the same as-of as the model's generation: the same tables and thresholds
asof=$(sed -n 's/.*"as_of_ms":\([0-9]*\).*/\1/p' "$TMP/meta.json")
"$BUILD/batch/vigil-rebuild" --data "$TMP/without" --as-of "$(date -u -d "@$((asof / 1000))" +%Y-%m-%dT%H:%M:%SZ)" \
	--force --no-model --rules "$RULES" -q
if "$BUILD/batch/vigil-rebuild" --data "$TMP/without" --dump-model >/dev/null 2>&1; then
	echo "model.sh: the copy still has a model" >&2; exit 1
fi

one() { # DATA -> replies/s
	url=ipc://$TMP/vigild.sock
	[ "$KIND" = tcp ] && url=tcp://127.0.0.1:19471
	"$BUILD/server/vigild" --data "$1" --listen "$url" --admin off --rules "$RULES" \
		2>"$TMP/vigild.log" &
	pid=$!
	n=0
	# ready once it answers a health request on the socket
	until "$BUILD/bench/server/vigil-loadgen" --url "$url" --requests 1 --warmup 0 \
		>/dev/null 2>&1; do
		n=$((n + 1))
		[ "$n" -lt 300 ] || { echo "model.sh: vigild did not start: $(cat "$TMP/vigild.log")" >&2; exit 1; }
		sleep 0.1
	done
	out=$("$BUILD/bench/server/vigil-loadgen" --url "$url" --concurrency "$CONC" \
		--duration "$SECS" --json) || { kill "$pid"; echo "model.sh: loadgen failed" >&2; exit 1; }
	kill -TERM "$pid"
	wait "$pid" || true
	echo "$out" | sed -n 's/.*"rate":\([0-9.]*\).*/\1/p'
}

echo "round with_model/s without/s ratio"
r=1
: > "$TMP/ratios"
while [ "$r" -le "$ROUNDS" ]; do
	a=$(one "$TMP/with")
	b=$(one "$TMP/without")
	ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", a / b }')
	echo "$r $a $b $ratio"
	echo "$ratio" >> "$TMP/ratios"
	r=$((r + 1))
done
sort -n "$TMP/ratios" | awk '{ v[NR] = $1 } END { printf "median ratio %.3f over %d rounds\n", v[int((NR + 1) / 2)], NR }'
echo "model: $(cat "$TMP/meta.json")"
