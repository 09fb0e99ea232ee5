#!/bin/sh
# SPDX-License-Identifier: MIT
# Instructions per select+reflect, per policy, counted by callgrind (stable
# on noisy machines, unlike time): Ir(N decisions) - Ir(0), divided by N.
# usage: decision-cost.sh BUILD_DIR [TRACE] [N]
set -eu
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
trace=${2:-$here/../../tests/data/idlepoll/phases.trace}
n=${3:-20000}
drv=$build/bench/idlepoll/idlepoll-decision-cost
command -v valgrind >/dev/null || { echo "valgrind missing"; exit 77; }
ir() {
	valgrind --tool=callgrind --callgrind-out-file=/dev/null \
		"$drv" "$1" 20000 "$2" "$trace" 2>&1 >/dev/null |
		sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
echo "trace: $(basename "$trace"), N = $n decisions, H = 20000 ns"
printf '%-10s %s\n' policy "instructions per select+reflect"
for p in fixed haltpoll kvm smart; do
	base=$(ir "$p" 0)
	full=$(ir "$p" "$n")
	printf '%-10s %s\n' "$p" "$(( (full - base) / n ))"
done
