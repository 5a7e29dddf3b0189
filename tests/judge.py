"""An independent judge of generated images: hand-written heuristics, no model involved.

Colour: the hue of the saturated foreground pixels, nearest reference hue. Shape: from the
foreground mask's fill ratio in its bounding box, its corners, its top vs bottom width and
whether its centre is empty (ring). Style: the fraction of near-black pixels (outlines).
Checked first on the dataset's own images (tests/test_course_model.py).
"""

from __future__ import annotations

import colorsys

import numpy as np

from course_utils.shapes import COLOURS

_REF_HUES = {name: colorsys.rgb_to_hsv(*(c / 255 for c in rgb))[0] * 360 for name, rgb in COLOURS.items()}


def _arr(img) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.float32) if hasattr(img, "convert") else np.asarray(img, np.float32)


def foreground(img) -> np.ndarray:
    a = _arr(img)
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    bg = np.median(border, axis=0)
    return np.linalg.norm(a - bg, axis=-1) > 60


def dark_fraction(img) -> float:
    """Share of pixels that are near black (max channel < 80): what an outline style adds."""
    return float((_arr(img).max(axis=-1) < 80).mean())


def colour_of(img) -> str:
    a = _arr(img)
    fg = foreground(img)
    mx, mn = a.max(-1), a.min(-1)
    sel = fg & (mx >= 90) & (mx - mn >= 50)
    if sel.sum() < 4:
        return "none"
    r, g, b = (np.median(a[sel][:, i]) / 255 for i in range(3))
    hue = colorsys.rgb_to_hsv(r, g, b)[0] * 360

    def dist(h):
        d = abs(hue - h) % 360
        return min(d, 360 - d)

    return min(_REF_HUES, key=lambda n: dist(_REF_HUES[n]))


def shape_features(img) -> dict:
    fg = foreground(img)
    ys, xs = np.nonzero(fg)
    if len(ys) < 12:
        return {"area": int(len(ys))}
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    box = fg[y0:y1, x0:x1].astype(np.float32)
    h, w = box.shape
    ch, cw = max(1, round(h * 0.2)), max(1, round(w * 0.2))
    corners = np.mean([box[:ch, :cw].mean(), box[:ch, -cw:].mean(), box[-ch:, :cw].mean(), box[-ch:, -cw:].mean()])
    top = box[: max(1, h // 4)].sum(1).mean()
    bottom = box[-max(1, h // 4):].sum(1).mean()
    cy, cx = h / 2, w / 2
    ry, rx = max(1, round(h * 0.12)), max(1, round(w * 0.12))
    centre = box[int(cy - ry):int(cy + ry) + 1, int(cx - rx):int(cx + rx) + 1].mean()
    return {"area": int(len(ys)), "fill": float(box.mean()), "corners": float(corners),
            "top_bottom": float(top / max(bottom, 1e-6)), "centre": float(centre), "h": h, "w": w}


def shape_of(img) -> str:
    f = shape_features(img)
    if f["area"] < 12:
        return "none"
    if f["centre"] < 0.35 and f["fill"] > 0.3:
        return "ring"
    if f["top_bottom"] < 0.55:
        return "triangle"
    if f["corners"] >= 0.5 and f["fill"] >= 0.8:
        return "square"
    if f["corners"] < 0.5 and 0.6 < f["fill"] <= 0.9:
        return "circle"
    return "unclear"


def judge(img) -> dict:
    return {"colour": colour_of(img), "shape": shape_of(img), "dark": round(dark_fraction(img), 4)}
