"""CLI (exit codes, --json keys), install() for each UI, diagnose() verdicts, and a hypothesis fuzz."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from course_utils import CourseError, paths, weights
from course_utils.cli import main as cli
from course_utils.diagnose import diagnose


@pytest.fixture()
def files(tmp_path):
    sd = {"w": torch.randn(3, 2), "b": torch.zeros(3)}
    st_ = tmp_path / "m.safetensors"
    save_file(sd, str(st_), metadata={"k": "v"})
    ck = tmp_path / "m.ckpt"
    torch.save({"state_dict": sd, "global_step": 3}, ck)

    class Evil:
        def __reduce__(self):
            return (os.system, ("true",))

    evil = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, evil)
    return st_, ck, evil


def test_cli_exit_codes_and_json(files, tmp_path, capsys):
    st_, ck, evil = files
    assert cli(["inspect", str(st_), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"format", "tensors", "parameters", "dtypes", "metadata"} <= set(out) and out["tensors"] == 2
    assert cli(["scan", str(ck), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "safe"
    assert cli(["scan", str(evil), "--json"]) == 1
    s = json.loads(capsys.readouterr().out)
    assert s["verdict"] == "dangerous" and any("system" in g for g in s["globals"])
    assert cli(["convert", str(ck), str(tmp_path / "c.safetensors")]) == 0
    assert "wrote" in capsys.readouterr().out
    assert cli(["hash", str(st_), "--json"]) == 0
    h = json.loads(capsys.readouterr().out)
    assert {"sha256", "autov1", "autov2", "autov3"} <= set(h)
    assert cli(["inspect", str(tmp_path / "missing.bin")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_cli_as_module_subprocess(files):
    st_, _, _ = files
    r = subprocess.run([sys.executable, "-m", "course_utils", "inspect", str(st_), "--json"], capture_output=True, text=True)
    assert r.returncode == 0 and json.loads(r.stdout)["format"] == "safetensors"


@pytest.mark.parametrize("ui,folder", [("a1111", "models/Lora"), ("comfyui", "models/loras"), ("article", "lora")])
def test_install_lora_per_ui(tmp_path, ui, folder):
    src = paths.loras_dir() / "outline.safetensors"
    before = src.read_bytes()
    dst = weights.install(src, ui, tmp_path)
    assert dst == tmp_path / folder / "outline.safetensors" and dst.read_bytes() == before
    assert src.read_bytes() == before
    assert weights.install(src, ui, tmp_path) == dst  # idempotent


@pytest.mark.parametrize("ui,folder", [("a1111", "models/Stable-diffusion"), ("comfyui", "models/checkpoints")])
def test_install_checkpoint(tmp_path, files, ui, folder):
    st_, ck, evil = files
    assert weights.install(st_, ui, tmp_path).parent == tmp_path / folder
    with pytest.raises(CourseError, match="system"):
        weights.install(evil, ui, tmp_path)
    (tmp_path / "page.safetensors").write_text("<html>login</html>")
    with pytest.raises(CourseError, match="HTML"):
        weights.install(tmp_path / "page.safetensors", ui, tmp_path)
    with pytest.raises(CourseError, match="Unknown UI"):
        weights.install(st_, "invokeai", tmp_path)


def test_diagnose_verdicts(tmp_path, files):
    st_, _, evil = files
    assert diagnose(paths.loras_dir() / "ring.safetensors", verbose=False).ok
    assert not diagnose(tmp_path / "nope.safetensors", verbose=False).ok
    assert "DANGEROUS" in diagnose(evil, verbose=False).verdict
    data = (paths.loras_dir() / "ring.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    assert "corrupt" in diagnose(tmp_path / "cut.safetensors", verbose=False).verdict
    flipped = bytearray(data)
    flipped[-10] ^= 0xFF
    (tmp_path / "flip.safetensors").write_bytes(bytes(flipped))
    r = diagnose(tmp_path / "flip.safetensors", verbose=False)
    assert not r.ok and "sshs_model_hash" in r.checks[-1][2]


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=300),
                 st.builds(lambda n, body: n.to_bytes(8, "little") + body,
                           st.integers(0, 2**64 - 1), st.binary(max_size=200)),
                 st.builds(lambda body: len(body).to_bytes(8, "little") + body,
                           st.text(max_size=120).map(lambda t: ("{" + t).encode()))))
def test_fuzz_random_bytes_only_course_errors(tmp_path_factory, data):
    p = tmp_path_factory.getbasetemp() / "fuzz.safetensors"
    p.write_bytes(data)
    try:
        weights.read_safetensors_header(p)
    except CourseError:
        pass
    try:
        weights.load_state_dict(p)
    except CourseError:
        pass
