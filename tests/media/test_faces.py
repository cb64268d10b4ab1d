"""Finding the face in frames (r1omni.media.faces): real CK+ faces placed in larger frames, so
where the face is is known; and the documented policy for frames without one, several faces,
face crops, tiny, rotated and 4K frames."""

import numpy as np
import pytest
from PIL import Image

from r1omni.media import face_rate, read_face_frames, write_video
from r1omni.media.faces import CROP_SIDE, crop_to_faces, detect_faces

from corpora import shared_data


@pytest.fixture(scope="module")
def faces():
    """Two real CK+ faces (grey, 48 px), as RGB images."""
    root = shared_data("ckplus48")
    paths = sorted((root / "happy").glob("*.png"))[:1] + sorted((root / "surprise").glob("*.png"))[:1]
    return [Image.open(p).convert("RGB") for p in paths]


def frame_with(faces_at: list[tuple[Image.Image, int, int, int]], size=(640, 480), fill=(90, 110, 100)) -> Image.Image:
    """A plain frame with each face pasted at (x, y), scaled to `side` pixels."""
    frame = Image.new("RGB", size, fill)
    for face, x, y, side in faces_at:
        frame.paste(face.resize((side, side), Image.BICUBIC), (x, y))
    return frame


def inside(box: list[int], x: int, y: int, side: int) -> bool:
    """Whether the crop box [x, y, side] holds the pasted face's centre and most of it."""
    bx, by, bs = box
    cx, cy = x + side / 2, y + side / 2
    return bx <= cx <= bx + bs and by <= cy <= by + bs and 0.6 * side <= bs <= 2.5 * side


def test_a_face_in_a_frame_is_found_and_cropped(faces):
    frame = frame_with([(faces[0], 300, 120, 160)])
    boxes = detect_faces(frame)
    assert len(boxes) == 1
    crops, report = crop_to_faces([frame])
    assert report.frames == ["face"] and report.found == 1 and report.most_faces == 1
    assert inside(report.boxes[0], 300, 120, 160)
    assert crops[0].size[0] == crops[0].size[1] == report.boxes[0][2]


def test_several_faces_keep_the_largest_and_say_so(faces):
    frame = frame_with([(faces[0], 40, 60, 110), (faces[1], 330, 100, 220)])
    _, report = crop_to_faces([frame])
    assert report.most_faces == 2 and inside(report.boxes[0], 330, 100, 220)


def test_a_frame_without_a_face_borrows_the_nearest_box_and_a_faceless_clip_is_used_whole(faces):
    with_face, empty = frame_with([(faces[0], 200, 100, 160)]), frame_with([])
    crops, report = crop_to_faces([with_face, empty, empty])
    assert report.frames == ["face", "nearest", "nearest"] and report.found == 1
    assert report.boxes[1] == report.boxes[2] == report.boxes[0]
    crops, report = crop_to_faces([empty, empty])
    assert report.frames == ["none", "none"] and report.boxes == [None, None] and crops[0].size == (640, 480)


def test_small_images_are_face_crops_already(faces):
    crops, report = crop_to_faces([faces[0]])
    assert report.frames == ["crop"] and report.found == 1 and crops[0] is faces[0]
    assert max(faces[0].size) <= CROP_SIDE


def test_tiny_rotated_and_grey_frames_follow_the_policy(faces):
    tiny = frame_with([(faces[0], 900, 500, 30)], size=(1920, 1080))  # 3% of the frame's height
    rotated = frame_with([(faces[0].rotate(90), 250, 150, 180)])
    for frame in (tiny, rotated):
        _, report = crop_to_faces([frame])
        assert report.frames == ["none"]  # counted, used whole
    grey = frame_with([(faces[1], 220, 140, 170)]).convert("L").convert("RGB")
    assert crop_to_faces([grey])[1].frames == ["face"]


def test_a_4k_frame_is_searched_small_and_cropped_in_its_own_pixels(faces):
    frame = frame_with([(faces[1], 1500, 600, 700)], size=(3840, 2160))
    _, report = crop_to_faces([frame])
    assert report.frames == ["face"] and inside(report.boxes[0], 1500, 600, 700)


def test_read_face_frames_from_a_video(tmp_path, faces):
    """Eight frames, the face in all but the middle two: the model sees the face in every frame."""
    frames = [np.asarray(frame_with([] if i in (3, 4) else [(faces[0], 240, 120, 180)])) for i in range(8)]
    path = tmp_path / "talk.mp4"
    write_video(path, frames, fps=8)
    crops, report = read_face_frames(path, num_frames=8, size=64)
    assert crops.shape == (8, 64, 64, 3) and report.frames.count("nearest") == 2 and report.found == 6
    # where the face was, the crop is the face: far more contrast than the plain backdrop
    assert all(crops[i].std() > 20 for i in range(8) if report.frames[i] == "face")
    assert report.boxes[3] == report.boxes[2] and report.boxes[4] == report.boxes[5]
    rate = face_rate([report, None, {"frames": 1, "found": 0, "statuses": ["none"], "boxes": [None], "most_faces": 0}])
    assert rate["clips"] == 2 and rate["clips_with_face"] == 1 and rate["frames_with_face"] == 6
