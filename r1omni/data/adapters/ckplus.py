"""CK+ (the Extended Cohn-Kanade set) as face crops in class folders:
``ROOT/<class>/SXXX_YYY_ZZZZZZZZ.png`` (subject, sequence, frame), as CK+48 is redistributed.

Images are read as one-frame videos. Folds are subject-independent: the sorted subjects dealt
round-robin into 10 folds (the three frames of a sequence are near duplicates, so they must
never straddle a split).
"""

from __future__ import annotations

import re
from pathlib import Path

from r1omni.data.manifest import ClipRow
from r1omni.data.scan import ScanResult, image_files
from r1omni.labels import VOCABULARIES, lookup

VOCABULARY = VOCABULARIES["ckplus"]
FOLDS = 10
_NAME = re.compile(r"^(S\d{3})_(\d{3})_(\d{8})$")


def scan(root: Path) -> ScanResult:
    result = ScanResult()
    found = []
    for path in image_files(root):
        relative = path.relative_to(root)
        match = _NAME.match(path.stem)
        label = lookup(relative.parts[0]) if len(relative.parts) == 2 else None
        if label not in VOCABULARY:
            result.skip(path, f"not in a class folder ({', '.join(VOCABULARY)}; CK+'s own names such as "
                              "'sadness' are read too)")
        elif not match:
            result.skip(path, "name does not follow SXXX_YYY_ZZZZZZZZ (subject, sequence, frame)")
        else:
            found.append((path, label, *match.groups()))
    fold_of = {subject: i % FOLDS + 1 for i, subject in enumerate(sorted({f[2] for f in found}))}
    for path, label, subject, sequence, frame in found:
        result.rows.append(ClipRow(id=path.stem, label=label, dataset="ckplus", video=str(path), speaker=subject,
                                   fold=fold_of[subject], meta={"sequence": sequence, "frame": frame}))
    return result
