#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/store_archive/tool_read_fault.sh - vigil-archive verify and dump of
# an archive whose one plain segment cannot be read at a byte inside its
# last record (the fault shim's read-eio-at: a bad sector). Both exit 1
# with one line on stderr naming the place reading stopped, FILE:OFFSET:,
# the end of the last record read (where the first record not read
# begins), within a page or so of the bad byte: the reader reads a page
# at a time after a failed read; dump has printed the records before it,
# verify counted them.
# With the fault gone, both read everything again.
#   tests/store_archive/tool_read_fault.sh  (meson's environment:
#   VIGIL_BUILD_ROOT, VIGIL_SOURCE_ROOT, VIGIL_FAULT_SHIM the shim)
set -eu
VT_NAME=store-archive-tool-read-fault
# shellcheck source=tests/lib/vt.sh
. "${VIGIL_SOURCE_ROOT:?VIGIL_SOURCE_ROOT not set}/tests/lib/vt.sh"
SHIM=${VIGIL_FAULT_SHIM:?VIGIL_FAULT_SHIM not set}
ARC=$(vt_prog vigil-archive)

# vigil-archive with the shim preloaded, its faults in $D/fault: status in
# $rc, stdout in $D/out, stderr in $D/err
mkdir "$D/fault"
faulty() {
	set +e
	LD_PRELOAD=$SHIM VIGIL_FAULT_DIR=$D/fault "$ARC" "$@" >"$D/out" 2>"$D/err"
	rc=$?
	set -e
}
# the offset of line $1 of the clean dump (records, in file order)
offset_of() {
	sed -n "$1p" "$D/all.jsonl" | grep -o '"offset":[0-9]*' | cut -d: -f2
}

# The archive: one day of traffic scored by an offline nightly replay, one
# plain segment of about 1.7 MB. The reader takes a plain segment 1 MiB at
# a time (store/reader.c): the fault lies past the first read, so records
# come out before the read that fails.
"$(vt_prog vigil-gen)" --cards 3000 --days 1 -q -o "$D/t.csv" || fail "vigil-gen: exit $?"
"$(vt_prog vigil-replay)" --csv "$D/t.csv" -r "$S/rules/default.rules" --nightly --no-model \
	--work "$D/w" -q >/dev/null 2>"$D/err" || fail "vigil-replay --work: $(head -c 300 "$D/err")"
A=$D/w/archive
set -- "$A"/seg-*.log
[ $# -eq 1 ] && [ -f "$1" ] || fail "want one plain segment in $A: $(ls "$A")"
SEG=$1
faulty dump "$A"
[ "$rc" -eq 0 ] || fail "dump, no fault: exit $rc: $(cat "$D/err")"
mv "$D/out" "$D/all.jsonl"
total=$(wc -l <"$D/all.jsonl")
N=$(($(offset_of "$total") + 1)) # a byte of the last record
[ "$N" -gt 1048576 ] || fail "the last record at $N, inside the first 1 MiB: no read before the fault"
echo "$N" >"$D/fault/read-eio-at"

# dump: the records before the fault, then the place
faulty dump "$A"
[ "$rc" -eq 1 ] || fail "dump, read-eio-at $N: exit $rc, expected 1: $(cat "$D/err")"
k=$(wc -l <"$D/out")
[ "$k" -ge 1 ] && [ "$k" -lt "$total" ] || fail "dump, read-eio-at $N: $k of $total records printed"
head -n "$k" "$D/all.jsonl" | cmp -s - "$D/out" ||
	fail "dump, read-eio-at $N: its $k records are not the first $k of the clean dump"
P=$(offset_of $((k + 1)))
[ "$P" -gt 0 ] && [ "$P" -le "$N" ] || fail "dump, read-eio-at $N: stopped at $P"
# after the failed read the segment is read a page (4 KiB) at a time: only
# the page that holds the bad byte and the record across its start are lost
[ "$P" -gt $((N - 8192)) ] ||
	fail "dump, read-eio-at $N: stopped at $P, records between it and the bad page not read"
printf 'vigil-archive: %s:%s: read: Input/output error; the rest of %s is not dumped\n' \
	"$SEG" "$P" "$A" | cmp -s - "$D/err" || fail "dump, read-eio-at $N, stderr: $(cat "$D/err")"
# one segment file as PATH: its place is PATH
faulty dump "$SEG"
[ "$rc" -eq 1 ] || fail "dump SEGMENT, read-eio-at $N: exit $rc, expected 1: $(cat "$D/err")"
head -n "$k" "$D/all.jsonl" | cmp -s - "$D/out" || fail "dump SEGMENT, read-eio-at $N: stdout"
printf 'vigil-archive: %s:%s: read: Input/output error; the rest of %s is not dumped\n' \
	"$SEG" "$P" "$SEG" | cmp -s - "$D/err" ||
	fail "dump SEGMENT, read-eio-at $N, stderr: $(cat "$D/err")"

# verify: the same place, the records before it counted
rest="0 corrupt stretches (0 bytes), 0 undecodable payloads, 0 records lost in damaged zstd frames"
faulty verify -q "$A"
[ "$rc" -eq 1 ] || fail "verify, read-eio-at $N: exit $rc, expected 1: $(cat "$D/err")"
printf 'vigil-archive: %s:%s: read: Input/output error; the rest of %s is not verified\n' \
	"$SEG" "$P" "$A" | cmp -s - "$D/err" || fail "verify, read-eio-at $N, stderr: $(cat "$D/err")"
printf '%s: %s records in 1 segments, %s, not read to the end: ERROR\n' "$A" "$k" "$rest" |
	cmp -s - "$D/out" || fail "verify, read-eio-at $N, stdout: $(cat "$D/out")"

# the fault gone: everything read again
rm "$D/fault/read-eio-at"
faulty verify -q "$A"
[ "$rc" -eq 0 ] || fail "verify, fault removed: exit $rc: $(cat "$D/err") $(cat "$D/out")"
printf '%s: %s records in 1 segments, %s: OK\n' "$A" "$total" "$rest" | cmp -s - "$D/out" ||
	fail "verify, fault removed, stdout: $(cat "$D/out")"
faulty dump "$A"
[ "$rc" -eq 0 ] || fail "dump, fault removed: exit $rc: $(cat "$D/err")"
cmp -s "$D/all.jsonl" "$D/out" || fail "dump, fault removed: not the clean dump"

vt_done "verify and dump stop at a read error at $SEG:$P (fault at $N) after $k of $total records"
