#!/usr/bin/env bash
# Checks that every repository path the documentation names exists: in docs/*.md, README.md
# and lib/README.md, each inline code span, fenced code block and link target that names a
# path under a top-level folder of the repository (include/..., lib/io/..., docs/x.md; a
# glob such as lib/*/*.cpp must match something) or a top-level file. Links resolve from
# the document's folder, as a Markdown viewer does. Checked against the files git tracks
# (so a build directory does not count) and the programs the CMakeLists.txt files build. Web links and paths outside the repository (the
# anchors, /usr/...) are not checked.
#   scripts/check-doc-paths.sh [FILE.md...]     default: the documents above
set -euo pipefail
cd "$(dirname "$0")/.."
docs=("$@")
if [ ${#docs[@]} -eq 0 ]; then
  docs=(README.md lib/README.md docs/*.md)
fi
git ls-files | python3 -c '
import fnmatch, os, posixpath, re, sys

tracked = set(l.rstrip("\n") for l in sys.stdin)
dirs = set()
for f in tracked:
    parts = f.split("/")
    for i in range(1, len(parts)):
        dirs.add("/".join(parts[:i]))
top_dirs = {d for d in dirs if "/" not in d}
top_files = {f for f in tracked if "/" not in f}

# What a CMakeLists.txt builds counts as being in its folder (bench/asyncfiber_workloads).
targets = set()
for f in tracked:
    if posixpath.basename(f) == "CMakeLists.txt" and os.path.exists(f):
        folder = posixpath.dirname(f)
        for name in re.findall(r"add_executable\(\s*([\w-]+)", open(f, encoding="utf-8").read()):
            targets.add(posixpath.join(folder, name))

def exists(path):
    path = path.rstrip("/")
    if path in targets:
        return True
    if any(c in path for c in "*?["):
        return any(fnmatch.fnmatchcase(f, path) for f in tracked) or \
               any(fnmatch.fnmatchcase(d, path) for d in dirs)
    return path in tracked or path in dirs

# A path-like word: letters, digits and ._-/*, starting with a top-level folder and a slash,
# or a top-level file name.
word = re.compile(r"(?<![\w./*-])([\w.*-]+(?:/[\w.*-]*)+|[\w.-]+\.(?:md|txt|sh|py|cpp|hpp|cmake))(?![\w/*-])")

def candidates(text):
    for m in word.finditer(text):
        w = m.group(1).rstrip(".")
        w = re.sub(r":\d+$", "", w)
        first = w.split("/")[0]
        if "/" in w and first in top_dirs:
            yield w
        elif "/" not in w and w in top_files:
            yield w

bad = 0
for doc in sys.argv[1:]:
    base = posixpath.dirname(doc)
    text = open(doc, encoding="utf-8").read()
    found = []  # (line, path as written, path from the root)
    lines = text.split("\n")
    in_fence = False
    for n, line in enumerate(lines, 1):
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        spans = [line] if in_fence else re.findall(r"`([^`]+)`", line)
        for s in spans:
            for w in candidates(s):
                found.append((n, w, w))
        if in_fence:
            continue
        for target in re.findall(r"\]\(([^)\s]+)\)", re.sub(r"`[^`]*`", "", line)):
            target = target.split("#")[0]
            if not target or re.match(r"^[a-z]+:", target) or target.startswith("/"):
                continue
            found.append((n, target, posixpath.normpath(posixpath.join(base, target))))
    for n, written, path in found:
        if path.startswith("../") or exists(path):
            continue
        print(f"{doc}:{n}: {written}: no such file or folder in the repository")
        bad = 1
sys.exit(bad)
' "${docs[@]}" || { echo "check-doc-paths: fix the paths above (or the files they name)" >&2; exit 1; }
