"""Small ipywidgets building blocks that work in JupyterLab, classic Notebook, VS Code and Colab.

They update an ``ipywidgets.Image`` with PNG bytes instead of redrawing into an ``Output``
widget: no output capturing, so they behave the same in a browser, in Colab (ipywidgets 7)
and under nbclient/nbval.
"""

from __future__ import annotations

import io
from typing import Callable


def to_png(image, scale: int = 1) -> bytes:
    """PNG bytes of a PIL image, a [H, W] / [H, W, 3] array or tensor in [0, 1] or 0..255, enlarged ``scale`` times."""
    import numpy as np
    from PIL import Image

    if not hasattr(image, "save"):
        a = np.asarray(image.detach().cpu() if hasattr(image, "detach") else image, dtype=np.float32)
        if a.max() <= 1.0:
            a = a * 255.0
        image = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    if scale != 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def slider_image(render: Callable[..., object], controls: dict, scale: int = 1, width: int | None = None):
    """A panel of ``controls`` (name -> widget) above an image that ``render(**values)`` redraws.

    ``render`` returns anything :func:`to_png` accepts. Returns the ``VBox``; its ``.image``
    attribute is the Image widget and ``.refresh()`` redraws it (tests call this).
    """
    import ipywidgets as widgets

    def current():
        return {k: w.value for k, w in controls.items()}

    img = widgets.Image(value=to_png(render(**current()), scale), format="png")
    if width:
        img.layout.width = f"{width}px"

    def refresh(_change=None):
        img.value = to_png(render(**current()), scale)

    for w in controls.values():
        w.observe(refresh, names="value")
    box = widgets.VBox([widgets.HBox(list(controls.values())), img])
    box.image = img
    box.refresh = refresh
    return box


def lora_playground(pipe, lora_dir, prompt: str = "a red circle", n_images: int = 4, steps: int = 20, scale: int = 4):
    """Prompt box, LoRA picker, strength slider (0–1.5) and seed that regenerate an image row live.

    Returns the widget box (its ``.refresh()`` redraws, ``.render(**values)`` returns the PIL row).
    """
    import ipywidgets as widgets
    from PIL import Image

    from . import model
    from .lora import available_loras

    loras = available_loras(lora_dir)
    controls = {
        "prompt": widgets.Text(value=prompt, description="prompt"),
        "lora_name": widgets.Dropdown(options=["(none)"] + list(loras), value="(none)", description="LoRA"),
        "strength": widgets.FloatSlider(value=1.0, min=0.0, max=1.5, step=0.1, description="strength"),
        "seed": widgets.IntText(value=0, description="seed"),
    }

    def render(prompt, lora_name, strength, seed):
        lo = None if lora_name == "(none)" else [(loras[lora_name], strength)]
        ims = model.generate(pipe, [prompt] * n_images, seed=int(seed), steps=steps, lora=lo)
        row = Image.new("RGB", (sum(i.width for i in ims) + 2 * (len(ims) - 1), ims[0].height), "white")
        x = 0
        for im in ims:
            row.paste(im, (x, 0))
            x += im.width + 2
        return row

    box = slider_image(render, controls, scale=scale)
    box.render = render
    return box


class LossPlot:
    """A live training-loss plot: an ``ipywidgets.Image`` redrawn every ``every`` steps.

    Pass ``loss_plot.update`` as a training callback (``callback(step, loss)``) and display
    ``loss_plot.widget``. Uses matplotlib's Agg backend, so it works in any front end.
    """

    def __init__(self, total_steps: int, every: int = 25, title: str = "training loss"):
        import ipywidgets as widgets

        self.total, self.every, self.title = total_steps, every, title
        self.losses: list[float] = []
        self.widget = widgets.Image(format="png")
        self.widget.value = self._png()

    def _png(self) -> bytes:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(5, 2.6), dpi=80)
        ax = fig.subplots()
        if self.losses:
            k = max(1, len(self.losses) // 50)
            smooth = [sum(self.losses[max(0, i - k):i + 1]) / len(self.losses[max(0, i - k):i + 1])
                      for i in range(len(self.losses))]
            ax.plot(self.losses, alpha=0.3, label="loss")
            ax.plot(smooth, label="moving average")
            ax.legend(fontsize=7)
        ax.set_xlim(0, self.total)
        ax.set_xlabel("step")
        ax.set_ylabel("MSE loss")
        ax.set_title(self.title, fontsize=9)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()

    def update(self, step: int, loss: float) -> None:
        self.losses.append(float(loss))
        if (step + 1) % self.every == 0 or step + 1 == self.total:
            self.widget.value = self._png()
