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
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
BUILD=${1:-build-bench}
SECS=${2:-3}
ROUNDS=${3:-5}
CONC=${CONCURRENCY:-32}
KIND=${URL_KIND:-ipc}
for p in server/vigild bench/server/vigil-loadgen tools/gen/vigil-gen tools/replay/vigil-replay \
	batch/vigil-rebuild; do
	[ -x "$BUILD/$p" ] || { echo "model.sh: $BUILD/$p missing: build it first" >&2; exit 1; }
done
TMP=$(mktemp -d /tmp/vigil-bench-model-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
RULES=$src/rules/default.rules

echo "model.sh: building a data directory with a trained model (offline replay)" >&2
"$BUILD/tools/gen/vigil-gen" --cards 2000 --days 24 --fraud-rate 0.02 --seed 5 -q -o "$TMP/t.csv"
"$BUILD/tools/replay/vigil-replay" --csv "$TMP/t.csv" --rules "$RULES" --nightly \
	--label-delay 2d --force-label-delay --work "$TMP/with" -q
"$BUILD/batch/vigil-rebuild" --data "$TMP/with" --dump-model-meta > "$TMP/meta.json" || {
	echo "model.sh: the replay's last generation has no model" >&2; exit 1; }
cp -r "$TMP/with" "$TMP/without"
"$BUILD/batch/vigil-rebuild" --data "$TMP/without" --as-of "$(date -u +%Y-%m-%d)" --force \
	--no-model --rules "$RULES" -q
if "$BUILD/batch/vigil-rebuild" --data "$TMP/without" --dump-model >/dev/null 2>&1; then
	echo "model.sh: the copy still has a model" >&2; exit 1
fi

one() { # DATA -> replies/s
	url=ipc://$TMP/vigild.sock
	[ "$KIND" = tcp ] && url=tcp://127.0.0.1:19471
	"$BUILD/server/vigild" --data "$1" --listen "$url" --admin off --rules "$RULES" \
		2>"$TMP/vigild.log" &
	pid=$!
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
