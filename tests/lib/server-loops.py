#!/usr/bin/env python3
"""Call loops among the daemon's files (server/, the strategies aside):
which file calls a srv_/server_ function another file defines, and the
groups of files that reach each other both ways (strongly connected).
Prints every loop other than the one the design allows (rounds with the
shard files: closing a sharded round is a conversation), and, with
--low, every call from a low file (table, reply, record) or observe/ to a
handler (srv_handle_*) or out of the low files; with --client, every loop
among the client library's files (worker/client/). Nothing printed: none."""
import collections
import glob
import os
import re
import sys

ALLOWED = {frozenset({"rounds", "shard", "shard_coord", "shard_follower"})}
LOW = {"table", "reply", "record"}

CLIENT = "--client" in sys.argv  # the client library instead
if CLIENT:
    # The client library: one link per daemon under the API object, so a
    # sharded swarm is the same code as one daemon and no loop is allowed.
    ALLOWED = set()
    files = glob.glob("worker/client/*.c")
    prefix = r"psoc_\w+"
else:
    files = [f for f in glob.glob("server/**/*.c", recursive=True) if "/strategy/" not in f]
    prefix = r"(?:srv|server)_\w+"
src = {f: open(f).read() for f in files}
defs = {}
for f, s in src.items():
    for m in re.finditer(r"^[a-z][\w \*]*?\b(" + prefix + r")\s*\([^;]*?\)\s*\{", s, re.M):
        defs[m.group(1)] = f
name = lambda f: os.path.basename(f)[:-2]
edges = collections.defaultdict(set)
for f, s in src.items():
    for fn, df in defs.items():
        if df != f and re.search(r"\b" + fn + r"\s*\(", s):
            edges[name(f)].add((name(df), fn))

if "--low" in sys.argv:
    for f in files:
        low, observe = name(f) in LOW, "/observe/" in f
        for d, fn in sorted(edges.get(name(f), ())):
            if (low or observe) and fn.startswith("srv_handle_"):
                print(f"{f} calls the handler {fn}")
            elif low and d not in LOW:
                print(f"{f} (a low file) calls {fn} of {d}.c")
    sys.exit(0)

nodes = set(edges) | {d for v in edges.values() for d, _ in v}
adj = {n: {d for d, _ in edges.get(n, ())} for n in nodes}
index, low, stack, on, loops, counter = {}, {}, [], set(), [], [0]
sys.setrecursionlimit(10000)


def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in adj[v]:
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = set()
        while True:
            w = stack.pop()
            on.discard(w)
            comp.add(w)
            if w == v:
                break
        if len(comp) > 1:
            loops.append(comp)


for n in sorted(nodes):
    if n not in index:
        visit(n)
for comp in loops:
    if frozenset(comp) in ALLOWED:
        continue
    print("loop:", " ".join(sorted(comp)))
    for a in sorted(comp):
        for d, fn in sorted(edges.get(a, ())):
            if d in comp:
                print(f"    {a}.c -> {d}.c ({fn})")
