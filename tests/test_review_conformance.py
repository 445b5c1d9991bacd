"""Kit stages under parameters other than the public kit's (hidden kits have other values): each
test copies the public kit, edits a stage's params or inputs, runs it and checks the result
against an independent computation or the spec's formula."""

from __future__ import annotations

import json
import shutil
import types
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import OFFICIAL, PUBLIC_KIT, need
from tools.conformance import runner
from tools.conformance.runner import run_kit


def kit_copy(tmp_path: Path, edit, inputs_edit=None) -> Path:
    """stages.json and inputs/ of the public kit copied (checkpoints linked), `edit(stages_by_id)`."""
    src = need(PUBLIC_KIT)
    kit = tmp_path / "kit"
    kit.mkdir()
    shutil.copytree(src / "inputs", kit / "inputs")
    (kit / "checkpoints").symlink_to(src / "checkpoints")
    doc = json.loads((src / "stages.json").read_text(encoding="utf-8"))
    edit({s["id"]: s for s in doc["stages"]})
    (kit / "stages.json").write_text(json.dumps(doc), encoding="utf-8")
    if inputs_edit is not None:
        path = kit / "inputs" / "inputs.safetensors"
        path.chmod(0o644)
        tensors = load_file(str(path))
        inputs_edit(tensors)
        save_file(tensors, str(path))
    return kit


def run_ok(kit: Path, out: Path, stages: list[str]) -> None:
    results = run_kit(kit, out, stages)
    bad = [(r.id, r.detail.splitlines()[0]) for r in results if r.status != "ran"]
    assert not bad, bad


def test_runner_writes_outputs_that_share_memory(tmp_path, monkeypatch):
    """A stage may return the same tensor under two names; the file must still be written."""
    (tmp_path / "stages.json").write_text(json.dumps({"stages": [
        {"id": "zz_alias", "inputs": [], "outputs": [{"file": "expected/a.safetensors", "name": n} for n in "xy"]}]}))
    x = torch.arange(6.0)
    fake = types.SimpleNamespace(run=lambda ctx: {"x": x, "y": x})
    monkeypatch.setattr(runner, "stage_module", lambda stage: fake)
    run_ok(tmp_path, tmp_path / "out", ["zz_alias"])
    got = load_file(str(tmp_path / "out" / "a.safetensors"))
    assert torch.equal(got["x"], x) and torch.equal(got["y"], x)


def test_runner_failure_detail_starts_with_the_message(tmp_path, monkeypatch):
    (tmp_path / "stages.json").write_text(json.dumps({"stages": [
        {"id": "zz_fail", "inputs": [], "outputs": [{"file": "expected/a.safetensors", "name": "x"}]}]}))

    def boom(ctx):
        raise RuntimeError("\n   what went wrong\n   more")

    monkeypatch.setattr(runner, "stage_module", lambda stage: types.SimpleNamespace(run=boom))
    (res,) = run_kit(tmp_path, tmp_path / "out", ["zz_fail"])
    assert res.status == "failed" and res.detail.splitlines()[0] == "RuntimeError: what went wrong"


@pytest.mark.parametrize("params", [
    dict(temperature=1.0, top_k=0, top_p=1.0, repetition_penalty=1.0),  # every processor a no-op
    dict(temperature=1.3, top_k=5, top_p=0.5, repetition_penalty=2.0),
    dict(temperature=0.5, top_k=300, top_p=0.95, repetition_penalty=10.0),  # top_k above the vocabulary
])
def test_sampling_chain_follows_its_params(tmp_path, params):
    from transformers.generation.logits_process import (RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
                                                        TopKLogitsWarper, TopPLogitsWarper)

    kit = kit_copy(tmp_path, lambda st: st["sampling_chain"]["params"].update(params))
    run_ok(kit, tmp_path / "out", ["sampling_chain"])
    got = load_file(str(tmp_path / "out" / "d6_sampling_chain.safetensors"))
    inp = load_file(str(kit / "inputs" / "inputs.safetensors"))
    ids, s = inp["chain_histories"], torch.log_softmax(inp["chain_logits"], dim=-1)
    want = {"scores_log_softmax": s}
    if params["repetition_penalty"] != 1.0:
        s = RepetitionPenaltyLogitsProcessor(params["repetition_penalty"])(ids, s)
    want["scores_after_repetition_penalty"] = s
    if params["temperature"] != 1.0:
        s = TemperatureLogitsWarper(params["temperature"])(ids, s)
    want["scores_after_temperature"] = s
    if params["top_k"]:
        s = TopKLogitsWarper(params["top_k"], min_tokens_to_keep=2)(ids, s)
    want["scores_after_top_k"] = s
    if params["top_p"] < 1.0:
        s = TopPLogitsWarper(params["top_p"], min_tokens_to_keep=2)(ids, s)
    want["scores_processed"] = s
    for name, w in want.items():
        torch.testing.assert_close(got[name], w, rtol=0, atol=1e-6, msg=name)


def test_text_cases_survive_a_lone_surrogate(tmp_path):
    """A case text may hold a lone surrogate (JSON allows the escape); the row is still written and
    the other cases too."""
    from tools.conformance.text_cases import run_cases

    bpe = need(OFFICIAL / "bpe.model")
    cases = tmp_path / "cases.jsonl"
    rows = [{"id": "a", "text": "odd \ud800 text."}, {"id": "b", "text": None}, {"id": "c", "text": "你好。"}]
    cases.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert run_cases(cases, out, bpe) == 0
    got = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [g["id"] for g in got] == ["a", "b", "c"]
    assert got[1]["error"]["type"] == "ValueError" and got[1]["ids"] is None  # recorded, not raised
    assert got[2]["error"] is None and got[2]["segments"]["120"]["ids"] == [got[2]["ids"]]
    assert "你" in out.read_text(encoding="utf-8")  # plain UTF-8 where possible


@pytest.mark.parametrize("alpha", [0.0, 1.0, 1.7, 0.35])
def test_emotion_stage_for_any_alpha(tmp_path, alpha):
    """Spec §5.2: clamp α to [0, 1]; below 1 truncate w·α to 4 decimals (α = 0: all zero, so the
    emotion vector is the speaker's own); emovec = Σ w_b·row_b + (1 − Σw)·base."""

    def set_alpha(t):
        t["emo_alpha_vector"] = torch.tensor(alpha, dtype=t["emo_alpha_vector"].dtype)

    kit = kit_copy(tmp_path, lambda st: None, set_alpha)
    out = tmp_path / "out"
    run_ok(kit, out, ["emotion"])
    got = load_file(str(out / "g_emotion.safetensors"))
    w = load_file(str(kit / "inputs" / "inputs.safetensors"))["emo_vector"].tolist()
    a = min(max(alpha, 0.0), 1.0)
    want_w = w if a == 1.0 else [int(x * a * 10000) / 10000 for x in w]
    assert got["emo_vector_scaled"].tolist() == want_w
    base = load_file(str(out / "d1_gpt_cond.safetensors"))["emovec_base_vecpath"]
    weights = torch.tensor(want_w, dtype=torch.float32)
    want = (weights[:, None] * got["emo_matrix_rows"]).sum(0, keepdim=True) + (1 - weights.sum()) * base
    torch.testing.assert_close(got["emovec_final"], want, rtol=1e-5, atol=1e-6)
    if a == 0.0:
        torch.testing.assert_close(got["emovec_final"], base, rtol=0, atol=0)


def _euler_reference(estimator, noise, prompt_mel, style, mu, steps, cfg_rate):
    """Spec §6.5 written out: Euler on linspace(0, 1, steps + 1), CFG against the all-zero null
    branch, prompt frames re-zeroed after every step; returns the whole x."""
    p = prompt_mel.shape[-1]
    x = noise.clone()
    x[:, :, :p] = 0
    prompt_x = torch.zeros_like(noise)
    prompt_x[:, :, :p] = prompt_mel
    t_span = torch.linspace(0, 1, steps + 1)
    t = t_span[0]
    for i in range(1, steps + 1):
        dt = t_span[i] - t_span[i - 1]
        v_c = estimator(x, prompt_x, t.reshape(1), style, mu)
        v_u = estimator(x, torch.zeros_like(prompt_x), t.reshape(1), torch.zeros_like(style), torch.zeros_like(mu))
        x = x + dt * ((1 + cfg_rate) * v_c - cfg_rate * v_u)
        t = t + dt
        x[:, :, :p] = 0
    return x


@pytest.mark.parametrize("steps, cfg_rate, temperature", [(7, 0.0, 1.0), (4, 1.3, 0.6)])
def test_s2m_cfm_follows_steps_cfg_and_temperature(tmp_path, steps, cfg_rate, temperature):
    from indextts2_core.config import IndexTTS2Config
    from indextts2_core.s2mel.model import load_s2mel

    kit = kit_copy(tmp_path, lambda st: st["s2m_cfm"]["params"].update(
        n_timesteps=steps, inference_cfg_rate=cfg_rate, temperature=temperature))
    out = tmp_path / "out"
    run_ok(kit, out, ["s2m_cfm"])
    got = load_file(str(out / "e2_s2m_cfm.safetensors"))
    mu = load_file(str(out / "e1_s2m_length_regulator.safetensors"))["cat_condition"]
    ref_mel = load_file(str(out / "a_audio.safetensors"))["ref_mel"]
    style = load_file(str(out / "c_campplus.safetensors"))["style"]
    noise = load_file(str(kit / "inputs" / "inputs.safetensors"))["cfm_noise"] * temperature
    cfg = IndexTTS2Config.from_yaml(kit / "checkpoints" / "config.yaml")
    est = load_s2mel(kit / "checkpoints" / "s2mel.pth", cfg.s2mel).cfm.estimator
    with torch.no_grad():
        want = _euler_reference(est, noise, ref_mel, style, mu, steps, cfg_rate)
    torch.testing.assert_close(got["cfm_out_full"], want, rtol=0, atol=2e-5)
    torch.testing.assert_close(got["vc_target"], want[:, :, ref_mel.shape[-1]:], rtol=0, atol=2e-5)
