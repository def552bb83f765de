#!/usr/bin/env python3
"""Code bytes of a wasm module by the crate each function comes from (its name section)."""
import re, sys, collections

def leb(b, i):
    r = s = 0
    while True:
        x = b[i]; i += 1
        r |= (x & 0x7f) << s; s += 7
        if x < 0x80: return r, i

def crate_of(name):
    m = re.match(r'_ZN(\d+)(.*)', name)
    if m:
        n = int(m.group(1)); ident = m.group(2)[:n]
        ident = re.sub(r'^_?\$LT\$', '', ident)
        ident = ident.replace('$u20$', ' ').replace('$RF$', '').replace('$BP$', '').replace('$u5b$', '[')
        ident = ident.lstrip('_ &*[(')
        full = name[m.start(2):].replace('$u20$', ' ').replace('$RF$', '&').replace('$LT$', '<').replace('..', '::')
        d = re.sub(r'^(_|<|&|mut |dyn |\(|\[)+', '', full)
        if re.match(r'[A-Z][A-Za-z0-9]*\b', d) and not re.match(r'[a-z_]', d):
            m2 = re.search(r' as (?:&|mut |dyn )*([A-Za-z_][A-Za-z0-9_]*)::', d)
            if m2: return m2.group(1)
        return re.split(r'\.\.|\$|\s', ident)[0] or '?'
    d = re.sub(r'^(<|&|mut |dyn |\(|\[)+', '', name)
    m = re.match(r'([A-Za-z_][A-Za-z0-9_]*)::', d)
    if m: return m.group(1)
    m = re.search(r' as (?:&|mut |dyn )*([A-Za-z_][A-Za-z0-9_]*)::', d)
    if m: return m.group(1)
    return '(other: ' + ('wasm-bindgen' if 'wbg' in name or 'wasm_bindgen' in name else 'libc/compiler') + ')'

b = open(sys.argv[1], 'rb').read()
i = 8; imports = 0; bodies = []; names = {}; data = 0; sections = collections.Counter()
while i < len(b):
    sid = b[i]; size, j = leb(b, i + 1); end = j + size
    sections[sid] += size
    if sid == 2:
        n, k = leb(b, j)
        for _ in range(n):
            for _ in range(2):
                l, k = leb(b, k); k += l
            kind = b[k]; k += 1
            if kind == 0: _, k = leb(b, k); imports += 1
            elif kind == 1: k += 1; fl, k = leb(b, k); _, k = leb(b, k); k = leb(b, k)[1] if fl & 1 else k
            elif kind == 2: fl, k = leb(b, k); _, k = leb(b, k); k = leb(b, k)[1] if fl & 1 else k
            elif kind == 3: k += 2
    elif sid == 10:
        n, k = leb(b, j)
        for _ in range(n):
            l, k = leb(b, k); bodies.append(l); k += l
    elif sid == 11:
        data += size
    elif sid == 0:
        l, k = leb(b, j); nm = b[k:k + l].decode(); k += l
        if nm == 'name':
            while k < end:
                sub = b[k]; sl, k2 = leb(b, k + 1)
                if sub == 1:
                    n, q = leb(b, k2)
                    for _ in range(n):
                        idx, q = leb(b, q); l, q = leb(b, q); names[idx] = b[q:q + l].decode('utf8', 'replace'); q += l
                k = k2 + sl
    i = end
GROUPS = [
    ("GPU runtime, shader compiler, kernels (cubecl*, cubek*, pliron, rustc_apfloat, combine)", r"^(cubecl|cubek|pliron|rustc_apfloat|combine)"),
    ("burn (tensors, autodiff, fusion, optimizers, store)", r"^burn"),
    ("wgpu / naga / WebGPU bindings (wgpu*, naga, web_sys, js_sys)", r"^(wgpu|naga|web_sys|js_sys)"),
    ("tokenizers and text (tokenizers, regex*, aho_corasick, unicode*, onig, esaxx, spm)", r"^(tokenizers|regex|aho_corasick|unicode|onig|esaxx|spm|monostate|fancy)"),
    ("chat templates (minijinja)", r"^minijinja"),
    ("Hearth's crates (hearth_*)", r"^hearth"),
    ("serde, serde_json, safetensors, csv", r"^(serde|safetensors|csv)"),
    ("Rust std (core, alloc, std, hashbrown, compiler builtins)", r"^(core|alloc|std|hashbrown|compiler_builtins|\(other: libc)"),
]
grouped = collections.Counter()
by = collections.Counter()
for f, size in enumerate(bodies):
    by[crate_of(names.get(f + imports, '?'))] += size
total = sum(bodies)
for crate, size in by.items():
    g = next((name for name, rx in GROUPS if re.match(rx, crate)), "everything else (wasm-bindgen glue, smallvec, half, rand, …)")
    grouped[g] += size
print(f"file {len(b):,} bytes; code {total:,}; data {data:,}; functions {len(bodies):,}")
for crate, size in by.most_common(int(sys.argv[2]) if len(sys.argv) > 2 else 30):
    print(f"{size:>12,}  {100*size/total:5.1f}%  {crate}")
print()
for g, size in grouped.most_common():
    print(f"{size:>12,}  {100*size/total:5.1f}%  {g}")
