"""scan_pickle on a malicious corpus (never executed) and on benign checkpoints."""

from __future__ import annotations

import builtins
import code
import importlib
import io
import marshal
import operator
import os
import pickle
import pty
import runpy
import shutil
import socket
import subprocess
import webbrowser
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
import torch

from course_utils import safety, weights
from course_utils.errors import CourseError


class _Payload:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


class _GetattrChain:
    """getattr(__import__('os'), 'system')('…'): the classic chain through builtins."""

    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        return (_Payload(builtins.getattr, (_Payload(builtins.__import__, ("os",)), "system")).__reduce__()[0],
                (_Payload(builtins.__import__, ("os",)), "system"))


def payloads(marker: str) -> dict:
    cmd = f"touch {marker}"
    return {
        "os.system": _Payload(os.system, (cmd,)),
        "os.popen": _Payload(os.popen, (cmd,)),
        "eval": _Payload(builtins.eval, (f"open({marker!r}, 'w')",)),
        "exec": _Payload(builtins.exec, (f"open({marker!r}, 'w')",)),
        "compile": _Payload(builtins.compile, ("1", "x", "eval")),
        "__import__": _Payload(builtins.__import__, ("os",)),
        "open": _Payload(builtins.open, (marker, "w")),
        "getattr chain": _GetattrChain(cmd),
        "subprocess.Popen": _Payload(subprocess.Popen, (["touch", marker],)),
        "subprocess.check_output": _Payload(subprocess.check_output, (["touch", marker],)),
        "runpy": _Payload(runpy.run_path, (marker,)),
        "webbrowser": _Payload(webbrowser.open, ("http://127.0.0.1:9/",)),
        "socket": _Payload(socket.create_connection, (("127.0.0.1", 9),)),
        "importlib": _Payload(importlib.import_module, ("os",)),
        "shutil.rmtree": _Payload(shutil.rmtree, (marker,)),
        "pty.spawn": _Payload(pty.spawn, ("true",)),
        "pickle.loads": _Payload(pickle.loads, (b"N.",)),
        "marshal.loads": _Payload(marshal.loads, (b"N",)),
        "operator.attrgetter": _Payload(operator.attrgetter, ("system",)),
        "code.interact": _Payload(code.interact, ()),
        "torch.hub.load": _Payload(torch.hub.load, ("x/y", "z")),
    }


PROTOCOLS = [0, 2, 4, 5]
KINDS = list(payloads("m"))


def _write(tmp_path, obj, protocol, container):
    data = pickle.dumps({"weight": torch.zeros(2).numpy().tolist(), "payload": obj}, protocol=protocol)
    if container == "bare":
        p = tmp_path / f"evil_{protocol}.pkl"
        p.write_bytes(data)
    else:
        p = tmp_path / f"evil_{protocol}.pt"
        with zipfile.ZipFile(p, "w") as zf:
            zf.writestr("archive/data.pkl", data)
            zf.writestr("archive/version", "3\n")
    return p


@pytest.mark.parametrize("container", ["zip", "bare"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("kind", KINDS)
def test_malicious_corpus_flagged_and_refused(tmp_path, kind, protocol, container):
    marker = tmp_path / "MARKER"
    p = _write(tmp_path, payloads(str(marker))[kind], protocol, container)
    res = safety.scan_pickle(p)
    assert res.verdict == "dangerous", (kind, res)
    assert res.dangerous
    with pytest.raises(CourseError):
        weights.load_state_dict(p)
    assert not marker.exists()


def test_torch_save_payload_refused_with_global_named(tmp_path):
    marker = tmp_path / "MARKER"
    p = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "cb": _Payload(os.system, (f"touch {marker}",))}, p)
    res = safety.scan_pickle(p)
    assert res.verdict == "dangerous" and any("system" in g for g in res.dangerous)
    with pytest.raises(CourseError, match="system"):
        weights.load_state_dict(p)
    assert not marker.exists()


def test_corpus_size_meets_the_bar():
    assert len(KINDS) >= 15


def _benign(tmp_path):
    lin = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(lin.parameters())
    lin(torch.ones(1, 3)).sum().backward()
    opt.step()
    files = {}
    files["plain.pt"] = lin.state_dict()
    files["ordered.pth"] = OrderedDict(lin.state_dict())
    files["lightning.ckpt"] = {"state_dict": lin.state_dict(), "global_step": 10, "epoch": 1,
                               "optimizer_states": [opt.state_dict()], "lr_schedulers": [],
                               "hyper_parameters": {"lr": np.float64(1e-3), "dim": np.int64(3)}}
    out = []
    for name, obj in files.items():
        p = tmp_path / name
        torch.save(obj, p)
        out.append(p)
    legacy = tmp_path / "legacy.pth"
    torch.save(lin.state_dict(), legacy, _use_new_zipfile_serialization=False)
    out.append(legacy)
    return out


def test_benign_checkpoints_are_never_dangerous(tmp_path):
    for p in _benign(tmp_path):
        res = safety.scan_pickle(p)
        assert res.verdict != "dangerous", (p.name, res)
        sd = weights.load_state_dict(p)
        assert set(sd) >= {"weight", "bias"}, p.name


def test_plain_state_dicts_are_safe(tmp_path):
    for p in _benign(tmp_path):
        if p.name in ("plain.pt", "ordered.pth", "legacy.pth"):
            assert safety.scan_pickle(p).verdict == "safe", (p.name, safety.scan_pickle(p))


def test_broken_stream_keeps_findings(tmp_path):
    data = pickle.dumps(_Payload(os.system, ("true",)), protocol=2)
    p = tmp_path / "broken.pkl"
    p.write_bytes(data[:-3] + b"\xff\xfe\xfd")
    res = safety.scan_pickle(p)
    assert res.verdict == "dangerous" and res.notes


def test_stack_global_with_memo_is_resolved():
    buf = io.BytesIO()
    pickle.Pickler(buf, protocol=4).dump([_Payload(os.system, ("a",)), _Payload(os.system, ("b",))])
    res = safety.scan_bytes(buf.getvalue())
    assert any(g.endswith(".system") for g in res.globals)
