#!/bin/sh
# SPDX-License-Identifier: MIT
# The ABI baseline of the three shared libraries: abidw dumps in abi/,
# compared with abidiff so that an accidental break fails CI.
#
# usage: scripts/abi-check.sh [--update] [BUILD_DIR]
#   (default BUILD_DIR: build; it must be a build with debug info, which the
#   default debugoptimized build type has)
#   --update  write abi/<lib>.abi from BUILD_DIR (after a deliberate,
#             reviewed ABI change or a new release), then commit them
#   otherwise dump BUILD_DIR's libraries and abidiff each against its
#   committed dump: exit 1 on any change but added symbols (a removed
#   symbol, a changed type, signature or SONAME) or on a missing baseline.
#   Added symbols are printed and pass, with a reminder to refresh the
#   baseline in the release that adds them. A deliberate change that
#   follows the growth rules (a field appended to an sz-versioned struct, a
#   reserved byte given a meaning) also fails here: review it, then --update.
#
# Only the types of the public headers count (--headers-dir, private types
# dropped); dumps carry no paths, locations or architecture-dependent ids,
# so they are the same from any checkout.
set -eu
cd "$(dirname "$0")/.."
update=0
if [ "${1:-}" = "--update" ]; then
	update=1
	shift
fi
build=${1:-build}
command -v abidw >/dev/null && command -v abidiff >/dev/null || {
	echo "abi-check: abidw/abidiff missing (Debian: apt-get install abigail-tools)" >&2
	exit 1
}

# name, shared object (relative to BUILD_DIR), public header directories
LIBS="pvtimer:libpvtimer/libexitless-pvtimer.so:libpvtimer/include/exitless
idlepoll:libidlepoll/libexitless-idlepoll.so:libidlepoll/include/exitless
agent:libagent/libexitless-agent.so:libagent/include/exitless,libpvtimer/include/exitless"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
[ $update -eq 0 ] || mkdir -p abi

dump() { # so out headers
	hd=""
	for d in $(echo "$3" | tr ',' ' '); do
		hd="$hd --headers-dir $d"
	done
	# shellcheck disable=SC2086
	abidw --no-corpus-path --no-comp-dir-path --no-show-locs \
		--no-architecture --type-id-style hash --drop-private-types \
		$hd --out-file "$2" "$1"
}

# Which libraries this build defines (a non-x86-64 build has libidlepoll
# only): a defined library whose file is missing is an error, not a skip.
meson introspect "$build" --targets | python3 -c '
import json, sys
for t in json.load(sys.stdin):
    if t["type"] == "shared library":
        print(t["name"])' >"$tmp/defined"

echo "$LIBS" | while IFS=: read -r name so headers; do
	lib="$build/$so"
	if ! grep -qx "exitless-$name" "$tmp/defined"; then
		echo "abi-check: $name: not part of this build, skipped"
		continue
	fi
	if [ ! -f "$lib" ]; then
		echo "abi-check: $name: $lib missing (build it first)"
		echo fail >>"$tmp/status"
		continue
	fi
	if [ $update -eq 1 ]; then
		dump "$lib" "abi/$name.abi" "$headers"
		echo "abi-check: wrote abi/$name.abi"
		continue
	fi
	if [ ! -f "abi/$name.abi" ]; then
		echo "abi-check: $name: no baseline abi/$name.abi (scripts/abi-check.sh --update)"
		echo fail >>"$tmp/status"
		continue
	fi
	dump "$lib" "$tmp/$name.abi" "$headers"
	# abidiff's exit status is a bit set: 1 error, 2 usage error, 4 ABI
	# change, 8 incompatible change (removals only: a changed struct is
	# just 4). With added symbols filtered out, any status is a failure.
	rc=0
	abidiff --drop-private-types --no-added-syms "abi/$name.abi" \
		"$tmp/$name.abi" >"$tmp/$name.diff" 2>&1 || rc=$?
	if [ $rc -ne 0 ]; then
		echo "abi-check: $name: ABI CHANGED against abi/$name.abi (abidiff status $rc):"
		cat "$tmp/$name.diff"
		echo fail >>"$tmp/status"
		continue
	fi
	rc=0
	abidiff --drop-private-types "abi/$name.abi" "$tmp/$name.abi" \
		>"$tmp/$name.diff" 2>&1 || rc=$?
	if [ $rc -ne 0 ]; then
		echo "abi-check: $name: symbols added (compatible); refresh the baseline in the release that adds them:"
		cat "$tmp/$name.diff"
	else
		echo "abi-check: $name: same ABI as abi/$name.abi"
	fi
done
[ -f "$tmp/status" ] && status=1
exit $status
