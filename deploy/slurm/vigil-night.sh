#!/bin/sh
# SPDX-License-Identifier: MIT
# deploy/slurm/vigil-night.sh - submits a cluster's nightly rebuild to Slurm
# (docs/operations.md, "The nightly of a cluster"): a job array of
# VIGIL_PARTS tasks, task I running `vigil-rebuild --partition I/N` over every
# replica's shipped archive (vigil-part.sbatch), and a job that runs once all
# succeeded (--dependency=afterok) merging the partial files into a
# generation and installing it on every replica (vigil-merge.sbatch).
#
#   vigil-night.sh [--as-of YYYY-MM-DD] [--force] [--wait]
#
# Configuration, from the environment, with defaults from /etc/vigil/night.env
# if it exists (VIGIL_NIGHT_ENV names another file; a variable the
# environment exports wins over the file's); sbatch passes the environment
# to the jobs:
#   VIGIL_ARCHIVES   the shipped location: one subdirectory per replica
#                    ([store] ship_command = vigil-ship %p $VIGIL_ARCHIVES/%r)
#   VIGIL_BUILD      a data directory on shared storage where the generation
#                    is built (partial files go to $VIGIL_BUILD/parts/AS_OF/JOB/,
#                    JOB the partitions' job id, removed once merged)
#   VIGIL_REPLICAS   the replicas' data directories as the merge job's node
#                    sees them, space-separated (may be empty: replicas then
#                    pull at start, vigil-install-generation)
#   VIGIL_RULES      the rule file the replicas serve (thresholds tuned)
#   VIGIL_PARTS      partitions (array tasks), 2 to 4096, default 3
#   VIGIL_REBUILD_OPTS  more vigil-rebuild options for the partitions
#                    (--window, --threads, --train-window, --label-maturity,
#                    --labelled-only), default none
#   VIGIL_MERGE_OPTS more vigil-rebuild options for the merge (--keep,
#                    --threads, --no-model), default none
#   VIGIL_SBATCH_OPTS   more sbatch options for both jobs (--partition,
#                    --account, --mem ...), default none
#   VIGIL_BIN        where vigil-rebuild and vigil-install-generation are,
#                    default /usr/local/bin
#   OMP_WAIT_POLICY  default passive: XGBoost's OpenMP threads sleep when
#                    idle instead of spinning on the node's cores (as
#                    deploy/vigil-rebuild.service)
# --as-of defaults to today 00:00 UTC, fixed here so that every task builds
# the same night. --force builds it again when that date is already built
# (the merge's --force: after late labels, or segments shipped late).
# --wait waits for the merge job and exits with its status. Merges run one
# at a time (--dependency singleton: a night submitted while another runs
# merges after it).
# Prints the two job ids. Exit 0 submitted (or with --wait: merged and
# installed), 1 failed, 2 usage.
set -eu

me=vigil-night
envfile=${VIGIL_NIGHT_ENV:-/etc/vigil/night.env}
if [ -f "$envfile" ]; then
	# the file gives defaults: what the environment exports wins (an
	# operator's VIGIL_PARTS=6 for one run is not undone by the file)
	exported=$(export -p)
	# shellcheck disable=SC1090 # the site's file
	. "$envfile"
	eval "$exported"
fi
here=$(cd "$(dirname "$0")" && pwd)
asof=$(date -u +%Y-%m-%d)
wait='' force=''
while [ $# -gt 0 ]; do
	case $1 in
	--as-of) [ $# -ge 2 ] || { echo "$me: --as-of needs a date" >&2; exit 2; }; asof=$2; shift 2 ;;
	--wait) wait=1; shift ;;
	--force) force=--force; shift ;;
	-h|--help) sed -n '3,/^set -eu$/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "$me: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
# every task and the paths (parts/AS_OF, logs/*-AS_OF*) take this date: a
# bad one is refused here, not by each task after submission
case $asof in
[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]) ok=$(date -u -d "$asof" +%Y-%m-%d 2>/dev/null) || ok='' ;;
*) ok='' ;;
esac
[ -n "$ok" ] && [ "$ok" = "$asof" ] ||
	{ echo "$me: --as-of '$asof' is not a date YYYY-MM-DD (the night as of its 00:00 UTC)" >&2; exit 2; }
need() { [ -n "$2" ] || { echo "$me: set $1 ($3)" >&2; exit 2; }; }
need VIGIL_ARCHIVES "${VIGIL_ARCHIVES:-}" "the shipped archives"
need VIGIL_BUILD "${VIGIL_BUILD:-}" "the shared data directory the night is built in"
need VIGIL_RULES "${VIGIL_RULES:-}" "the rule file the replicas serve"
VIGIL_PARTS=${VIGIL_PARTS:-3}
# vigil-rebuild --partition I/N takes 2 <= N <= 4096: refused here, not by
# every task after submission
case $VIGIL_PARTS in
''|*[!0-9]*|0*) ok='' ;;
*) [ ${#VIGIL_PARTS} -le 4 ] && [ "$VIGIL_PARTS" -ge 2 ] && [ "$VIGIL_PARTS" -le 4096 ] && ok=1 || ok='' ;;
esac
[ -n "$ok" ] ||
	{ echo "$me: VIGIL_PARTS '$VIGIL_PARTS' is not a number of partitions from 2 to 4096" >&2; exit 2; }
export VIGIL_ARCHIVES VIGIL_BUILD VIGIL_RULES VIGIL_PARTS
export VIGIL_REPLICAS="${VIGIL_REPLICAS:-}" VIGIL_REBUILD_OPTS="${VIGIL_REBUILD_OPTS:-}"
export VIGIL_MERGE_OPTS="$force ${VIGIL_MERGE_OPTS:-}"
export VIGIL_BIN="${VIGIL_BIN:-/usr/local/bin}" VIGIL_AS_OF="$asof"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
mkdir -p "$VIGIL_BUILD/parts/$asof" "$VIGIL_BUILD/logs" ||
	{ echo "$me: $VIGIL_BUILD: cannot create parts/ and logs/" >&2; exit 1; }

# shellcheck disable=SC2086 # VIGIL_SBATCH_OPTS: several options
parts=$(sbatch --parsable ${VIGIL_SBATCH_OPTS:-} --job-name=vigil-part \
    --array="0-$((VIGIL_PARTS - 1))" --output="$VIGIL_BUILD/logs/part-$asof-%a.log" \
    "$here/vigil-part.sbatch") || { echo "$me: sbatch of the partitions failed" >&2; exit 1; }
parts=${parts%%;*}
# shellcheck disable=SC2086
merge=$(sbatch --parsable ${VIGIL_SBATCH_OPTS:-} --job-name=vigil-merge \
    --dependency="afterok:$parts,singleton" --kill-on-invalid-dep=yes \
    --export="ALL,VIGIL_PARTS_JOB=$parts" \
    --output="$VIGIL_BUILD/logs/merge-$asof.log" \
    "$here/vigil-merge.sbatch") || { echo "$me: sbatch of the merge failed" >&2; exit 1; }
merge=${merge%%;*}
echo "$me: as-of $asof: partitions job $parts (array of $VIGIL_PARTS), merge job $merge"
[ -n "$wait" ] || exit 0
# Wait for the merge job to leave the queue, then read its final state.
while squeue -h -j "$merge" 2>/dev/null | grep -q .; do sleep 2; done
state=$(scontrol show job "$merge" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
[ "$state" = COMPLETED ] || { echo "$me: merge job $merge ended ${state:-unknown}: $VIGIL_BUILD/logs/merge-$asof.log" >&2; exit 1; }
echo "$me: as-of $asof: merged and installed"
