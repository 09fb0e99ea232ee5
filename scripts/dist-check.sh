#!/bin/sh
# SPDX-License-Identifier: MIT
# CI step: the `meson dist` tarball is a complete source release. Make it
# from the committed tree, unpack it in a temporary directory, configure,
# build and run `meson test` there (meson dist's own test run is skipped so
# the steps show separately and take the options below).
# usage: scripts/dist-check.sh [BUILD_DIR [meson setup options for the unpacked tree...]]
# EXITLESS_DIST_TEST_ARGS: extra `meson test` arguments (default none: every
# suite), e.g. "--no-suite stress" where the timing-sensitive suites already
# ran in other builds of the same tree.
set -eu
cd "$(dirname "$0")/.."
build=${1:-build-dist}
[ $# -gt 0 ] && shift
start=$(date +%s)
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" >/dev/null
fi
rm -rf "$build/meson-dist"
meson dist -C "$build" --no-tests --formats xztar
tarball=$(ls "$build"/meson-dist/*.tar.xz)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -xJf "$tarball" -C "$tmp"
src=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d)
# nothing of the git checkout may leak in: the tarball stands alone
[ ! -e "$src/.git" ] || { echo "dist-check: .git in the tarball" >&2; exit 1; }
meson setup "$tmp/build" "$src" "$@"
meson compile -C "$tmp/build"
# shellcheck disable=SC2086
meson test -C "$tmp/build" --print-errorlogs --num-processes 2 ${EXITLESS_DIST_TEST_ARGS:-}
echo "dist-check: $(basename "$tarball") ($(du -k "$tarball" | cut -f1) KiB) built and tested in $(($(date +%s) - start)) s"
