#!/usr/bin/env bash
# Every relative link in the README and docs/ resolves: the file or folder
# exists, and a `#fragment` names a heading of that Markdown file (GitHub's
# anchors). CI runs it.
#
#   scripts/doc-links-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

read -r -d '' program <<'PY' || true
import pathlib, re, sys

def slug(heading):
    text = heading.replace("`", "").strip().lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")

def outside_code(path):
    fenced = False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            yield line

anchors = {}
def anchors_of(path):
    if path not in anchors:
        seen, found = {}, set()
        for line in outside_code(path):
            found.update(re.findall(r'<a (?:id|name)="([^"]+)"', line))
            m = re.match(r"#{1,6} (.+)", line)
            if m:
                base = slug(m.group(1))
                n = seen.get(base, 0)
                seen[base] = n + 1
                found.add(base if n == 0 else f"{base}-{n}")
        anchors[path] = found
    return anchors[path]

root = pathlib.Path(".").resolve()
files = [root / "README.md"] + sorted((root / "docs").rglob("*.md"))
broken = []
for path in files:
    for line in outside_code(path):
        for target in re.findall(r"\]\(([^)\s]+)\)", re.sub(r"`[^`]*`", "", line)):
            if re.match(r"[a-z]+:", target):
                continue
            file_part, _, fragment = target.partition("#")
            dest = (path.parent / file_part).resolve() if file_part else path
            where = f"{path.relative_to(root)}: {target}"
            if not dest.exists():
                broken.append(f"{where} (no such file)")
            elif fragment and dest.suffix == ".md" and fragment not in anchors_of(dest):
                broken.append(f"{where} (no such heading)")
if broken:
    sys.exit("doc-links-check: broken links:\n  " + "\n  ".join(broken))
print(f"doc-links-check: every relative link of {len(files)} files resolves")
PY
python3 -c "$program"
