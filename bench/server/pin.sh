# SPDX-License-Identifier: MIT
# shellcheck shell=sh disable=SC2034
# bench/server/pin.sh - sourced by run.sh, cpu.sh and stages.sh: CPU
# pinning of the servers and the load generator, the same for vigil-echo and
# vigild so that their ratio stays fair. PIN unset or empty: nothing is
# pinned. PIN=LIST (a taskset -c list, e.g. "1" or "2-3"): every server runs
# under `taskset -c LIST` and the load generator under `taskset -c` of the
# other online CPUs (LOADGEN_CPUS overrides that list). Sets SRV_PIN and
# LG_PIN to the command prefixes (empty when not pinned) and PIN_DESC for
# the header. Also sets MEM_DESC for the header: "; free page reporting
# order N" where the kernel hands free memory back to a hypervisor (memory
# a server grows into is then backed again when first written, about 3.5 us
# of vigild's CPU a score on the VM of docs/BENCHMARKS.md; order 11 or more
# reports nothing: docs/vigild.md, "Memory"), else empty.

# The online CPUs not in the taskset list $1, as a taskset list ("" if none).
pin_others() {
	getconf _NPROCESSORS_ONLN | awk -v list="$1" '{
		n = split(list, part, ",")
		for (i = 1; i <= n; i++) {
			if (split(part[i], r, "-") == 2)
				for (c = r[1] + 0; c <= r[2] + 0; c++) pinned[c] = 1
			else
				pinned[part[i] + 0] = 1
		}
		s = ""
		for (c = 0; c < $1; c++)
			if (!(c in pinned))
				s = s (s == "" ? "" : ",") c
		print s
	}'
}

SRV_PIN=
LG_PIN=
PIN_DESC="not pinned"
if [ -n "${PIN:-}" ]; then
	command -v taskset >/dev/null 2>&1 || { echo "PIN=$PIN needs taskset (util-linux)" >&2; exit 1; }
	lg_cpus=${LOADGEN_CPUS:-$(pin_others "$PIN")}
	[ -n "$lg_cpus" ] || { echo "PIN=$PIN leaves no CPU for the load generator" >&2; exit 1; }
	SRV_PIN="taskset -c $PIN"
	LG_PIN="taskset -c $lg_cpus"
	PIN_DESC="servers on CPU $PIN, loadgen on CPU $lg_cpus"
fi
MEM_DESC=
fpr_order=/sys/module/page_reporting/parameters/page_reporting_order
if [ -r "$fpr_order" ]; then
	MEM_DESC="; free page reporting order $(cat "$fpr_order")"
fi
