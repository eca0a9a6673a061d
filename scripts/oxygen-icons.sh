#!/usr/bin/env bash
# The second real dataset of the quality benchmark (bench/quality.sh, docs/training-defaults.md):
# the Oxygen icon theme's RGBA PNG icons, from Debian's `oxygen-icon-theme` (installed with the
# project's other packages by scripts/install-deps.sh --icons when missing),
# and laid out as a folder dataset with categories and a held-out split:
#
#   scripts/oxygen-icons.sh [DEST]     (DEST: data/oxygen-icons by default; relative to the repository)
#
# DEST/train/<category>/<name>.png and DEST/test/<category>/<name>.png are links into
# /usr/share/icons/oxygen/base/<size>/<category>/: one per distinct icon of the theme's sizes
# 32x32 to 256x256 (the largest size it comes in: vaegan's loader scales it down), icons whose
# files are the same (the theme's aliases, or equal bytes) kept once, square ones only (not the
# animations' frame strips); every 10th icon of a category (in name order) is held out in test/.
# Categories with at least 10 icons: actions, applets, apps, categories, devices, emblems, emotes,
# mimetypes, places, status. vaegan composites the transparent background over
# white (docs/models-and-datasets.md). Deterministic: the same package gives the same folders.
# Replaces DEST's train/ and test/ when they exist. Exit 1 when the package cannot be installed.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST="${1:-data/oxygen-icons}"
THEME=/usr/share/icons/oxygen/base

bash scripts/install-deps.sh --icons
[ -d "$THEME" ] || { echo "oxygen-icons: $THEME is missing after installing oxygen-icon-theme" >&2; exit 1; }

/usr/bin/python3 - "$THEME" "$DEST" <<'PY'
import hashlib, os, shutil, struct, sys
theme, dest = sys.argv[1], sys.argv[2]
sizes = ["256x256", "128x128", "64x64", "48x48", "32x32"]  # largest first
chosen = {}  # (category, name) -> the file of its largest size
for size in sizes:
    for category in sorted(os.listdir(os.path.join(theme, size))):
        folder = os.path.join(theme, size, category)
        for name in sorted(os.listdir(folder)):
            if name.endswith(".png"):
                chosen.setdefault((category, name), os.path.join(folder, name))
seen, icons = set(), {}
for (category, name), path in sorted(chosen.items()):
    data = open(os.path.realpath(path), "rb").read()
    width, height = struct.unpack(">II", data[16:24])  # PNG IHDR
    digest = hashlib.sha256(data).hexdigest()
    if width != height or digest in seen:
        continue  # an animation's frames, or an alias of an icon already taken
    seen.add(digest)
    icons.setdefault(category, []).append((name, os.path.realpath(path)))
# Both splits need the same categories (their class numbers come from the folder names).
icons = {c: items for c, items in icons.items() if len(items) >= 10}
for split in ("train", "test"):
    shutil.rmtree(os.path.join(dest, split), ignore_errors=True)
counts = {"train": 0, "test": 0}
for category, items in icons.items():
    for i, (name, path) in enumerate(items):
        split = "test" if i % 10 == 9 else "train"
        os.makedirs(os.path.join(dest, split, category), exist_ok=True)
        os.symlink(path, os.path.join(dest, split, category, name))
        counts[split] += 1
print(f"oxygen-icons: {dest}: {counts['train']} training and {counts['test']} test icons in {len(icons)} categories")
PY
