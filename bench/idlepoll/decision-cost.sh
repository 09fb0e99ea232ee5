#!/bin/sh
# SPDX-License-Identifier: MIT
# Instructions per decision, per policy, counted by callgrind (stable on
# noisy machines, unlike time), inside the library calls only
# (--toggle-collect: the calls and what they call), divided by N:
#   select+reflect  the critical path, with idlepoll_work() run between
#                   decisions as a poll loop does;
#   work            idlepoll_work() per decision: the deferred upkeep, paid
#                   in the poll loop (or before halting), reported so that
#                   nothing hides in it;
#   no-work         select+reflect when the embedder never calls
#                   idlepoll_work() (select then does the upkeep itself).
# usage: decision-cost.sh BUILD_DIR [TRACE] [N] [H]
set -eu
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
trace=${2:-$here/../../tests/data/idlepoll/phases.trace}
n=${3:-20000}
h=${4:-20000}
drv=$build/bench/idlepoll/idlepoll-decision-cost
command -v valgrind >/dev/null || { echo "valgrind missing"; exit 77; }
ir() { # policy work toggle-collect...
	policy=$1 work=$2
	shift 2
	valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" \
		"$drv" "$policy" "$h" "$n" "$trace" "$work" 2>&1 >/dev/null |
		sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
crit="--toggle-collect=idlepoll_select --toggle-collect=idlepoll_reflect"
echo "trace: $(basename "$trace"), N = $n decisions, H = $h ns"
printf '%-10s %15s %8s %8s\n' policy select+reflect work no-work
for p in fixed haltpoll kvm smart; do
	# shellcheck disable=SC2086
	c=$(ir "$p" 1 $crit)
	w=$(ir "$p" 1 --toggle-collect=idlepoll_work)
	# shellcheck disable=SC2086
	nw=$(ir "$p" 0 $crit)
	printf '%-10s %15s %8s %8s\n' "$p" "$((c / n))" "$((w / n))" "$((nw / n))"
done
