#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Fail when a shared object's exported symbols differ from its version script,
when a symbol is not in the version node the script puts it in, or when the
library calls one of its own exports through the PLT (interposable).

usage: symbols-check.py LIB.so MAP
"""
import re
import subprocess
import sys

# Symbols the toolchain or a sanitizer runtime may add; never ours.
IGNORED = re.compile(r'^(_init|_fini|_edata|_end|__bss_start|__(a|t|ub|l)san_.*|__odr_asan.*|__sancov.*)$')


def map_nodes(path):
    """{symbol: version node} from the version script."""
    text = re.sub(r'/\*.*?\*/|#.*', '', open(path).read(), flags=re.S)
    nodes = {}
    for node, body in re.findall(r'([A-Za-z0-9_.]+)\s*\{(.*?)\}', text, flags=re.S):
        m = re.search(r'global:(.*?)(?:local:|$)', body, flags=re.S)
        if not m:
            continue
        for sym in (x.strip() for x in m.group(1).split(';')):
            if sym:
                nodes[sym] = node
    return nodes


def map_symbols(path):
    return set(map_nodes(path))


def exported_nodes(lib):
    """{symbol: version node} of what the library defines and exports."""
    out = subprocess.run(['nm', '-D', '--defined-only', lib], check=True,
                         capture_output=True, text=True).stdout
    nodes = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] in 'TDBRVWiu':
            name, _, ver = parts[2].partition('@')
            nodes[name] = ver.lstrip('@')
    return nodes


def plt_self_calls(lib, own):
    """Own exported functions the library reaches through a PLT slot."""
    out = subprocess.run(['readelf', '-rW', lib], check=True,
                         capture_output=True, text=True).stdout
    calls = set()
    for line in out.splitlines():
        if 'JUMP_SLOT' in line:
            name = line.split()[-1].split('@')[0]
            if name in own:
                calls.add(name)
    return calls


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
    want_nodes, have_nodes = map_nodes(mapfile), exported_nodes(lib)
    want, have = set(want_nodes), exported(lib)
    extra, missing = sorted(have - want), sorted(want - have)
    for s in extra:
        print(f'{lib}: exports {s}, which is not in {mapfile}')
    for s in missing:
        print(f'{lib}: does not export {s}, listed in {mapfile}')
    wrong = sorted(s for s in want & have if have_nodes.get(s) != want_nodes[s])
    for s in wrong:
        print(f'{lib}: {s} is in version node {have_nodes.get(s) or "(none)"}, '
              f'{mapfile} puts it in {want_nodes[s]}')
    plt = sorted(plt_self_calls(lib, have))
    for s in plt:
        print(f'{lib}: calls its own export {s} through the PLT (interposable)')
    print(f'{len(have)} exported symbols checked against {mapfile} '
          f'(version nodes, no PLT self-calls)')
    return 1 if extra or missing or wrong or plt else 0


if __name__ == '__main__':
    sys.exit(main())
