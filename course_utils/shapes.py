"""The course dataset: seeded, procedurally drawn, captioned images of coloured shapes.

Every image is ``size`` x ``size`` RGB (32 x 32 by default) with one shape on a light
background; the caption is "a {colour} {shape}". Shapes are drawn at 4x resolution and
downsampled, so their edges are anti-aliased like real photos of flat objects.

The base course model is trained on :data:`BASE_SHAPES` only. ``ring`` and ``star`` exist
so that a concept LoRA can teach a shape the base model never saw, and ``style="outline"``
(a thick black outline) is what the style LoRA teaches.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (40, 170, 50),
    "blue": (40, 70, 220),
    "yellow": (240, 210, 30),
    "purple": (140, 50, 180),
    "orange": (245, 130, 20),
}
BASE_SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
EXTRA_SHAPES: tuple[str, ...] = ("ring", "star")
SHAPES: tuple[str, ...] = BASE_SHAPES + EXTRA_SHAPES
STYLES: tuple[str, ...] = ("plain", "outline")
OUTLINE_COLOUR = (20, 20, 20)

_SS = 4  # supersampling factor


@dataclass(frozen=True)
class ShapeSpec:
    """Everything needed to redraw one image exactly."""

    shape: str
    colour: str
    style: str
    cx: float  # centre, in output pixels
    cy: float
    radius: float  # half the bounding-box side, in output pixels
    background: tuple[int, int, int]

    @property
    def caption(self) -> str:
        return caption(self.colour, self.shape)


def caption(colour: str, shape: str) -> str:
    """The caption used in training: ``"a red circle"``."""
    return f"a {colour} {shape}"


def _star_points(cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    pts = []
    for i in range(10):
        rr = r if i % 2 == 0 else r * 0.45
        a = -math.pi / 2 + i * math.pi / 5
        pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
    return pts


def _outline(spec_shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]] | None:
    if spec_shape == "triangle":
        return [(cx, cy - r), (cx + r, cy + r * 0.9), (cx - r, cy + r * 0.9)]
    if spec_shape == "star":
        return _star_points(cx, cy, r)
    return None


def draw(spec: ShapeSpec, size: int = 32) -> Image.Image:
    """Render a :class:`ShapeSpec` to a ``size`` x ``size`` RGB PIL image."""
    if spec.shape not in SHAPES:
        raise ValueError(f"unknown shape {spec.shape!r}; choose from {SHAPES}")
    if spec.colour not in COLOURS:
        raise ValueError(f"unknown colour {spec.colour!r}; choose from {tuple(COLOURS)}")
    if spec.style not in STYLES:
        raise ValueError(f"unknown style {spec.style!r}; choose from {STYLES}")
    big = size * _SS
    img = Image.new("RGB", (big, big), spec.background)
    d = ImageDraw.Draw(img)
    cx, cy, r = spec.cx * _SS, spec.cy * _SS, spec.radius * _SS
    fill = COLOURS[spec.colour]
    outline = OUTLINE_COLOUR if spec.style == "outline" else None
    width = int(round(1.6 * _SS)) if outline else 0
    box = [cx - r, cy - r, cx + r, cy + r]
    if spec.shape == "circle":
        d.ellipse(box, fill=fill, outline=outline, width=width)
    elif spec.shape == "square":
        d.rectangle(box, fill=fill, outline=outline, width=width)
    elif spec.shape == "ring":
        d.ellipse(box, fill=fill, outline=outline, width=width)
        hole = r * 0.5
        d.ellipse([cx - hole, cy - hole, cx + hole, cy + hole], fill=spec.background,
                  outline=outline, width=width)
    else:
        pts = _outline(spec.shape, cx, cy, r)
        d.polygon(pts, fill=fill, outline=outline, width=width)
    return img.resize((size, size), Image.LANCZOS)


def random_spec(rng: random.Random, shapes=BASE_SHAPES, colours=None, styles=("plain",),
                size: int = 32) -> ShapeSpec:
    """Draw a random :class:`ShapeSpec` from ``rng`` (size and position vary)."""
    colours = tuple(colours or COLOURS)
    radius = rng.uniform(0.2, 0.36) * size
    margin = radius + 1.5
    cx = rng.uniform(margin, size - margin)
    cy = rng.uniform(margin, size - margin)
    bg = tuple(int(v) for v in (rng.randint(232, 250), rng.randint(232, 250), rng.randint(228, 246)))
    return ShapeSpec(rng.choice(tuple(shapes)), rng.choice(colours), rng.choice(tuple(styles)),
                     cx, cy, radius, bg)


def make_dataset(n: int, seed: int = 0, shapes=BASE_SHAPES, colours=None, styles=("plain",),
                 size: int = 32) -> tuple[list[Image.Image], list[str], list[ShapeSpec]]:
    """``n`` seeded random images with their captions and specs: ``(images, captions, specs)``.

    The same ``seed`` always gives the same images, on every machine.
    """
    rng = random.Random(seed)
    specs = [random_spec(rng, shapes, colours, styles, size) for _ in range(n)]
    images = [draw(s, size) for s in specs]
    return images, [s.caption for s in specs], specs


def to_tensor(images) -> "torch.Tensor":  # noqa: F821 - torch imported lazily
    """PIL images -> float tensor ``[N, 3, H, W]`` in [-1, 1], the range the VAE expects."""
    import torch

    arr = np.stack([np.asarray(im, dtype=np.float32) for im in images]) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()


def vocabulary() -> list[str]:
    """Every word a course caption or prompt may use (the tokenizer is trained on these)."""
    words = ["a", "an", "the", "of", "and", "with", "on", "in", "picture", "photo", "drawing",
             "shape", "small", "large", "big", "thick", "black", "outline", "outlined", "white",
             "background", "bright", "dark", "light", "style", "sks", "ohwx", "ugly", "blurry"]
    return sorted(set(words) | set(COLOURS) | set(SHAPES))
