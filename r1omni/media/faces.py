"""Find the face in sampled frames and crop each frame to it, for towers that read a face.

The detector is OpenCV's frontal-face Haar cascade, whose weights ship inside the
``opencv-python-headless`` wheel (nothing is downloaded). The policy, documented in docs/input.md:

- an image no larger than `CROP_SIDE` pixels on either side is taken to be a face crop already
  (FER-2013 and CK+ are distributed as 48x48 crops) and used whole;
- otherwise each frame is searched on a copy whose longer side is at most `SEARCH_SIDE` pixels
  (a 4K frame costs what a 640 px one does); a face must be at least `MIN_FACE_SHARE` of the
  searched frame's shorter side;
- several faces: the largest is kept (the speaker of a talking-head clip), and the count is reported;
- a frame without a face takes the box of the nearest frame of the same clip that has one; a clip
  with no face in any frame is used whole (centre, padded to square) and reported as such;
- the crop is the face box grown by `MARGIN` around its centre, made square, kept inside the frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image

from r1omni.errors import ConfigError

CROP_SIDE = 128  # px: an image this small is already a face crop
SEARCH_SIDE = 640  # px: frames are searched at most this large
MIN_FACE_SHARE = 0.08  # of the searched frame's shorter side (a 640x360 frame: faces from 29 px)
MARGIN = 1.25  # the crop's side as a multiple of the detected box's side
STATUSES = ("face", "crop", "nearest", "none")  # per frame: found, already a crop, borrowed, used whole


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    side: int  # a square box, in the source frame's pixels

    def grown(self, factor: float, width: int, height: int) -> Box:
        """The box scaled by `factor` around its centre, shifted (and if need be shrunk) to fit."""
        side = min(round(self.side * factor), width, height)
        cx, cy = self.x + self.side / 2, self.y + self.side / 2
        x = int(min(max(cx - side / 2, 0), width - side))
        y = int(min(max(cy - side / 2, 0), height - side))
        return Box(x, y, side)

    def to_json(self) -> list[int]:
        return [self.x, self.y, self.side]


@dataclass
class FaceReport:
    """What the search found in one clip's sampled frames."""

    frames: list[str] = field(default_factory=list)  # a `STATUSES` entry per sampled frame
    boxes: list[list[int] | None] = field(default_factory=list)  # the crop per frame, [x, y, side]
    most_faces: int = 0  # the most faces seen in one frame

    @property
    def found(self) -> int:
        """Frames whose own picture held a face (or was a face crop)."""
        return sum(status in ("face", "crop") for status in self.frames)

    def to_json(self) -> dict:
        return {"frames": len(self.frames), "found": self.found, "statuses": self.frames, "boxes": self.boxes,
                "most_faces": self.most_faces}


@lru_cache(maxsize=1)
def _cascade():
    try:
        import cv2
    except ImportError:
        raise ConfigError("finding faces needs OpenCV: pip install 'opencv-python-headless<5' "
                          "(bash scripts/setup.sh installs it)") from None
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    if cascade.empty():
        raise ConfigError("OpenCV's frontal-face cascade did not load from its wheel (cv2.data.haarcascades)")
    return cv2, cascade


def detect_faces(image: Image.Image) -> list[Box]:
    """Square face boxes in `image` (source pixels), largest first."""
    cv2, cascade = _cascade()
    grey = np.asarray(image.convert("L"))  # [H, W] uint8
    scale = min(1.0, SEARCH_SIDE / max(grey.shape))
    if scale < 1.0:
        grey = cv2.resize(grey, (round(grey.shape[1] * scale), round(grey.shape[0] * scale)),
                          interpolation=cv2.INTER_AREA)
    smallest = max(20, round(MIN_FACE_SHARE * min(grey.shape)))
    found = cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(smallest, smallest))
    boxes = [Box(round(x / scale), round(y / scale), round(max(w, h) / scale)) for x, y, w, h in found]
    return sorted(boxes, key=lambda box: -box.side)


def crop_to_faces(images: Sequence[Image.Image]) -> tuple[list[Image.Image], FaceReport]:
    """Each frame of one clip cropped to its face by the policy above, and what was found."""
    report = FaceReport()
    boxes: list[Box | None] = []
    for image in images:
        if max(image.size) <= CROP_SIDE:
            report.frames.append("crop")
            boxes.append(None)
            continue
        faces = detect_faces(image)
        report.most_faces = max(report.most_faces, len(faces))
        report.frames.append("face" if faces else "none")
        boxes.append(faces[0].grown(MARGIN, *image.size) if faces else None)
    found = [i for i, status in enumerate(report.frames) if status == "face"]
    out = []
    for i, image in enumerate(images):
        box = boxes[i]
        if box is None and found and report.frames[i] == "none":
            nearest = min(found, key=lambda j: abs(j - i))
            box = boxes[nearest]
            report.frames[i] = "nearest"
        report.boxes.append(box.to_json() if box else None)
        out.append(image.crop((box.x, box.y, box.x + box.side, box.y + box.side)) if box else image)
    return out, report


def face_rate(reports: Sequence[FaceReport | dict | None]) -> dict:
    """Detection statistics over clips: clips with a face in at least one frame, the share of
    frames with their own face, and clips with several faces (reports as objects or their JSON)."""
    given = [r if isinstance(r, dict) else r.to_json() for r in reports if r is not None]
    frames = sum(r["frames"] for r in given)
    return {"clips": len(given), "clips_with_face": sum(r["found"] > 0 for r in given),
            "frames": frames, "frames_with_face": sum(r["found"] for r in given),
            "clips_with_several_faces": sum(r["most_faces"] > 1 for r in given),
            "clip_rate": sum(r["found"] > 0 for r in given) / len(given) if given else None}
