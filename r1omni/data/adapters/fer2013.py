"""FER-2013 as face images in folders: ``ROOT/{train,validation,test}/<class>/*.jpg``.

48x48 grey web faces, already cropped to the face. The split is the folder (``validation`` is
the challenge's PublicTest, ``test`` its PrivateTest); a row is a face image read as a
one-frame video, with no audio and no speaker.
"""

from __future__ import annotations

from pathlib import Path

from r1omni.data.manifest import ClipRow
from r1omni.data.scan import ScanResult, image_files
from r1omni.labels import VOCABULARIES, lookup

VOCABULARY = VOCABULARIES["fer2013"]  # the challenge's order
SPLITS = {"train": "train", "validation": "val", "val": "val", "test": "test"}


def scan(root: Path) -> ScanResult:
    result = ScanResult()
    for path in image_files(root):
        parts = path.relative_to(root).parts
        if len(parts) != 3 or parts[0] not in SPLITS:
            result.skip(path, f"not in {{{','.join(SPLITS)}}}/<class>/")
            continue
        label = lookup(parts[1])
        if label not in VOCABULARY:
            result.skip(path, f"class folder {parts[1]!r} is not one of FER-2013's: {', '.join(VOCABULARY)}")
            continue
        split = SPLITS[parts[0]]
        result.rows.append(ClipRow(id=f"{split}/{parts[1]}/{path.stem}", label=label, dataset="fer2013",
                                   video=str(path), split=split))
    return result
