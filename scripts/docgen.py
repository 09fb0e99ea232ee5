#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Reference documentation from the doxygen comments of the public headers.

usage: docgen.py list HEADER...
       docgen.py man --outdir DIR --version V --lib PKG HEADER...
       docgen.py check [--known-missing FILE] HEADER...

list   prints one man page name per public function (what `man` writes).
man    writes DIR/<function>.3 for every public function of the headers.
check  fails when a public function has no doc comment, no @param for one of
       its parameters, or no @return while it returns a value. Functions
       named in FILE (lines "HEADER FUNCTION", '#' comments) are reported but
       do not fail; a listed function that is now complete, or that no
       longer exists, fails (drop its line), so the list only ever shrinks.

A public function is a prototype or a static inline definition at file
scope whose name has no double underscore (those are private helpers). Its
doc comment is the /** ... */ block right before it. Only a subset of
doxygen is understood: @brief, @param NAME, @return(s), @c WORD, @p WORD,
`code`; that is all the headers use.
"""
import argparse
import os
import re
import sys


def strip_preprocessor(text):
    """Drop C++ guards and preprocessor lines (with their continuations)."""
    text = re.sub(r'#ifdef __cplusplus\n.*?#endif[^\n]*\n', '', text, flags=re.S)
    out, cont = [], False
    for line in text.split('\n'):
        if cont or line.lstrip().startswith('#'):
            cont = line.endswith('\\')
            out.append('')
            continue
        out.append(line)
    return '\n'.join(out)


def skip_comment(text, i):
    """i at '/*' or '//': index after the comment."""
    if text.startswith('//', i):
        j = text.find('\n', i)
        return len(text) if j < 0 else j
    j = text.find('*/', i + 2)
    return len(text) if j < 0 else j + 2


def skip_block(text, i):
    """i at '{': index after the matching '}' (comments skipped)."""
    depth = 0
    while i < len(text):
        if text.startswith('/*', i) or text.startswith('//', i):
            i = skip_comment(text, i)
            continue
        c = text[i]
        if c == '{':
            depth += 1
        elif c == '}':
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return i


def drop_attributes(code):
    """Remove __attribute__((...)) and FOO_API markers."""
    while True:
        m = re.search(r'__attribute__\s*\(', code)
        if not m:
            break
        i, depth = m.end() - 1, 0
        for j in range(i, len(code)):
            depth += {'(': 1, ')': -1}.get(code[j], 0)
            if depth == 0:
                break
        code = code[:m.start()] + code[j + 1:]
    return re.sub(r'\b[A-Z][A-Z0-9]*_API\b', '', code)


def split_params(params):
    out, depth, cur = [], 0, ''
    for c in params:
        if c == ',' and depth == 0:
            out.append(cur.strip())
            cur = ''
            continue
        depth += {'(': 1, ')': -1}.get(c, 0)
        cur += c
    if cur.strip():
        out.append(cur.strip())
    return [] if out in ([], ['void']) else out


def param_name(p):
    m = re.search(r'\(\s*\*\s*(\w+)\s*\)', p)  # function pointer
    if m:
        return m.group(1)
    m = re.search(r'(\w+)\s*(\[[^\]]*\])*\s*$', p)
    return m.group(1) if m else p


def parse_function(code):
    code = ' '.join(drop_attributes(code).split())
    m = re.match(r'^(.*?)\b(\w+)\s*\((.*)\)$', code, flags=re.S)
    if not m or re.search(r'\b(typedef|struct \w+ \{)', code):
        return None
    ret, name, params = m.group(1).strip(), m.group(2), m.group(3)
    ret = re.sub(r'\b(static|inline|extern)\b', '', ret).strip()
    if not ret or name in ('if', 'while', 'for', 'return'):
        return None
    plist = split_params(params)
    return {
        'name': name,
        'ret': ret,
        'params': plist,
        'names': [param_name(p) for p in plist],
        'proto': f'{ret} {name}({", ".join(plist) or "void"});'.replace('* ', '*'),
        'private': '__' in name,
    }


def functions(path, structs=None):
    """Yield (function, doc comment text or None) in header order; struct
    definitions go into @structs (name -> their text, member comments
    included) when it is given."""
    text = strip_preprocessor(open(path).read())
    i, doc, code, start = 0, None, '', 0
    while i < len(text):
        if text.startswith('/**', i) and not text.startswith('/**<', i) \
                and not text.startswith('/**/', i):
            j = skip_comment(text, i)
            if not code.strip():
                doc = text[i + 3:j - 2]
            i = j
            continue
        if text.startswith('/*', i) or text.startswith('//', i):
            i = skip_comment(text, i)
            continue
        c = text[i]
        if c == '{':
            f = parse_function(code)
            i = skip_block(text, i)
            if f and not f['private']:
                yield f, doc
            elif not f:  # struct/union/enum body: read on to its ';'
                j = text.find(';', i)
                i = len(text) if j < 0 else j + 1
                m = re.match(r'\s*struct\s+(\w+)\s*$', code)
                if m and structs is not None:
                    structs[m.group(1)] = text[start:i].strip()
            doc, code = None, ''
            continue
        if c == ';':
            f = parse_function(code)
            if f and not f['private']:
                yield f, doc
            doc, code = None, ''
        else:
            if not code.strip():
                start = i
            code += c
        i += 1


def parse_doc(doc):
    """Split a doc comment into description, {param: text}, return text."""
    lines = [re.sub(r'^\s*\* ?', '', l) for l in (doc or '').split('\n')]
    # a tag may follow text on its line: it starts a line of its own
    lines = '\n'.join(re.sub(r'(?<=\S)\s+(?=@(param|returns?|brief)\b)', '\n', l)
                      for l in lines).split('\n')
    desc, params, ret, cur = [], {}, [], None
    for line in lines:
        m = re.match(r'\s*@param(?:\[\w+\])?\s+(\w+)\s*(.*)', line)
        if m:
            cur = params.setdefault(m.group(1), [])
            cur.append(m.group(2))
            continue
        m = re.match(r'\s*@returns?\b\s*(.*)', line)
        if m:
            cur = ret
            cur.append(m.group(1))
            continue
        m = re.match(r'\s*@brief\s*(.*)', line)
        if m:
            cur = desc
            cur.append(m.group(1))
            continue
        if cur is not None and line.strip() == '':
            cur = None
        (cur if cur is not None else desc).append(line)
    join = lambda ls: '\n'.join(ls).strip()
    return join(desc), {k: join(v) for k, v in params.items()}, join(ret)


def missing(f, doc):
    if doc is None:
        return ['no doc comment']
    _, params, ret = parse_doc(doc)
    out = [f'no @param {n}' for n in f['names'] if n not in params]
    if f['ret'] != 'void' and not ret:
        out.append('no @return')
    return out


def roff(text):
    """Doxygen-ish text to roff: escapes, @c/@p/`code`, paragraphs, lists."""
    text = text.replace('\\', '\\e')
    text = re.sub(r'@c\s+([\w\->.]+)', r'\\fB\1\\fP', text)
    text = re.sub(r'@p\s+(\w+)', r'\\fI\1\\fP', text)
    text = re.sub(r'`([^`]+)`', r'\\fB\1\\fP', text)
    out = []
    for line in text.split('\n'):
        s = line.strip()
        if not s:
            out.append('.PP')
            continue
        if re.match(r'^[-*] ', s):
            out += ['.IP \\(bu 2', s[2:]]
            continue
        if s[0] in '.\'':
            s = '\\&' + s
        out.append(s)
    return '\n'.join(out)


def man_page(f, doc, header, version, lib, siblings, structs):
    desc, params, ret = parse_doc(doc)
    first = re.split(r'(?<=[.:;])\s', ' '.join(desc.split()), maxsplit=1)[0]
    summary = re.sub(r'[`@]|\b[cp] (?=\w)', '', first).rstrip('.:;') or f['name']
    page = [
        f'.\\" Generated by scripts/docgen.py from {header}; do not edit.',
        f'.TH {f["name"].upper()} 3 "" "exitless {version}" "exitless Manual"',
        '.SH NAME',
        f'{f["name"]} \\- {roff(summary)}',
        '.SH SYNOPSIS',
        '.nf',
        f'.B #include <exitless/{header}>',
        '.PP',
        '.B ' + f['proto'].replace('\\', '\\e').replace('"', '\\(dq'),
        '.fi',
        '.PP',
        (f'Link with \\fB$(pkg-config \\-\\-libs {lib})\\fP.'
         if not f['static'] else
         'A \\fBstatic inline\\fP function of the header: nothing to link.'),
        '.SH DESCRIPTION',
        roff(desc) if desc else 'Undocumented.',
    ]
    if f['names']:
        page.append('.SH PARAMETERS')
        for n in f['names']:
            page += [f'.TP\n.I {n}', roff(params.get(n, 'Undocumented.'))]
    if f['ret'] != 'void':
        page += ['.SH RETURN VALUE', roff(ret) if ret else 'Undocumented.']
    used = []
    for p in f['params']:
        for name in re.findall(r'\bstruct\s+(\w+)', p):
            if name in structs and name not in used:
                used.append(name)
    if used:
        page.append('.SH STRUCTURES')
        page.append('As declared in the header (caller-visible; growth rules there):')
        for name in used:
            body = structs[name].replace('\\', '\\e').replace('\t', '        ')
            page += ['.PP', '.in +4n', '.EX'] + \
                [('\\&' + l if l[:1] in '.\'' else l) for l in body.split('\n')] + \
                ['.EE', '.in']
    others = [s for s in siblings if s != f['name']]
    if others:
        page += ['.SH SEE ALSO', ',\n'.join(f'.BR {s} (3)' for s in others)]
    return '\n'.join(page) + '\n'


def collect(headers, structs=None):
    out = []
    for h in headers:
        text = open(h).read()
        for f, doc in functions(h, structs):
            f['static'] = re.search(r'static\s+inline[^;{]*\b' + f['name'] + r'\s*\(',
                                    text) is not None
            out.append((h, f, doc))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('mode', choices=['list', 'man', 'check'])
    ap.add_argument('headers', nargs='+')
    ap.add_argument('--outdir')
    ap.add_argument('--version', default='')
    ap.add_argument('--lib', default='')
    ap.add_argument('--known-missing')
    a = ap.parse_args()
    structs = {}
    funcs = collect(a.headers, structs)
    if a.mode == 'list':
        for _, f, _ in funcs:
            print(f['name'] + '.3')
        return 0
    if a.mode == 'man':
        names = [f['name'] for _, f, _ in funcs]
        for h, f, doc in funcs:
            with open(os.path.join(a.outdir, f['name'] + '.3'), 'w') as out:
                out.write(man_page(f, doc, os.path.basename(h), a.version,
                                   a.lib, names, structs))
        return 0
    # lines "HEADER FUNCTION"; only the entries of the headers checked count
    known = set()
    if a.known_missing:
        checked = {os.path.basename(h) for h in a.headers}
        for line in open(a.known_missing):
            words = line.split('#')[0].split()
            if len(words) == 2 and words[0] in checked:
                known.add(words[1])
    bad = 0
    for h, f, doc in funcs:
        what = missing(f, doc)
        tag = os.path.basename(h) + ': ' + f['name']
        if what and f['name'] in known:
            print(f'known {tag}: {", ".join(what)}')
        elif what:
            print(f'FAIL  {tag}: {", ".join(what)}')
            bad += 1
        elif f['name'] in known:
            print(f'FAIL  {tag}: documented now; drop it from {a.known_missing}')
            bad += 1
    for name in sorted(known - {f['name'] for _, f, _ in funcs}):
        print(f'FAIL  {name}: listed in {a.known_missing}, no such public function')
        bad += 1
    print(f'{len(funcs)} public functions checked, {bad} failures')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
