#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Fail when a shared object's exported symbols differ from its version script.

usage: symbols-check.py LIB.so MAP
"""
import re
import subprocess
import sys

# Symbols the toolchain or a sanitizer runtime may add; never ours.
IGNORED = re.compile(r'^(_init|_fini|_edata|_end|__bss_start|__(a|t|ub|l)san_.*|__odr_asan.*|__sancov.*)$')


def map_symbols(path):
    text = re.sub(r'/\*.*?\*/|#.*', '', open(path).read(), flags=re.S)
    names = set()
    for block in re.findall(r'global:(.*?)(?:local:|\})', text, flags=re.S):
        names.update(s.strip() for s in block.split(';') if s.strip())
    return names


def exported(lib):
    out = subprocess.run(['nm', '-D', '--defined-only', lib], check=True,
                         capture_output=True, text=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] in 'TDBRVWiu':
            names.add(parts[2].split('@')[0])
    return {n for n in names if not IGNORED.match(n) and not n.startswith('EXITLESS_')}


def main():
    lib, mapfile = sys.argv[1], sys.argv[2]
    want, have = map_symbols(mapfile), exported(lib)
    extra, missing = sorted(have - want), sorted(want - have)
    for s in extra:
        print(f'{lib}: exports {s}, which is not in {mapfile}')
    for s in missing:
        print(f'{lib}: does not export {s}, listed in {mapfile}')
    print(f'{len(have)} exported symbols checked against {mapfile}')
    return 1 if extra or missing else 0


if __name__ == '__main__':
    sys.exit(main())
