import os
import pickle

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from indextts2_core.checkpoints import (CheckpointError, SkipList, fold_weight_norm, load_strict,
                                        read_checkpoint, read_tensor, select, strip_prefix)


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(3, 4, 5)
        self.lin = nn.Linear(4, 2)


def toy_sd():
    torch.manual_seed(0)
    return {k: v.clone() for k, v in Toy().state_dict().items()}


class Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/indextts2_pwned",))


def test_malicious_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"weight": torch.zeros(2), "payload": Evil()}, path)
    legacy = tmp_path / "evil_legacy.pt"
    with open(legacy, "wb") as f:
        pickle.dump({"payload": Evil()}, f)
    for p in (path, legacy):
        with pytest.raises(CheckpointError, match="refused"):
            read_checkpoint(p)
    assert not os.path.exists("/tmp/indextts2_pwned")


def test_read_formats_and_nesting(tmp_path):
    sd = toy_sd()
    torch.save({"net": {"toy": sd}}, tmp_path / "a.pth")
    save_file(sd, str(tmp_path / "b.safetensors"))
    torch.save(torch.ones(3, 2), tmp_path / "feat.pt")
    nested = read_checkpoint(tmp_path / "a.pth")
    assert torch.equal(select(nested, "net", "toy")["lin.weight"], sd["lin.weight"])
    with pytest.raises(CheckpointError, match="no entry 'cfm' at net"):
        select(nested, "net", "cfm")
    assert torch.equal(read_checkpoint(tmp_path / "b.safetensors")["conv.bias"], sd["conv.bias"])
    assert read_tensor(tmp_path / "feat.pt").shape == (3, 2)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        read_checkpoint(tmp_path / "nope.pth")
    torch.save(toy_sd(), tmp_path / "t.pth")
    data = (tmp_path / "t.pth").read_bytes()
    (tmp_path / "t.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        read_checkpoint(tmp_path / "t.pth")
    (tmp_path / "x.safetensors").write_bytes(b"garbage" * 10)
    with pytest.raises(CheckpointError, match="safetensors"):
        read_checkpoint(tmp_path / "x.safetensors")


def test_load_strict_reports_every_problem():
    sd = toy_sd()
    sd.pop("lin.bias")
    sd["extra.weight"] = torch.zeros(1)
    sd["conv.weight"] = torch.zeros(4, 3, 7)
    with torch.device("meta"):
        m = Toy()
    with pytest.raises(CheckpointError) as e:
        load_strict(m, sd, "toy")
    msg = str(e.value)
    assert "missing: lin.bias" in msg and "unexpected: extra.weight" in msg
    assert "wrong shape: conv.weight expected [4, 3, 5] found [4, 3, 7]" in msg


def test_load_strict_skip_list_and_assign():
    sd = toy_sd()
    sd["decoder.0.weight"] = torch.zeros(3)
    with torch.device("meta"):
        m = Toy()
    skip = SkipList("toy", (r"decoder\..*",), "decoder unused at inference")
    load_strict(m, sd, "toy", skip=skip)
    assert not m.lin.weight.is_meta and torch.equal(m.lin.weight, sd["lin.weight"])
    with torch.device("meta"):
        m2 = Toy()
    with pytest.raises(CheckpointError, match="unexpected: decoder.0.weight"):
        load_strict(m2, sd, "toy")


def test_fold_weight_norm_formula():
    sd = {"c.weight_g": torch.full((4, 1, 1), 2.0), "c.weight_v": torch.randn(4, 3, 5), "c.bias": torch.zeros(4)}
    w = fold_weight_norm(sd)["c.weight"]
    assert torch.allclose(w.flatten(1).norm(dim=1), torch.full((4,), 2.0))
    with pytest.raises(CheckpointError, match="no matching"):
        fold_weight_norm({"c.weight_g": torch.ones(1, 1, 1)})


def test_fold_weight_norm_equals_module_weight():
    torch.manual_seed(2)
    conv = nn.utils.weight_norm(nn.Conv1d(3, 4, 5))
    with torch.no_grad():
        conv.weight_g.mul_(1.7)
    sd = {"c." + k: v.detach().clone() for k, v in conv.state_dict().items()}
    x = torch.randn(1, 3, 9)
    plain = nn.Conv1d(3, 4, 5)
    plain.load_state_dict({k[2:]: v for k, v in fold_weight_norm(sd).items()})
    assert torch.allclose(plain(x), conv(x), atol=1e-6)


def test_strip_prefix():
    assert strip_prefix({"module.a": 1, "module.b": 2}, "module.") == {"a": 1, "b": 2}
    assert strip_prefix({"module.a": 1, "b": 2}, "module.") == {"module.a": 1, "b": 2}
