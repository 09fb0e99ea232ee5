#!/bin/sh
# SPDX-License-Identifier: MIT
# Check the pvtimer Promela model with spin (tests/model, docs/model.md).
# usage: run.sh MODEL_DIR clean|bug NAME [-DMACRO ...]
#   clean: the exhaustive safety search must finish with no error;
#   bug:   spin must find a counterexample (the test fails if it does not).
# Exits 77 when spin or a C compiler is missing. Prints spin's figures
# (states stored, transitions, depth, seconds) and, for a bug, the
# violated assertion and the trail's length.
set -eu
dir=$1; expect=$2; name=$3; shift 3
command -v spin >/dev/null 2>&1 || { echo "spin not installed: skip"; exit 77; }
cc=${CC:-cc}
command -v "$cc" >/dev/null 2>&1 || cc=gcc
command -v "$cc" >/dev/null 2>&1 || { echo "no C compiler: skip"; exit 77; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$dir"/*.pml "$work"/
cd "$work"
spin "$@" -a pvtimer.pml >spin.log 2>&1 || { cat spin.log; exit 1; }
# SAFETY: assertions and invalid end states; COLLAPSE: compressed states.
"$cc" -O2 -w -DSAFETY -DCOLLAPSE -DMEMLIM=3000 -o pan pan.c
start=$(date +%s)
./pan -m20000000 >pan.log 2>&1 || true
end=$(date +%s)

figure() { grep -E "$1" pan.log | head -1 | sed 's/^ *//'; }
states=$(figure 'states, stored' | awk '{print $1}')
trans=$(figure 'transitions \(' | awk '{print $1}')
depth=$(figure 'depth reached' | sed 's/.*depth reached \([0-9]*\).*/\1/')
errors=$(figure 'errors:' | sed 's/.*errors: *\([0-9]*\).*/\1/')
echo "model $name [$*]: states=$states transitions=$trans depth=$depth" \
     "errors=${errors:-?} seconds=$((end - start))"
if grep -q 'max search depth too small\|out of memory\|aborted' pan.log; then
	echo "search incomplete:"; tail -5 pan.log; exit 1
fi
case $expect in
clean)
	[ "${errors:-x}" = 0 ] && exit 0
	grep -E 'assertion violated|invalid end state' pan.log | head -3
	echo "FAIL: the fixed model has a counterexample; replay with:"
	echo "  spin $* -t -p pvtimer.pml"
	exit 1 ;;
bug)
	if [ "${errors:-0}" != 0 ]; then
		grep -E 'assertion violated|invalid end state' pan.log | head -1
		echo "found, as expected (trail of $depth steps)"
		exit 0
	fi
	echo "FAIL: spin found no counterexample with the fix reverted"
	exit 1 ;;
esac
echo "usage: run.sh DIR clean|bug NAME [-D...]"; exit 2
