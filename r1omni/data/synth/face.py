"""Render talking faces whose expression is driven by facial action units.

Every feature is an implicit shape (ellipse, segment, lip curve) evaluated on the pixel grid
for all frames at once, ``[N, S, S]``, and composited with soft edges. Geometry is in face
units: the face's half-width is 1, x to the right, y downwards, origin at the face centre.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

import numpy as np

from r1omni.data.synth.cues import ACTION_UNITS
from r1omni.data.synth.people import Person

AU_ORDER = tuple(ACTION_UNITS)
_AU = {name: i for i, name in enumerate(AU_ORDER)}


@dataclass(frozen=True)
class Scene:
    """How a clip is framed and lit; drawn per clip from the domain style."""

    background: tuple  # (top colour, bottom colour)
    centre: tuple[float, float]  # face centre, fractions of the frame
    scale: float  # face half-width, fraction of the frame
    light: float  # shading strength
    light_angle: float  # radians, direction the light comes from
    tint: tuple[float, float, float]
    noise: float  # sensor noise sd, 0-255 units


def _soft(distance: np.ndarray, pixel: float) -> np.ndarray:
    """Coverage of a shape from a signed distance in face units (negative inside)."""
    coverage = np.divide(distance, pixel)  # in place from here: these arrays are whole frames
    np.subtract(0.5, coverage, out=coverage)
    np.maximum(coverage, 0.0, out=coverage)
    return np.minimum(coverage, 1.0, out=coverage)


def _ellipse(x, y, cx, cy, rx, ry):
    """Approximate signed distance to an ellipse, in face units."""
    across, down = np.subtract(x, cx), np.subtract(y, cy)
    across /= rx
    down /= ry
    np.square(across, out=across)
    across += np.square(down, out=down)
    np.sqrt(across, out=across)
    across -= 1.0
    # Not in place: with plain-number radii this product is float64, as it always was, and the
    # frames must stay byte for byte what they were (benchmarks/face_render.py checks it).
    return across * np.minimum(rx, ry)


def _segment(x, y, x0, y0, x1, y1):
    """Distance to the segment from (x0, y0) to (x1, y1); endpoints broadcast over frames."""
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((x - x0) * dx + (y - y0) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    return np.hypot(x - x0 - t * dx, y - y0 - t * dy)


def _paint(canvas: np.ndarray, alpha: np.ndarray, colour) -> None:
    """Blend `colour` into `canvas` ``[N, H, W, 3]`` with coverage `alpha` ``[N, H, W]``.

    Only the box of rows and columns any frame covers is touched: most features cover a small
    part of the frame, and uncovered pixels inside the box are left as they are (alpha 0).
    """
    alpha = np.broadcast_to(alpha, canvas.shape[:3])
    rows, cols = _box(alpha > 0)
    if rows.stop > rows.start and cols.stop > cols.start:
        region = canvas[:, rows, cols]  # a view
        region += alpha[:, rows, cols, None] * (np.asarray(colour, np.float32) - region)


def _box(mask: np.ndarray) -> tuple[slice, slice]:
    """Row and column slices bounding the True pixels of `mask` ``[N, H, W]`` over all frames."""
    rows = np.flatnonzero(mask.any(axis=(0, 2)))
    cols = np.flatnonzero(mask.any(axis=(0, 1)))
    if rows.size == 0:
        return slice(0, 0), slice(0, 0)
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def _col(values: np.ndarray) -> np.ndarray:
    """Per-frame values ``[N]`` shaped to broadcast over the pixel grid ``[N, 1, 1]``."""
    return np.asarray(values, np.float32)[:, None, None]


def render_faces(
    person: Person,
    scene: Scene,
    aus: np.ndarray,  # [N, 11] AU intensities per frame, AU_ORDER
    pose: np.ndarray,  # [N, 3] yaw, pitch, roll (radians)
    openness: np.ndarray,  # [N] eyelid factor from blinks, 1 open .. 0 shut
    size: int,
    noise_seeds: list[int],
) -> np.ndarray:
    """RGB uint8 frames ``[N, S, S, 3]``."""
    n = aus.shape[0]
    au = {name: _col(aus[:, i]) for name, i in _AU.items()}
    au["openness"] = _col(openness)
    yaw, pitch, roll = (_col(pose[:, k]) for k in range(3))
    px = scene.scale * size  # pixels per face unit
    pixel = 1.0 / px  # one pixel in face units

    # Pixel grid to face coordinates: rotate by roll around the face centre, scale. [N, S, S]
    grid = (np.arange(size, dtype=np.float32) + 0.5)[None, :]
    gx = (grid - scene.centre[0] * size)[:, None, :]  # [1, 1, S]
    gy = (grid - scene.centre[1] * size)[:, :, None]  # [1, S, 1]
    cos, sin = np.cos(roll), np.sin(roll)
    x = (gx * cos + gy * sin) / px
    y = (-gx * sin + gy * cos) / px
    # Features sit on a turning head: yaw slides them sideways, pitch up/down.
    fx, fy = x - 0.35 * np.sin(yaw), y + 0.3 * np.sin(pitch)

    # Background: vertical gradient.
    top, bottom = (np.asarray(c, np.float32) for c in scene.background)
    ramp = np.linspace(0, 1, size, dtype=np.float32)[None, :, None, None]
    canvas = np.broadcast_to(top + (bottom - top) * ramp, (n, size, size, 3)).copy()

    ratio = person.face_ratio
    face_h = ratio + 0.08 * au["AU26"]  # the jaw drops with the mouth
    face_w = 1.0 - 0.12 * np.abs(np.sin(yaw))

    # Shoulders and neck, then hair behind the head.
    _paint(canvas, _soft(np.maximum(np.abs(x) - 1.9, -(y - 1.15 * ratio)), pixel), person.shirt)
    _paint(canvas, _soft(np.maximum(np.abs(x) - 0.45, -(y - 0.5 * ratio)), pixel), _shade(person.skin, 0.85))
    if person.hair_style:
        hair = _ellipse(x, y, 0.0, -0.12 * ratio, 1.12, ratio * 1.05)
        if person.hair_style == 1:
            hair = np.maximum(hair, y + 0.25 * ratio)  # short: only above the temples
        else:
            hair = np.maximum(hair, y - 0.75 * ratio)  # long: down to the jaw
        _paint(canvas, _soft(hair, pixel), person.hair)

    # Ears and face.
    for side in (-1.0, 1.0):
        ear_x = side * face_w * 0.98
        ear_canvas, ex, ey = _crop(canvas, x, y, _ellipse_bounds(ear_x, 0.0, 0.14, 0.24, pixel))
        _paint(ear_canvas, _soft(_ellipse(ex, ey, ear_x, 0.0, 0.14, 0.24), pixel), _shade(person.skin, 0.92))
    face = _ellipse(x, y, 0.0, 0.0, face_w, face_h)
    _paint(canvas, _soft(face, pixel), person.skin)
    if person.hair_style:  # fringe over the forehead
        fringe = np.maximum(_ellipse(x, y, 0.0, -0.15 * ratio, 1.0, ratio), y + 0.62 * ratio)
        _paint(canvas, _soft(fringe, pixel), person.hair)
    rows, cols = _box(face < 0.05)  # features are drawn only inside the face's box
    features = np.ascontiguousarray(canvas[:, rows, cols])
    _draw_features(features, fx[:, rows, cols], fy[:, rows, cols], au, person, pixel)
    canvas[:, rows, cols] = features

    # Lighting, camera tint, sensor noise.
    shading = 1.0 + scene.light * (np.cos(scene.light_angle) * x + np.sin(scene.light_angle) * y) / 2.0
    canvas *= np.clip(shading, 0.6, 1.4)[..., None]
    canvas *= np.asarray(scene.tint, np.float32)
    for i, seed in enumerate(noise_seeds):
        noise = np.random.default_rng(seed).standard_normal((size, size, 3), dtype=np.float32)
        canvas[i] += scene.noise * noise
    return np.clip(canvas, 0, 255).astype(np.uint8)


def _crop(canvas, fx, fy, *bounds):
    """Views of `canvas`, `fx` and `fy` cut to the pixels whose face coordinates fall, in some
    frame, inside the union of `bounds`, each ``(left, right, top, bottom)`` in face units
    (numbers or per-frame ``[N, 1, 1]``).

    A feature is evaluated only there: everything outside its bounds would get zero coverage.
    Painting into the canvas view paints the canvas.
    """
    lefts, rights, tops, bottoms = zip(*bounds)
    left, top = reduce(np.minimum, lefts), reduce(np.minimum, tops)
    right, bottom = reduce(np.maximum, rights), reduce(np.maximum, bottoms)
    rows, cols = _box((fx >= left) & (fx <= right) & (fy >= top) & (fy <= bottom))
    return canvas[:, rows, cols], fx[:, rows, cols], fy[:, rows, cols]


def _ellipse_bounds(cx, cy, rx, ry, pixel, thickness=0.0):
    """Bounds of what an ellipse (or its outline `thickness` wide) can cover. `_ellipse`'s distance
    is ``(r - 1) * min(rx, ry)`` in units of the radii, so soft coverage reaches out to
    ``r = 1 + (thickness + pixel / 2) / min(rx, ry)``; a whole pixel is kept for rounding."""
    scale = 1.0 + (thickness + pixel) / np.minimum(rx, ry)
    return cx - rx * scale, cx + rx * scale, cy - ry * scale, cy + ry * scale


def _segment_bounds(x0, y0, x1, y1, pixel, thickness):
    """Bounds of what a segment `thickness` wide can cover, a pixel of soft edge included."""
    reach = thickness + pixel
    return (np.minimum(x0, x1) - reach, np.maximum(x0, x1) + reach,
            np.minimum(y0, y1) - reach, np.maximum(y0, y1) + reach)


def _draw_features(canvas, fx, fy, au, person: Person, pixel: float) -> None:
    """Eyes, brows, cheeks, nose and mouth, in face coordinates `fx`, `fy`.

    Each feature is drawn on the crop its bounds allow (`_crop`), in the same order as if drawn on
    the whole face, so the picture is the same and most pixels are never evaluated.
    """
    ratio = person.face_ratio

    eye_y = -0.12 * ratio
    spacing = person.eye_spacing
    eye_rx = 0.2 * person.eye_scale
    open_ = au["openness"] * np.clip(1.0 + 0.6 * au["AU5"] - 0.35 * au["AU6"] - 0.15 * au["AU4"], 0.2, 2.0)
    eye_ry = 0.11 * person.eye_scale * open_

    # Cheek raise: flushed, lifted cheeks.
    for side in (-1.0, 1.0):
        cheek_y = 0.28 * ratio - 0.06 * au["AU6"]
        cheek, cx, cy = _crop(canvas, fx, fy, _ellipse_bounds(side * 0.5, cheek_y, 0.22, 0.14, pixel))
        blush = _soft(_ellipse(cx, cy, side * 0.5, cheek_y, 0.22, 0.14), pixel)
        _paint(cheek, blush * 0.55 * au["AU6"], (220, 110, 110))

    for side in (-1.0, 1.0):
        ex = side * spacing
        # The white bounds the iris and pupil (clipped to it) and, with its width, the lid line.
        eye = _crop(canvas, fx, fy, _ellipse_bounds(ex, eye_y, eye_rx, eye_ry + 1e-3, pixel, thickness=0.012))
        _draw_eye(*eye, ex, eye_y, eye_rx, eye_ry, person, pixel)

        # Brows: inner end lifted by AU1, outer by AU2; AU4 lowers and draws them inwards.
        base = eye_y - 0.24 * ratio
        inner_x = side * (0.13 - 0.06 * au["AU4"])
        inner_y = base - 0.17 * au["AU1"] + 0.2 * au["AU4"]
        outer_x = side * (spacing + 0.25)
        outer_y = base - 0.16 * au["AU2"] + 0.07 * au["AU4"] + 0.02
        ends = (inner_x, inner_y, outer_x, outer_y)
        brow_canvas, bx, by = _crop(canvas, fx, fy, _segment_bounds(*ends, pixel, person.brow_thickness))
        brow = _segment(bx, by, *ends) - person.brow_thickness
        _paint(brow_canvas, _soft(brow, pixel), _shade(person.hair, 0.8))

        if person.glasses:
            rim_canvas, rx, ry = _crop(canvas, fx, fy,
                                       _ellipse_bounds(ex, eye_y, eye_rx + 0.09, 0.2, pixel, thickness=0.018))
            rim = np.abs(_ellipse(rx, ry, ex, eye_y, eye_rx + 0.09, 0.2)) - 0.018
            _paint(rim_canvas, _soft(rim, pixel), (30, 30, 35))
    if person.glasses:
        ends = (-spacing + eye_rx + 0.09, eye_y, spacing - eye_rx - 0.09, eye_y)
        bridge_canvas, bx, by = _crop(canvas, fx, fy, _segment_bounds(*ends, pixel, 0.018))
        _paint(bridge_canvas, _soft(_segment(bx, by, *ends) - 0.018, pixel), (30, 30, 35))

    # Nose, with wrinkles across the bridge for AU9.
    nose_dark = _shade(person.skin, 0.7)
    ridge = (0.0, -0.02, 0.04, 0.3 * ratio - 0.03 * au["AU9"])
    nostril_y = 0.33 * ratio - 0.04 * au["AU9"]
    wrinkles = [(-0.12, 0.02 + 0.05 * k, 0.12, 0.02 + 0.05 * k) for k in range(3)]
    nose_canvas, nx, ny = _crop(canvas, fx, fy, _segment_bounds(*ridge, pixel, 0.02),
                                _ellipse_bounds(0.0, nostril_y, 0.14, 0.05, pixel),
                                *(_segment_bounds(*ends, pixel, 0.012) for ends in wrinkles))
    _paint(nose_canvas, _soft(_segment(nx, ny, *ridge) - 0.02, pixel) * 0.8, nose_dark)
    _paint(nose_canvas, _soft(_ellipse(nx, ny, 0.0, nostril_y, 0.14, 0.05), pixel) * 0.6, nose_dark)
    for ends in wrinkles:
        wrinkle = _segment(nx, ny, *ends) - 0.012
        _paint(nose_canvas, _soft(wrinkle, pixel) * np.clip(au["AU9"] * 1.3, 0, 1), nose_dark)

    _draw_mouth(canvas, fx, fy, au, ratio, person, pixel)


def _draw_eye(canvas, fx, fy, ex, eye_y, eye_rx, eye_ry, person: Person, pixel: float) -> None:
    """White, iris, pupil and upper lid line of one eye."""
    white = _ellipse(fx, fy, ex, eye_y, eye_rx, eye_ry + 1e-3)
    _paint(canvas, _soft(white, pixel), (245, 245, 240))
    iris = np.maximum(_ellipse(fx, fy, ex, eye_y, 0.085 * person.eye_scale, 0.085 * person.eye_scale), white)
    _paint(canvas, _soft(iris, pixel), person.iris)
    pupil = np.maximum(_ellipse(fx, fy, ex, eye_y, 0.035, 0.035), white)
    _paint(canvas, _soft(pupil, pixel), (15, 15, 15))
    lid = np.abs(_ellipse(fx, fy, ex, eye_y, eye_rx, eye_ry + 1e-3)) - 0.012
    _paint(canvas, _soft(np.maximum(lid, fy - eye_y), pixel), _shade(person.skin, 0.55))  # upper lid line


def _draw_mouth(canvas, fx, fy, au, ratio, person, pixel) -> None:
    """Lips as two bands around a parabolic mouth line: AU12 lifts the corners, AU15 drops
    them, AU20 stretches, AU24 thins and presses, AU26 opens."""
    mouth_y = 0.58 * ratio
    half_w = 0.33 * (1.0 + 0.35 * au["AU20"] + 0.18 * au["AU12"] - 0.12 * au["AU24"])
    lift = 0.16 * au["AU12"] - 0.14 * au["AU15"]
    opening = 0.32 * au["AU26"] + 0.04 * au["AU20"]
    thick = 0.06 * (1.0 - 0.65 * au["AU24"])
    # Nothing is drawn past a corner by more than half a pixel, so |u| stays below `reach`; the
    # mouth line bends by at most lift * reach^2, the lips open and thicken around it.
    reach = 1.0 + pixel / half_w
    bend = np.abs(lift) * reach * reach
    top = mouth_y - bend - 0.3 * np.abs(opening) - np.abs(thick) - pixel
    bottom = mouth_y + bend + 0.7 * np.abs(opening) + 1.3 * np.abs(thick) + 0.01 + pixel
    canvas, fx, fy = _crop(canvas, fx, fy, (-half_w - pixel, half_w + pixel, top, bottom))
    u = fx / half_w
    inside = 1.0 - u * u  # > 0 between the corners
    arch = np.sqrt(np.clip(inside, 0, 1))
    centre = mouth_y - lift * u * u
    upper = centre - 0.3 * opening * arch
    lower = centre + 0.7 * opening * arch
    across = np.maximum(np.abs(u) - 1.0, 0.0) * half_w  # distance beyond a corner
    cavity = np.maximum(np.maximum(upper - fy, fy - lower), across)
    _paint(canvas, _soft(cavity, pixel), (60, 20, 25))
    upper_lip = np.maximum(np.maximum(upper - thick * arch - fy, fy - upper), across)
    lower_lip = np.maximum(np.maximum(lower - fy, fy - lower - 1.3 * thick * arch), across)
    _paint(canvas, _soft(upper_lip, pixel), person.lips)
    _paint(canvas, _soft(lower_lip, pixel), _shade(person.lips, 1.1))
    seam = np.maximum(np.abs(fy - centre) - 0.01, across)
    _paint(canvas, _soft(seam, pixel) * np.clip(1.0 - opening * 8.0, 0.0, 1.0), (90, 40, 45))


def _shade(colour, factor: float) -> tuple:
    return tuple(min(255, int(c * factor)) for c in colour)
