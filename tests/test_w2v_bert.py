"""w2v-BERT semantic encoder on a tiny random model saved in the facebook/w2v-bert-2.0 layout."""

import pytest
import torch
from safetensors.torch import load_file, save_file

from indextts2_core.checkpoints import CheckpointError
from indextts2_core.semantic.w2v_bert import HIDDEN_STATE_INDEX, SKIP, load_semantic_encoder

transformers = pytest.importorskip("transformers")

P, H = 6, 16  # tiny feature_projection_input_dim / hidden_size


def tiny_config(layers: int):
    return transformers.Wav2Vec2BertConfig(
        hidden_size=H, num_hidden_layers=layers, num_attention_heads=2, intermediate_size=8,
        feature_projection_input_dim=P, conv_depthwise_kernel_size=3, left_max_position_embeddings=4,
        right_max_position_embeddings=2, mask_time_prob=0.05)


def save_tiny(folder, layers=HIDDEN_STATE_INDEX + 2, seed=0):
    torch.manual_seed(seed)
    model = transformers.Wav2Vec2BertModel(tiny_config(layers)).eval()
    with torch.no_grad():  # non-trivial norms and biases, so a mis-wired layer shows
        for name, p in model.named_parameters():
            if "layer_norm" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    model.save_pretrained(folder, safe_serialization=True)
    return model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("w2v")
    full = save_tiny(root / "model")
    g = torch.Generator().manual_seed(1)
    stats = {"mean": 0.1 * torch.randn(H, generator=g), "var": torch.rand(H, generator=g) + 0.5}
    torch.save(stats, root / "stats.pt")
    enc = load_semantic_encoder(root / "model", root / "stats.pt")
    return root, full, stats, enc


def features(b, t, seed=2):
    return torch.randn(b, t, P, generator=torch.Generator().manual_seed(seed))


def test_matches_hidden_state_17_of_full_model(tiny):
    _, full, stats, enc = tiny
    x = features(2, 11)
    mask = torch.ones(2, 11, dtype=torch.int32)
    mask[1, 7:] = 0
    with torch.inference_mode():
        ref = full(input_features=x, attention_mask=mask, output_hidden_states=True).hidden_states[HIDDEN_STATE_INDEX]
        raw = enc.hidden_state(x, mask)
        out = enc(x, mask)
    torch.testing.assert_close(raw, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out, (ref - stats["mean"]) / stats["var"].sqrt(), atol=1e-5, rtol=1e-5)
    assert out.shape == (2, 11, H)


def test_only_the_read_layers_are_built(tiny):
    _, _, _, enc = tiny
    assert len(enc.model.encoder.layers) == HIDDEN_STATE_INDEX
    assert enc.full_num_layers == HIDDEN_STATE_INDEX + 2
    assert not hasattr(enc.model, "masked_spec_embed")
    assert SKIP.matches(f"encoder.layers.{HIDDEN_STATE_INDEX}.ffn1.output_dense.weight")
    assert SKIP.matches("encoder.layers.23.final_layer_norm.bias")
    assert not SKIP.matches(f"encoder.layers.{HIDDEN_STATE_INDEX - 1}.ffn1.output_dense.weight")
    assert not SKIP.matches("encoder.layers.1.ffn1.output_dense.weight")


def test_padding_is_masked(tiny):
    _, _, _, enc = tiny
    x = features(1, 9)
    padded = torch.cat([x, torch.full((1, 4, P), 1.0)], dim=1)  # SeamlessM4T pads with 1.0
    mask = torch.ones(1, 13, dtype=torch.long)
    mask[:, 9:] = 0
    with torch.inference_mode():
        single = enc(x)
        masked = enc(padded, mask)
        unmasked = enc(padded)
    assert masked.shape == (1, 13, H)  # padded rows stay in the output
    torch.testing.assert_close(masked[:, :9], single, atol=1e-4, rtol=1e-4)  # 4.5x: additive mask noise
    assert (unmasked[:, :9] - single).abs().max() > 1e-3  # the mask really changes the result


def test_global_rng_untouched(tiny):
    _, _, _, enc = tiny
    torch.manual_seed(5)
    expected = torch.rand(4)
    torch.manual_seed(5)
    with torch.inference_mode():
        enc(features(1, 5))
    assert torch.equal(torch.rand(4), expected)
    torch.manual_seed(5)
    enc.replay_layerdrop_draws()
    assert not torch.equal(torch.rand(4), expected)


@pytest.mark.parametrize("bad, match", [
    (lambda: (features(1, 5)[0], None), r"\[B, T, 6\]"),
    (lambda: (torch.randn(1, 5, P + 1), None), r"\[B, T, 6\]"),
    (lambda: (torch.randn(1, 0, P), None), "T > 0"),
    (lambda: (features(1, 5).index_fill(1, torch.tensor([2]), float("nan")), None), "NaN"),
    (lambda: (torch.ones(1, 5, P, dtype=torch.long), None), "floating"),
    (lambda: (features(1, 5), torch.ones(1, 4)), "attention_mask must be"),
    (lambda: (features(1, 5), torch.full((1, 5), 2)), "only 0 and 1"),
    (lambda: (features(2, 5), torch.tensor([[1] * 5, [0] * 5])), "at least one"),
])
def test_bad_inputs(tiny, bad, match):
    _, _, _, enc = tiny
    x, mask = bad()
    with pytest.raises(ValueError, match=match):
        enc(x, mask)


def test_too_few_layers_fails_clearly(tmp_path):
    save_tiny(tmp_path / "m", layers=HIDDEN_STATE_INDEX - 1)
    torch.save({"mean": torch.zeros(H), "var": torch.ones(H)}, tmp_path / "s.pt")
    with pytest.raises(CheckpointError, match=f"hidden_states\\[{HIDDEN_STATE_INDEX}\\].*only {HIDDEN_STATE_INDEX - 1}"):
        load_semantic_encoder(tmp_path / "m", tmp_path / "s.pt")


@pytest.mark.parametrize("edit, match", [
    (lambda sd: sd.pop("encoder.layers.3.self_attn.linear_q.weight"), "missing: encoder.layers.3.self_attn.linear_q"),
    (lambda sd: sd.__setitem__("encoder.extra.weight", torch.zeros(2)), "unexpected: encoder.extra.weight"),
])
def test_key_errors_are_reported(tiny, tmp_path, edit, match):
    root = tiny[0]
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text((root / "model" / "config.json").read_text())
    sd = load_file(str(root / "model" / "model.safetensors"))
    edit(sd)
    save_file(sd, str(folder / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match=match):
        load_semantic_encoder(folder, root / "stats.pt")


def test_missing_files_and_bad_stats(tiny, tmp_path):
    root = tiny[0]
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_semantic_encoder(tmp_path, root / "stats.pt")
    torch.save({"mean": torch.zeros(H + 1), "var": torch.ones(H + 1)}, tmp_path / "wide.pt")
    with pytest.raises(CheckpointError, match="'mean' must be a tensor of shape"):
        load_semantic_encoder(root / "model", tmp_path / "wide.pt")
    torch.save({"mean": torch.zeros(H), "var": torch.zeros(H)}, tmp_path / "zero.pt")
    with pytest.raises(CheckpointError, match="var positive"):
        load_semantic_encoder(root / "model", tmp_path / "zero.pt")
