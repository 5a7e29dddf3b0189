"""course_utils.weights: format detection by content, header-only parsing, safe loading, conversion."""

from __future__ import annotations

import json
import os
import pickle
import struct
import zipfile
from collections import OrderedDict

import pytest
import torch
from safetensors.torch import save_file

from course_utils import CourseError, weights
from course_utils.errors import FormatError, UnsafeFileError


@pytest.fixture()
def sd():
    g = torch.Generator().manual_seed(0)
    return {"layer.weight": torch.randn(4, 3, generator=g), "layer.bias": torch.zeros(4),
            "emb": torch.randn(5, 2, generator=g).half()}


def _st(tmp_path, sd, name="m.safetensors", meta=None):
    p = tmp_path / name
    save_file(sd, str(p), metadata=meta)
    return p


def test_detect_each_format(tmp_path, sd):
    st = _st(tmp_path, sd)
    assert weights.detect_format(st).format == "safetensors"
    pt = tmp_path / "m.pt"
    torch.save(sd, pt)
    assert weights.detect_format(pt).format == "torch-zip"
    legacy = tmp_path / "old.pth"
    torch.save(sd, legacy, _use_new_zipfile_serialization=False)
    assert weights.detect_format(legacy).format == "torch-legacy"
    bare = tmp_path / "x.pkl"
    bare.write_bytes(pickle.dumps({"a": 1}, protocol=4))
    assert weights.detect_format(bare).format == "pickle"
    (tmp_path / "p0.pkl").write_bytes(pickle.dumps({"a": [1, 2]}, protocol=0))
    assert weights.detect_format(tmp_path / "p0.pkl").format == "pickle"
    lfs = tmp_path / "lfs.safetensors"
    lfs.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n")
    assert weights.detect_format(lfs).format == "lfs-pointer"
    html = tmp_path / "page.safetensors"
    html.write_text("<!DOCTYPE html><html><body>Sign in</body></html>")
    assert weights.detect_format(html).format == "html"
    js = tmp_path / "err.ckpt"
    js.write_text(json.dumps({"error": "Repository not found"}))
    assert weights.detect_format(js).format == "json"
    empty = tmp_path / "e.safetensors"
    empty.write_bytes(b"")
    assert weights.detect_format(empty).format == "empty"
    trunc = tmp_path / "t.safetensors"
    trunc.write_bytes(st.read_bytes()[:40])
    assert weights.detect_format(trunc).format == "truncated"
    ztrunc = tmp_path / "t.pt"
    ztrunc.write_bytes(pt.read_bytes()[: pt.stat().st_size // 2])
    assert weights.detect_format(ztrunc).format == "truncated"
    z = tmp_path / "other.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("readme.txt", "hi")
    assert weights.detect_format(z).format == "zip"


def test_renamed_extensions_are_recognised(tmp_path, sd):
    st = _st(tmp_path, sd, "model.ckpt")
    fi = weights.detect_format(st)
    assert fi.format == "safetensors" and not fi.extension_ok and "rename it to .safetensors" in fi.advice
    pt = tmp_path / "model.safetensors"
    torch.save(sd, pt)
    fi = weights.detect_format(pt)
    assert fi.format == "torch-zip" and not fi.extension_ok and "pickle" in fi.advice
    rep = weights.inspect(st)
    assert rep.notes and "does not match" in rep.notes[0]


def test_inspect_safetensors_reads_header_only(tmp_path, sd, monkeypatch):
    p = _st(tmp_path, sd, meta={"ss_network_dim": "4"})
    import safetensors.torch as st

    monkeypatch.setattr(st, "load_file", lambda *a, **k: (_ for _ in ()).throw(AssertionError("read tensors")))
    rep = weights.inspect(p)
    assert (rep.format, rep.tensors, rep.parameters) == ("safetensors", 3, 12 + 4 + 10)
    assert rep.dtypes == {"F32": 2, "F16": 1} and rep.dtype_bytes == {"F32": 64, "F16": 20}
    assert rep.metadata == {"ss_network_dim": "4"}
    assert "parameters" in str(rep)


def test_inspect_and_load_ckpt_unwraps_state_dict(tmp_path, sd):
    p = tmp_path / "model.ckpt"
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1, momentum=0.9)
    torch.save({"state_dict": OrderedDict(sd), "global_step": 7, "epoch": 1, "optimizer_states": [opt.state_dict()],
                "hparams": {"lr": 0.1}}, p)
    rep = weights.inspect(p)
    assert set(rep.top_level_keys) >= {"state_dict", "global_step", "optimizer_states"}
    assert rep.tensors == 3
    loaded = weights.load_state_dict(p)
    assert set(loaded) == set(sd) and all(torch.equal(loaded[k], sd[k]) for k in sd)


def test_load_refuses_malicious_pickle_and_names_global(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    p = tmp_path / "evil.pt"
    torch.save({"w": torch.zeros(1), "x": Evil()}, p)
    with pytest.raises(UnsafeFileError) as e:
        weights.load_state_dict(p)
    assert "system" in str(e.value) and "safetensors" in str(e.value)
    assert not marker.exists()


def test_load_errors_are_course_errors(tmp_path, sd):
    for name, data in [("e.safetensors", b""), ("lfs.safetensors", b"version https://git-lfs.github.com/spec/v1\n"),
                       ("h.ckpt", b"<html><body>404</body></html>")]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(CourseError):
            weights.load_state_dict(tmp_path / name)
    with pytest.raises(CourseError, match="No file"):
        weights.load_state_dict(tmp_path / "missing.safetensors")


def test_convert_to_safetensors(tmp_path, sd):
    src = tmp_path / "model.ckpt"
    torch.save({"state_dict": sd, "global_step": 1}, src)
    before = src.read_bytes()
    dst = weights.convert_to_safetensors(src, tmp_path / "model.safetensors")
    out = weights.load_state_dict(dst)
    assert all(torch.equal(out[k], sd[k]) for k in sd)
    meta = weights.read_safetensors_metadata(dst)
    assert meta["source_format"] == "torch-zip" and "float32" in meta["original_dtype"]
    half = weights.convert_to_safetensors(src, tmp_path / "half.safetensors", dtype="fp16")
    assert weights.inspect(half).dtypes == {"F16": 3}
    assert src.read_bytes() == before
    with pytest.raises(CourseError, match="overwrite the input"):
        weights.convert_to_safetensors(src, src)
    with pytest.raises(CourseError, match="already exists"):
        weights.convert_to_safetensors(src, dst)
    with pytest.raises(CourseError, match="Unknown dtype"):
        weights.convert_to_safetensors(src, tmp_path / "x.safetensors", dtype="fp8")
    assert not list(tmp_path.glob("*.tmp"))


# ---- corrupt safetensors: >= 10 kinds, each a FormatError with a specific message ----

def _raw(header: dict | bytes, data: bytes = b"", n: int | None = None) -> bytes:
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(h) if n is None else n) + h + data


GOOD = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
CORRUPT = {
    "empty": (b"", "only 0 bytes"),
    "short": (b"\x01\x02\x03", "only 3 bytes"),
    "header too large": (_raw(b"{}", n=10**12), "100 MB"),
    "header past end": (_raw(b'{"a":1}', n=5000), "truncated or not safetensors"),
    "bad json": (_raw(b"{not json"), "not valid JSON"),
    "not an object": (_raw(b"[1, 2]     "), "not an object"),
    "bad utf8": (_raw(b'{"\xff\xfe": 1}'), "not valid UTF-8"),
    "bad dtype": (_raw({"a": {"dtype": "F17", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8), "unknown dtype"),
    "bad shape": (_raw({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, b"\0" * 8), "invalid shape"),
    "size mismatch": (_raw({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8), "needs 12 bytes"),
    "overlap": (_raw({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                      "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12), "overlaps"),
    "gap": (_raw({"a": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12), "gap"),
    "truncated data": (_raw(GOOD, b"\0" * 5), "truncated"),
    "trailing bytes": (_raw(GOOD, b"\0" * 12), "trailing bytes"),
    "bad metadata": (_raw({"__metadata__": {"a": 1}, **GOOD}, b"\0" * 8), "strings to strings"),
    "missing fields": (_raw({"a": {"dtype": "F32"}}), "lacks dtype"),
}


@pytest.mark.parametrize("kind", list(CORRUPT))
def test_corrupt_safetensors_give_specific_errors(tmp_path, kind):
    data, msg = CORRUPT[kind]
    p = tmp_path / "bad.safetensors"
    p.write_bytes(data)
    with pytest.raises(FormatError, match=msg):
        weights.read_safetensors_header(p)
    with pytest.raises(CourseError):
        weights.load_state_dict(p)


def test_good_raw_file_parses(tmp_path):
    p = tmp_path / "ok.safetensors"
    p.write_bytes(_raw(GOOD, b"\0" * 8))
    tensors, meta, n = weights.read_safetensors_header(p)
    assert tensors["a"].shape == (2,) and meta == {}
    assert weights.load_state_dict(p)["a"].shape == (2,)
