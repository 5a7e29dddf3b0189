"""Leaves of course_utils: paths, env check, hashes, shapes, widgets, plots, LDM layout, notebook conventions."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest
import torch

from course_utils import CourseError, env, hashes, ldm, notebook, paths, plots, shapes, widgets


def test_paths_find_data_and_honour_override(tmp_path, monkeypatch):
    d = paths.data_dir()
    assert (d / "MANIFEST.sha256").is_file() and paths.model_dir().name == "course-model"
    (tmp_path / "MANIFEST.sha256").write_text("")
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    assert paths.data_dir() == tmp_path


def test_paths_error_teaches(monkeypatch, tmp_path):
    monkeypatch.setattr(paths, "_candidates", lambda: [tmp_path / "nope"])
    with pytest.raises(CourseError, match="COURSE_DATA_DIR"):
        paths.data_dir()


def test_check_environment_reports_ok_and_detects_tampering(tmp_path, capsys):
    rep = env.check_environment()
    out = capsys.readouterr().out
    assert rep.ok and "environment: OK" in out and "torch" in out
    assert {p[0] for p in rep.packages} >= {"torch", "diffusers", "transformers", "peft", "safetensors"}
    (tmp_path / "a.bin").write_bytes(b"hello")
    (tmp_path / "MANIFEST.sha256").write_text(f"{hashlib.sha256(b'other').hexdigest()}  a.bin\n{'0' * 64}  gone.bin\n")
    rows = env.verify_manifest(tmp_path)
    assert [r[1] for r in rows] == [False, False] and "corrupt" in rows[0][2] and "missing" in rows[1][2]


def test_requirement_check_flags_missing_and_old():
    assert env._check_requirement("torch>=2.4")[3]
    assert not env._check_requirement("torch>=99")[3]
    assert env._check_requirement("surely-not-installed-pkg>=1")[1] == "missing"


def test_file_hashes_match_definitions(tmp_path):
    big = tmp_path / "big.bin"
    data = os.urandom(3 * 1024 * 1024)
    big.write_bytes(data)
    h = hashes.file_hashes(big)
    assert h.sha256 == hashlib.sha256(data).hexdigest() and h.autov2 == h.sha256[:10]
    assert h.autov1 == hashlib.sha256(data[0x100000:0x110000]).hexdigest()[:8]
    assert h.autov3 is None
    small = tmp_path / "s.bin"
    small.write_bytes(b"x")
    assert hashes.file_hashes(small).autov1 is None


def test_autov3_ignores_metadata(tmp_path):
    from safetensors.torch import save_file

    t = {"a": torch.arange(10.0)}
    save_file(t, str(tmp_path / "a.safetensors"), metadata={"x": "1"})
    save_file(t, str(tmp_path / "b.safetensors"), metadata={"x": "a much longer value here"})
    ha, hb = hashes.file_hashes(tmp_path / "a.safetensors"), hashes.file_hashes(tmp_path / "b.safetensors")
    assert ha.sha256 != hb.sha256 and ha.autov3 == hb.autov3 == hashes.safetensors_data_hash(t)


def test_shapes_are_seeded_and_captioned():
    a, ca, sa = shapes.make_dataset(5, seed=1)
    b, cb, _ = shapes.make_dataset(5, seed=1)
    assert ca == cb and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))
    assert all(c == f"a {s.colour} {s.shape}" for c, s in zip(ca, sa))
    assert a[0].size == (32, 32)
    t = shapes.to_tensor(a)
    assert t.shape == (5, 3, 32, 32) and -1 <= t.min() and t.max() <= 1
    with pytest.raises(ValueError, match="unknown shape"):
        shapes.draw(shapes.ShapeSpec("hexagon", "red", "plain", 16, 16, 8, (240, 240, 240)))


def test_widgets_redraw_on_change():
    import ipywidgets as W

    s = W.IntSlider(value=1, min=1, max=3)
    box = widgets.slider_image(lambda k: np.full((4, 4), k / 3.0), {"k": s}, scale=2)
    first = box.image.value
    s.value = 3
    assert box.image.value != first and box.image.value[:4] == b"\x89PNG"


def test_image_grid_labels():
    import matplotlib

    matplotlib.use("Agg")
    fig = plots.image_grid([np.zeros((4, 4, 3))] * 4, cols=2, row_labels=["r1", "r2"], col_labels=["c1", "c2"])
    assert fig.axes[0].get_title() == "c1" and fig.axes[0].get_ylabel() == "r1"


def test_ldm_unet_layout_round_trips_through_diffusers():
    from diffusers import UNet2DConditionModel
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

    cfg = dict(block_out_channels=(32, 64, 64), layers_per_block=2, cross_attention_dim=32, attention_head_dim=8,
               norm_num_groups=32, down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
               up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"), sample_size=8)
    unet = UNet2DConditionModel(**cfg)
    sd = unet.state_dict()
    ldm_sd = ldm.unet_to_ldm(sd, unet.config)
    assert all(k.startswith("model.diffusion_model.") for k in ldm_sd)
    back = convert_ldm_unet_checkpoint(ldm_sd, unet.config)
    assert set(back) == set(sd) and all(torch.equal(back[k], sd[k]) for k in sd)


def test_colab_links_defined_once():
    url = notebook.colab_url("notebooks/00_setup.ipynb")
    assert url == f"https://colab.research.google.com/github/{notebook.REPO_OWNER}/{notebook.REPO_NAME}/blob/main/notebooks/00_setup.ipynb"
    assert notebook.REPO_URL in notebook.SETUP_CELL
