"""diagnose() on every troubleshooting case of notebook 10, with the verdict asserted."""

from __future__ import annotations

import pytest

from course_utils import model, paths
from course_utils.diagnose import diagnose, make_broken_files


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    return make_broken_files(tmp_path_factory.mktemp("broken"))


@pytest.fixture(scope="module")
def pipe():
    return model.load_pipeline()


EXPECT = {
    "truncated": (False, "truncated"),
    "lfs_pointer": (False, "git-LFS pointer"),
    "html_page": (False, "HTML page"),
    "renamed_ckpt": (True, "looks fine"),
    "lora_in_checkpoint_folder": (True, "a LoRA for course model"),
    "tampered": (False, "tensor data changed"),
    "loha_lora": (False, "LyCORIS"),
    "sdxl_lora": (True, "a LoRA for SDXL"),
}


@pytest.mark.parametrize("name", list(EXPECT))
def test_diagnose_verdicts(cases, name):
    ok, words = EXPECT[name]
    rep = diagnose(cases[name], verbose=False)
    assert rep.ok is ok and words in rep.verdict, (name, rep.verdict, rep.checks)
    assert rep.fix or rep.ok


def test_renamed_file_is_flagged(cases):
    rep = diagnose(cases["renamed_ckpt"], verbose=False)
    assert any(status == "WARN" and "named .ckpt" in detail for _, status, detail in rep.checks)


def test_wrong_base_with_a_base(cases, pipe):
    rep = diagnose(cases["sdxl_lora"], base=pipe, verbose=False)
    assert not rep.ok and "wrong base model" in rep.verdict and "SDXL" in rep.verdict
    good = diagnose(paths.loras_dir() / "ring.safetensors", base=pipe, verbose=False)
    assert good.ok and "fits the base" in good.verdict


def test_diagnose_cli_json(cases, capsys):
    import json

    from course_utils.cli import main

    assert main(["diagnose", str(cases["html_page"]), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False and "HTML" in out["verdict"]
    assert main(["diagnose", str(paths.loras_dir() / "ring.safetensors"), "--base", str(paths.model_dir())]) == 0


def test_full_checkpoints_are_not_mistaken_for_loras():
    for f in ("course-model.safetensors", "course-model.ckpt"):
        rep = diagnose(paths.checkpoints_dir() / f, verbose=False)
        assert rep.ok and rep.kind == "checkpoint", (f, rep.checks)
