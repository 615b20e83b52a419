#!/usr/bin/env bash
# The workspace's `rust-version` (Cargo.toml) states what the dependencies
# really need: the highest `rust-version` any locked package declares.
# Fails when the workspace says less (a toolchain it names would not build
# us) or more (it would turn away toolchains that do). CI runs it.
#
#   scripts/rust-version-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

read -r -d '' program <<'PY' || true
import json, sys

def parts(version):
    numbers = [int(n) for n in version.split(".")]
    return tuple(numbers + [0] * (3 - len(numbers)))

metadata = json.load(sys.stdin)
members = set(metadata["workspace_members"])
ours = {p["rust_version"] for p in metadata["packages"] if p["id"] in members}
if len(ours) != 1 or None in ours:
    sys.exit(f"rust-version-check: the workspace members disagree on rust-version: {sorted(map(str, ours))}")
ours = ours.pop()
needed = [(parts(p["rust_version"]), p["rust_version"], p["name"], p["version"])
          for p in metadata["packages"]
          if p["id"] not in members and p.get("rust_version")]
highest = max(needed)[0]
neediest = sorted(f"{name} {version} ({rv})" for key, rv, name, version in needed if key == highest)
if parts(ours) != highest:
    sys.exit(
        f"rust-version-check: Cargo.toml says rust-version = \"{ours}\", but the highest any "
        f"dependency needs is {'.'.join(map(str, highest))}: {', '.join(neediest[:5])}. "
        "Set [workspace.package] rust-version to that."
    )
print(f"rust-version {ours}: what the neediest dependencies declare ({', '.join(neediest[:3])}, ...)")
PY
cargo metadata --format-version 1 --locked | python3 -c "$program"
