"""Plot helpers: labelled image grids and simple labelled line plots."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def _to_array(img) -> np.ndarray:
    if hasattr(img, "convert"):  # PIL
        return np.asarray(img.convert("RGB"))
    a = np.asarray(img.detach().cpu() if hasattr(img, "detach") else img)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = a.transpose(1, 2, 0)
    return a


def image_grid(images: Sequence, rows: int | None = None, cols: int | None = None,
               titles: Sequence[str] | None = None, row_labels: Sequence[str] | None = None,
               col_labels: Sequence[str] | None = None, suptitle: str | None = None,
               cell_inches: float = 1.4, cmap: str | None = None):
    """Show images (PIL, numpy or torch) in a labelled grid; returns the matplotlib Figure.

    Images fill the grid row by row. ``col_labels`` go above the first row, ``row_labels`` to
    the left of the first column (as in an A1111 X/Y plot); ``titles`` label each image.
    Pixel art stays sharp (nearest-neighbour).
    """
    import matplotlib.pyplot as plt

    images = list(images)
    n = len(images)
    if cols is None:
        cols = len(col_labels) if col_labels else (n if rows is None else int(np.ceil(n / rows)))
    if rows is None:
        rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cell_inches * cols + (0.8 if row_labels else 0),
                                                  cell_inches * rows + (0.5 if suptitle else 0) + 0.2),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.axis("off")
            continue
        ax.imshow(_to_array(images[i]), interpolation="nearest", cmap=cmap)
        if titles is not None and i < len(titles):
            ax.set_title(str(titles[i]), fontsize=8)
    if col_labels:
        for j, lab in enumerate(col_labels[:cols]):
            axes[0, j].set_title(str(lab) if titles is None else f"{lab}\n{axes[0, j].get_title()}", fontsize=8)
    if row_labels:
        for i, lab in enumerate(row_labels[:rows]):
            axes[i, 0].set_ylabel(str(lab), fontsize=8, rotation=0, ha="right", va="center")
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def line_plot(xs, ys_by_label: dict, xlabel: str, ylabel: str, title: str, logy: bool = False, ax=None):
    """A labelled line plot with a legend; returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2))
    for label, ys in ys_by_label.items():
        ax.plot(xs, ys, marker="o" if len(xs) <= 40 else None, ms=3, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if logy:
        ax.set_yscale("log")
    if len(ys_by_label) > 1:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return ax
