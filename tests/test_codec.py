"""Semantic codec quantiser on a tiny random file in the real key layout (weight norm, decoder half)."""

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from indextts2_core.checkpoints import CheckpointError
from indextts2_core.config import SemanticCodecConfig
from indextts2_core.semantic.codec import SemanticCodec, load_semantic_codec

CFG = SemanticCodecConfig(codebook_size=16, hidden_size=12, codebook_dim=4, vocos_dim=8,
                          vocos_intermediate_dim=16, vocos_num_layers=2)
Q = "quantizer.quantizers.0."


def file_state_dict(seed=0) -> dict:
    """Random tensors under the file's keys: weight-normed projections and a decoder half."""
    g = torch.Generator().manual_seed(seed)
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in SemanticCodec(CFG).state_dict().items()}
    sd = {}
    for k, shape in shapes.items():
        if k in (Q + "in_project.weight", Q + "out_project.weight"):
            sd[k[:-len("weight")] + "weight_v"] = torch.randn(shape, generator=g)
            sd[k[:-len("weight")] + "weight_g"] = torch.rand(shape[0], 1, 1, generator=g) + 0.5
        else:
            sd[k] = torch.randn(shape, generator=g) * (0.3 if k.endswith(("weight", "gamma")) else 0.1)
            if k.startswith("encoder."):
                sd["decoder." + k[len("encoder."):]] = torch.randn(shape, generator=g)
    return sd


def folded(sd, name):
    v, g = sd[Q + name + ".weight_v"], sd[Q + name + ".weight_g"]
    return g * v / v.norm(dim=(1, 2), keepdim=True)


@pytest.fixture(scope="module")
def codec_and_sd(tmp_path_factory):
    sd = file_state_dict()
    path = tmp_path_factory.mktemp("codec") / "model.safetensors"
    save_file(sd, str(path))
    return load_semantic_codec(path, CFG), sd


def feats(b, t, seed=3):
    return torch.randn(b, t, CFG.hidden_size, generator=torch.Generator().manual_seed(seed))


def test_quantize_picks_max_cosine_and_embeds_raw_rows(codec_and_sd):
    codec, sd = codec_and_sd
    x = feats(2, 30)
    with torch.inference_mode():
        codes, emb = codec.quantize(x)
        h = codec.encoder(x.transpose(1, 2)).transpose(1, 2)  # [B, H, T]
    assert codes.shape == (2, 30) and codes.dtype == torch.int64 and emb.shape == (2, 30, CFG.hidden_size)
    e = F.conv1d(h, folded(sd, "in_project"), sd[Q + "in_project.bias"])  # [B, K, T]
    cos = F.normalize(e.transpose(1, 2), dim=-1) @ F.normalize(sd[Q + "codebook.weight"], dim=-1).T
    assert torch.equal(codes, cos.argmax(-1))
    assert codes.unique().numel() > 3  # a real spread of codes, not one row picked everywhere
    rows = sd[Q + "codebook.weight"][codes].transpose(1, 2)  # un-normalised rows
    ref = F.conv1d(rows, folded(sd, "out_project"), sd[Q + "out_project.bias"]).transpose(1, 2)
    torch.testing.assert_close(emb, ref, atol=1e-5, rtol=1e-5)
    with torch.inference_mode():
        torch.testing.assert_close(codec.vq2emb(codes), emb, atol=1e-6, rtol=1e-6)


def test_batch_rows_are_independent(codec_and_sd):
    codec, _ = codec_and_sd
    x = feats(3, 17)
    codes = torch.randint(0, CFG.codebook_size, (3, 9), generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        c, e = codec.quantize(x)
        v = codec.vq2emb(codes)
        for i in range(3):
            ci, ei = codec.quantize(x[i:i + 1])
            assert torch.equal(ci, c[i:i + 1])
            torch.testing.assert_close(ei, e[i:i + 1], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(codec.vq2emb(codes[i:i + 1]), v[i:i + 1])  # quirk Q12 fixed


def test_decoder_is_skipped_but_everything_else_is_strict(tmp_path):
    sd = {k: v for k, v in file_state_dict().items() if not k.startswith("decoder.")}
    save_file(sd, str(tmp_path / "no_decoder.safetensors"))
    load_semantic_codec(tmp_path / "no_decoder.safetensors", CFG)  # absent decoder is fine
    missing = dict(sd)
    missing.pop("encoder.0.convnext.1.gamma")
    save_file(missing, str(tmp_path / "missing.safetensors"))
    with pytest.raises(CheckpointError, match="missing: encoder.0.convnext.1.gamma"):
        load_semantic_codec(tmp_path / "missing.safetensors", CFG)
    extra = dict(sd, **{"quantizer.quantizers.1.codebook.weight": torch.zeros(16, 4)})
    save_file(extra, str(tmp_path / "extra.safetensors"))
    with pytest.raises(CheckpointError, match="unexpected: quantizer.quantizers.1"):
        load_semantic_codec(tmp_path / "extra.safetensors", CFG)
    wide = SemanticCodecConfig(**{**CFG.__dict__, "codebook_size": 32})
    with pytest.raises(CheckpointError, match="wrong shape: quantizer.quantizers.0.codebook.weight"):
        load_semantic_codec(tmp_path / "no_decoder.safetensors", wide)


@pytest.mark.parametrize("x, match", [
    (torch.randn(5, CFG.hidden_size), r"\[B, T, 12\]"),
    (torch.randn(1, 5, CFG.hidden_size + 1), r"\[B, T, 12\]"),
    (torch.randn(1, 0, CFG.hidden_size), "B, T > 0"),
    (torch.full((1, 4, CFG.hidden_size), float("inf")), "NaN or Inf"),
    (torch.ones(1, 4, CFG.hidden_size, dtype=torch.long), "floating"),
])
def test_bad_features(codec_and_sd, x, match):
    with pytest.raises(ValueError, match=match):
        codec_and_sd[0].quantize(x)


@pytest.mark.parametrize("codes, match", [
    (torch.tensor([[0, 16]]), r"\[0, 16\)"),
    (torch.tensor([[-1, 2]]), r"\[0, 16\)"),
    (torch.tensor([[0.0, 1.0]]), "integer"),
    (torch.tensor([1, 2]), r"\[B, T\]"),
    (torch.zeros(1, 0, dtype=torch.long), r"\[B, T\]"),
])
def test_bad_codes(codec_and_sd, codes, match):
    with pytest.raises(ValueError, match=match):
        codec_and_sd[0].vq2emb(codes)
