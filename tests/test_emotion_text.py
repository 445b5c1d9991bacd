"""The Qwen text-emotion path end to end (load → prompt → generate → parse → unload) on tiny Qwen3
models built here: a byte-level tokenizer with a chat template and <think> tokens, no downloads."""

import subprocess
import sys

import pytest
import torch

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from indextts2_core.checkpoints import CheckpointError  # noqa: E402
from indextts2_core.emotion import TextEmotionModel  # noqa: E402
from indextts2_core.emotion.text_emotion import SYSTEM_PROMPT  # noqa: E402

# Qwen3-style template: thinking off → an empty think block is part of the prompt
TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
            "{% if add_generation_prompt %}<|im_start|>assistant\n"
            "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}"
            "{% endif %}")
# what the crafted model answers: a think block that itself looks like scores, then the real JSON
ANSWER = ["<think>", '"愤怒": 1.0 ', "</think>", '{"高兴": 0.2, ', '"悲伤": 0.7, ', '"低落": 0.1}']


def make_tokenizer(folder):
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {c: i for i, c in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>"]})
    tok.add_tokens([AddedToken(t, normalized=False) for t in ANSWER])
    tok.chat_template = TEMPLATE
    tok.save_pretrained(folder)
    return tok


def make_model(folder, tok, crafted: bool):
    """crafted=False: random weights. crafted=True: every layer's output projection is zero, so the
    logits depend only on the last token; embeddings are one-hot and lm_head maps each token of the
    chain (last prompt byte "\\n" → ANSWER → <|im_end|>) to its successor."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    n = len(tok)
    hidden = n + (-n) % 16
    cfg = Qwen3Config(vocab_size=n, hidden_size=hidden if crafted else 32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=256,
                      tie_word_embeddings=not crafted, eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(cfg)
    if crafted:
        with torch.no_grad():
            model.model.embed_tokens.weight.zero_()
            model.model.embed_tokens.weight[:, :n] = torch.eye(n)
            model.model.layers[0].self_attn.o_proj.weight.zero_()
            model.model.layers[0].mlp.down_proj.weight.zero_()
            model.lm_head.weight.zero_()
            chain = [tok.convert_tokens_to_ids("Ċ")] + tok.convert_tokens_to_ids(ANSWER) + [tok.eos_token_id]
            for prev, nxt in zip(chain, chain[1:]):
                model.lm_head.weight[nxt, prev] = 100.0  # so decisive that sampling follows the chain too
    g = model.generation_config  # like Qwen3's own: sampling on (the official default decoding)
    g.do_sample, g.temperature, g.top_p, g.top_k, g.eos_token_id = True, 0.6, 0.95, 20, tok.eos_token_id
    model.save_pretrained(folder)


@pytest.fixture(scope="module")
def crafted_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("qwen_crafted")
    make_model(d, make_tokenizer(d), crafted=True)
    return d


@pytest.fixture(scope="module")
def random_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("qwen_random")
    make_model(d, make_tokenizer(d), crafted=False)
    return d


def test_prompt_generate_parse_unload(crafted_dir):
    m = TextEmotionModel(crafted_dir, max_new_tokens=32)
    assert not m.is_loaded  # lazy
    prompt = m.build_prompt("今天真开心")
    assert m.is_loaded
    assert prompt == (f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n今天真开心<|im_end|>\n"
                      "<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert m.think_end_id == m.tokenizer.convert_tokens_to_ids("</think>")
    # the answer after the last </think> only: the think block's "愤怒" must not leak in
    assert m.generate_raw("今天真开心") == '{"高兴": 0.2, "悲伤": 0.7, "低落": 0.1}'
    assert m.scores("今天真开心") == [0.2, 0.0, 0.7, 0.0, 0.0, 0.1, 0.0, 0.0]
    assert m.scores("a gloomy evening") == [0.2, 0.0, 0.1, 0.0, 0.0, 0.7, 0.0, 0.0]  # melancholy swap
    m.unload()
    assert not m.is_loaded and m.model is None and m.tokenizer is None
    assert m.scores("再来一次")[0] == 0.2  # loads again on demand
    m.unload()


def test_truncated_answer_falls_back(crafted_dir, caplog):
    m = TextEmotionModel.load(crafted_dir, max_new_tokens=5)  # stops after '"悲伤": 0.7, '
    assert m.generate_raw("x") == '{"高兴": 0.2, "悲伤": 0.7, '
    assert m.scores("x") == [0.2, 0.0, 0.7, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert any("max_new_tokens" in r.message for r in caplog.records)
    m.unload()


def test_random_model_samples_like_its_generation_config_seeded(random_dir):
    """Default decoding follows generation_config.json (sampling): a seed reproduces the answer and
    leaves the global RNG alone; different seeds give different answers."""
    m = TextEmotionModel.load(random_dir, max_new_tokens=12)
    assert m.decoding == "official" and m.model.generation_config.do_sample
    text = "Hello there, how are you?"
    state = torch.get_rng_state()
    first = m.generate_raw(text, seed=7)
    assert torch.equal(torch.get_rng_state(), state)  # the seeded draw ran on a forked RNG
    assert m.generate_raw(text, seed=7) == first
    assert len({m.generate_raw(text, seed=s) for s in range(6)}) > 1
    torch.manual_seed(3)
    unseeded = m.generate_raw(text)  # None: the global RNG, as the official call
    torch.manual_seed(3)
    assert m.generate_raw(text) == unseeded
    assert not torch.equal(torch.get_rng_state(), state)
    s = m.scores(text, seed=1)
    assert len(s) == 8 and all(0.0 <= x <= 1.2 for x in s) and any(x > 0 for x in s)
    for bad in (-1, 1.5, True, "1"):
        with pytest.raises(ValueError, match="seed"):
            m.generate_raw(text, seed=bad)
    with pytest.raises(ValueError, match="empty"):
        m.scores("   ")
    m.unload()


def test_random_model_greedy_ignores_the_rng(random_dir):
    m = TextEmotionModel.load(random_dir, max_new_tokens=12, decoding="greedy")
    outs = {m.generate_raw("Hello there, how are you?", seed=s) for s in range(3)}
    torch.manual_seed(5)
    outs.add(m.generate_raw("Hello there, how are you?"))
    assert len(outs) == 1
    sampled = TextEmotionModel.load(random_dir, max_new_tokens=12)
    assert {sampled.generate_raw("Hello there, how are you?", seed=s) for s in range(6)} != outs
    with pytest.raises(ValueError, match="decoding"):
        TextEmotionModel(random_dir, decoding="beam")
    m.unload()
    sampled.unload()


def test_missing_weight_is_an_error(random_dir, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    for f in random_dir.iterdir():
        shutil.copy(f, tmp_path / f.name)
    sd = load_file(str(tmp_path / "model.safetensors"))
    del sd["model.layers.0.mlp.up_proj.weight"]
    save_file(sd, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="up_proj"):
        TextEmotionModel.load(tmp_path)


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        TextEmotionModel.load(tmp_path / "qwen0.6bemo4-merge")
    with pytest.raises(ValueError, match="max_new_tokens"):
        TextEmotionModel(tmp_path, max_new_tokens=0)


def test_transformers_imported_lazily():
    code = "import sys, indextts2_core.emotion; print('transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
