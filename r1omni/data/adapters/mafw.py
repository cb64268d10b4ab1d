"""MAFW: single-label 5-fold split lists ``single/no_caption/set_k/{train,test}.txt``
(lines ``clip.mp4 label``) and the clips they name.

Each clip's fold is the fold whose test set lists it: train on fold k = rows with fold != k.
"""

from __future__ import annotations

import re
from pathlib import Path

from r1omni.data.scan import Reference, ScanResult, index_by_stem, require_root, resolve_references
from r1omni.errors import ManifestError
from r1omni.labels import VOCABULARIES

VOCAB = VOCABULARIES["mafw"]
_SET_FOLDER = re.compile(r"^set_(\d+)$")


def _split_files(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*.txt")
        if p.stem in ("train", "test") and _SET_FOLDER.match(p.parent.name)
        and "single" in p.relative_to(root).parts
    )


def scan(root: Path) -> ScanResult:
    root = require_root(root)
    split_files = _split_files(root)
    if not split_files:
        raise ManifestError(f"{root}: no MAFW split lists (single/no_caption/set_k/train.txt, test.txt)")
    result_skips, references = [], []
    for path in split_files:
        fold = int(_SET_FOLDER.match(path.parent.name).group(1))
        for line, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            parts = text.split()
            if not parts:
                continue
            where = f"{path}:{line}"
            if len(parts) < 2:
                result_skips.append((where, "line has no label"))
                continue
            references.append(Reference(
                parts[0], parts[-1], where,
                fold=fold if path.stem == "test" else None, split="train" if path.stem == "train" else None,
            ))
    index = index_by_stem(root)
    result = resolve_references(references, lambda n: index.get(Path(n).stem), "mafw", VOCAB)
    result.skipped.extend(result_skips)
    return result
