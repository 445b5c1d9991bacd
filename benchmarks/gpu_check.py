"""One prepared GPU check (issue 18 item 1): correctness on CUDA against the CPU, half-precision
drift, and per-stage speed of full-size networks, in one run that writes a JSON and prints a table.

    python -m benchmarks.gpu_check                    # CUDA: everything, inside --budget-s (450 s)
    python -m benchmarks.gpu_check --cpu-smoke        # CPU, small sizes, < 1 min (what CI runs)

Needs the project, its requirements and torch; configs come from the shared folder (INDEXTTS2_SHARED,
--shared: `official-data/config.yaml` for the full sizes, the public e2e kit for the small ones).

(a) correctness: the e2e kit's networks (its materialised random weights with --kit DIR, else the
    same sizes with seeded random weights) on the device in float32 against the same networks on
    the CPU: every stage (speaker / emotion features, GPT conditioning, greedy and beam codes,
    latents, S2M with the same noise, BigVGAN) and the whole chain; greedy codes must be identical,
    tensors within the tolerances in TOL. Also on the device: decode-step modes (static, CUDA graph,
    compiled), batched decoding, batched S2M, chunked vocoding and fused activations against their
    reference paths. TF32 is switched off for this part (float32 means float32).
(b) half precision: GPT fp16 (official semantics) and bf16, S2M estimator and BigVGAN fp16 / bf16
    against float32 on the device: code agreement and tensor drift, reported (not judged).
(c) speed of full-size networks (random weights, official config): speaker and emotion features,
    GPT conditioning, prefill, ms/token greedy and 3-beam per decode-step mode, batched decoding,
    S2M and BigVGAN per second of audio, chunked vocoding, RTF of 1 s / 5 s / 20 s texts, first
    call against a cached prompt, peak GPU memory per stage (TF32 as the defaults leave it).
(d) VRAM with stage offloading, as the ComfyUI loader schedules it (one stage's modules on the GPU
    while it runs, the rest on the CPU): full-size networks, GPT in fp16, a 15 s voice, a 15 s emotion
    recording and one 20 s segment decoded with 3-beam sampling; peak allocated and reserved memory
    per stage, and whether the largest fits in 8 GiB.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import platform
import tempfile
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = Path(os.environ.get("INDEXTTS2_SHARED", ROOT.parent / "shared"))
MANIFESTS = ROOT / "tests" / "data" / "manifests"
RATE = 22050

# (a) device float32 vs CPU float32: max |a - b| / max |b| (relative to the tensor's scale)
TOL = {"features": 1e-3, "conditioning": 1e-3, "latent": 1e-3, "mel": 1e-3, "wave": 2e-3,
       "same_device_paths": 1e-4, "seams": 1e-3}


# ---- bookkeeping ----------------------------------------------------------------------------------
class Report:
    def __init__(self, device: torch.device, budget_s: float):
        self.device, self.budget_s, self.t0 = device, budget_s, time.perf_counter()
        self.rows: list[dict] = []

    def left(self) -> float:
        return self.budget_s - (time.perf_counter() - self.t0)

    def add(self, section: str, item: str, value=None, unit: str = "", ok: bool | None = None, note: str = ""):
        at = time.perf_counter() - self.t0
        row = dict(section=section, item=item, value=value, unit=unit, ok=ok, note=note, at_s=round(at, 1))
        self.rows.append(row)
        mark = {True: "ok", False: "FAIL", None: ""}[ok]
        val = f"{value:.4g}" if isinstance(value, float) else ("" if value is None else str(value))
        print(f"  {at:6.1f}s [{section}] {item:<52} {val:>12} {unit:<10} {mark:<4} {note}", flush=True)

    def drift(self, section: str, item: str, got: torch.Tensor, ref: torch.Tensor, tol: float | None = None):
        got, ref = got.detach().float().cpu(), ref.detach().float().cpu()
        if got.shape != ref.shape:
            return self.add(section, item, None, "", False if tol is not None else None,
                            f"shapes {list(got.shape)} vs {list(ref.shape)}")
        rel = ((got - ref).abs().max() / ref.abs().max().clamp_min(1e-12)).item() if ref.numel() else 0.0
        self.add(section, item, rel, "rel max", None if tol is None else rel <= tol,
                 "" if tol is None else f"tol {tol:g}")

    def same(self, section: str, item: str, got, ref):
        got, ref = [torch.as_tensor(x).cpu() for x in got], [torch.as_tensor(x).cpu() for x in ref]
        ok = len(got) == len(ref) and all(a.shape == b.shape and torch.equal(a, b) for a, b in zip(got, ref))
        n = sum(b.numel() for b in ref)
        self.add(section, item, n, "codes", ok, "identical" if ok else "DIFFER")

    def run(self, section: str, fn, need_s: float = 0.0):
        if self.left() < need_s:
            return self.add(section, "(skipped)", None, "", None, f"time budget: {self.left():.0f} s left")
        try:
            fn()
        except Exception as e:  # noqa: BLE001  (a failing part is reported, the others still run)
            self.add(section, "(error)", None, "", False, f"{type(e).__name__}: {str(e)[:300]}")
            traceback.print_exc()

    def timed(self, fn, repeat: int = 1):
        """(result, best seconds, peak GPU MiB of the calls or None)."""
        cuda = self.device.type == "cuda"
        best, out = float("inf"), None
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        for _ in range(repeat):
            sync(self.device)
            t = time.perf_counter()
            out = fn()
            sync(self.device)
            best = min(best, time.perf_counter() - t)
        peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
        return out, best, peak


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---- networks -------------------------------------------------------------------------------------
def _init_(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Deterministic finite weights everywhere (some modules are built with torch.empty)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if p.dim() >= 2:  # uniform with the variance 1/fan_in (uniform draws are the cheap ones)
                p.uniform_(-(3 / p[0].numel()) ** 0.5, (3 / p[0].numel()) ** 0.5, generator=g)
            elif leaf in ("weight", "gamma"):
                p.uniform_(0.8, 1.2, generator=g)
            elif leaf == "bias":
                p.uniform_(-0.03, 0.03, generator=g)
            else:  # snake alpha/beta (log scale), other vectors
                p.uniform_(-0.2, 0.2, generator=g)
    return module


def random_models(config_yaml: Path, bpe: Path, w2v_config: dict, bigvgan_config: dict, seed: int = 0,
                  bigvgan_channels: int | None = None):
    """IndexTTS2Models at the sizes of the configs, seeded random weights, float32 on the CPU."""
    from transformers import Wav2Vec2BertConfig, Wav2Vec2BertModel

    from indextts2_core.audio import W2VFeatureConfig
    from indextts2_core.config import BigVGANConfig, IndexTTS2Config
    from indextts2_core.emotion import EmotionMatrices
    from indextts2_core.gpt import UnifiedVoice
    from indextts2_core.pipeline import IndexTTS2Models
    from indextts2_core.s2mel import S2Mel
    from indextts2_core.semantic.codec import SemanticCodec
    from indextts2_core.semantic.w2v_bert import SemanticEncoder, truncated_config
    from indextts2_core.speaker.campplus import CAMPPlus
    from indextts2_core.text import TextTokenizer
    from indextts2_core.vocoder.bigvgan import BigVGAN

    cfg = IndexTTS2Config.from_yaml(config_yaml)
    full = Wav2Vec2BertConfig.from_dict(dict(w2v_config))
    hidden = full.hidden_size
    with torch.device("meta"):  # w2v-BERT and the GPT hold no buffers: built empty, then filled
        w2v, gpt = Wav2Vec2BertModel(truncated_config(full)), UnifiedVoice(cfg.gpt)
    semantic = SemanticEncoder(_init_(w2v.to_empty(device="cpu"), seed), torch.zeros(hidden), torch.ones(hidden),
                               full.num_hidden_layers)
    voc = dict(bigvgan_config)
    if bigvgan_channels:
        voc["upsample_initial_channel"] = bigvgan_channels
    n = sum(cfg.emo_num)
    g = torch.Generator().manual_seed(seed)
    gpt = _init_(gpt.to_empty(device="cpu"), seed + 1)
    with torch.no_grad():  # a random GPT should not stop at once: its stop logit is lowered
        gpt.mel_head.bias[cfg.gpt.stop_mel_token] -= 5.0
    return IndexTTS2Models(
        config=cfg, tokenizer=TextTokenizer(bpe), semantic=semantic.eval(),
        codec=_init_(SemanticCodec(cfg.semantic_codec), seed + 2).eval(), campplus=_init_(CAMPPlus(), seed + 3).eval(),
        gpt=gpt.eval(), s2mel=_init_(S2Mel(cfg.s2mel), seed + 4).eval(),
        vocoder=_init_(BigVGAN(BigVGANConfig.from_dict(voc)), seed + 5).eval(),
        emotion=EmotionMatrices(torch.randn(n, cfg.s2mel.style_dim, generator=g),
                                0.5 * torch.randn(n, cfg.gpt.model_dim, generator=g), cfg.emo_num),
        w2v_features=W2VFeatureConfig())


def moved(models, device: torch.device, copy_: bool = True):
    """The models on `device` (a copy: the CPU ones stay the reference)."""
    src = copy.deepcopy(models) if copy_ else models
    parts = {name: getattr(src, name).to(device) for name in ("semantic", "codec", "campplus", "gpt", "s2mel",
                                                                "vocoder", "emotion")}
    return dataclasses.replace(src, **parts)


def kit_models(shared: Path, kit: Path | None, device: torch.device):
    """(models on the CPU, what they are): the materialised kit if given, else kit sizes, random."""
    from indextts2_core.pipeline import load_models

    if kit is not None:
        return load_models(kit / "checkpoints", device="cpu", dtype="fp32"), f"e2e kit weights ({kit})"
    import shutil

    from tools.conformance.kit_files import repair_bpe_in_place

    static = shared / "parity" / "public-e2e" / "static"
    read = lambda p: json.loads((static / p).read_text())  # noqa: E731
    bpe = Path(tempfile.mkdtemp(prefix="gpu_check_bpe_")) / "bpe.model"
    shutil.copyfile(static / "bpe.model", bpe)
    repair_bpe_in_place(bpe)  # the kits' scrubbed TrainerSpec (kit tooling)
    return (random_models(static / "config.yaml", bpe, read("hf_cache/w2v-bert-2.0/config.json"),
                          read("hf_cache/bigvgan/config.json"), bigvgan_channels=64),
            "e2e kit sizes, seeded random weights")


def full_models(shared: Path, smoke: bool):
    if smoke:  # the small sizes: the kit's
        return kit_models(shared, None, torch.device("cpu"))[0], "e2e kit sizes (smoke)"
    w2v = json.loads((MANIFESTS / "w2v-bert-2.0.json").read_text())["config_json_values_used"]
    voc = json.loads((MANIFESTS / "bigvgan_generator.pt.json").read_text())["config_json"]
    off = shared / "official-data"
    return random_models(off / "config.yaml", off / "bpe.model", w2v, voc), "full size (official config), random"


def speech_like(seconds: float, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * RATE)) / RATE
    f0 = 140 + 30 * torch.sin(2 * torch.pi * 0.7 * t)
    x = sum(torch.sin(2 * torch.pi * k * torch.cumsum(f0, 0) / RATE) / k for k in range(1, 6))
    env = 0.5 + 0.5 * torch.sin(2 * torch.pi * 3 * t).abs()
    return (0.2 * x * env + 0.01 * torch.randn(t.shape, generator=g)).unsqueeze(0).float()


TEXTS = {1: "Hello there.", 5: "The quick brown fox jumps over the lazy dog, then rests in the warm sun.",
         20: " ".join(["The quick brown fox jumps over the lazy dog, then rests in the warm sun."] * 4)}


# ---- (a) correctness ------------------------------------------------------------------------------
def chain(models, speaker_audio, emotion_audio, text: str, tokens: int, noise_seed: int = 5, cache=None,
          steps: int = 25):
    """prepare -> greedy GPT -> S2M with CPU-drawn noise -> BigVGAN, per segment (the pipeline's own
    functions, as `stream` chains them, the noise made device-independent)."""
    from indextts2_core.gpt import DecodingSettings
    from indextts2_core.pipeline import generate_semantic, join_waveforms, prepare, synthesize_mel, vocode
    from indextts2_core.timing import mel_frames_for_content

    emotion = {} if emotion_audio is None else dict(emotion_audio=emotion_audio, emotion_rate=RATE)
    p = prepare(models, text, speaker_audio, RATE, target_tokens=tokens, seed=0, cache=cache, **emotion)
    greedy = DecodingSettings(do_sample=False, num_beams=1)
    sems, mels, waves = [], [], []
    g = torch.Generator().manual_seed(noise_seed)
    with torch.inference_mode():
        for ids, n, frames in zip(p.plan.text_ids, p.plan.tokens, p.plan.frames):
            sem = generate_semantic(models.gpt, p.speaker, p.emotion, ids, greedy, target_tokens=n,
                                    conditioning=p.conditioning)
            frames = frames if frames is not None else mel_frames_for_content(sem.codes.shape[-1])
            total = p.speaker.ref_mel.shape[-1] + frames
            mel = synthesize_mel(models.s2mel, models.codec, p.speaker, sem, target_frames=frames,
                                 noise=torch.randn(1, models.s2mel.mel_bins, total, generator=g),
                                 settings=_s2m(steps))
            sems.append(sem)
            mels.append(mel)
            waves.append(vocode(models.vocoder, mel).cpu())
    wave, _ = join_waveforms(waves, p.plan.silence_samples, p.plan.total_samples)
    return p, sems, mels, waves, wave


def correctness(rep: Report, cpu_models, dev_models, dev: torch.device, smoke: bool, cache=None):
    from indextts2_core.gpt import DecodingSettings
    from indextts2_core.gpt.generate import generate_codes, generate_codes_batch
    from indextts2_core.vocoder.bigvgan import vocode_chunked

    S = "a"
    spk, emo = speech_like(1.0 if smoke else 3.0), None if smoke else speech_like(2.0, seed=2)
    text = TEXTS[5]
    tokens = 8 if smoke else 60
    steps = 10 if smoke else 25
    pc, sc, mc, wc, whole_c = chain(cpu_models, spk, emo, text, tokens, cache=cache, steps=steps)
    pd, sd, md, wd, whole_d = chain(dev_models, spk, emo, text, tokens, cache=cache, steps=steps)
    for name in ("spk_cond_emb", "ref_mel", "style", "prompt_cond"):
        rep.drift(S, f"speaker {name}", getattr(pd.speaker, name), getattr(pc.speaker, name), TOL["features"])
    rep.drift(S, "GPT conditioning (conds)", pd.conditioning.conds, pc.conditioning.conds, TOL["conditioning"])
    rep.same(S, "greedy codes, every segment", [s.codes for s in sd], [s.codes for s in sc])
    for i, (a, b) in enumerate(zip(sd, sc)):
        rep.drift(S, f"GPT latent, segment {i}", a.latent, b.latent, TOL["latent"])
    for i, (a, b) in enumerate(zip(md, mc)):
        rep.drift(S, f"S2M mel (same noise), segment {i}", a, b, TOL["mel"])
    for i, (a, b) in enumerate(zip(wd, wc)):
        rep.drift(S, f"BigVGAN wave, segment {i}", a, b, TOL["wave"])
    rep.drift(S, "whole chain wave", whole_d, whole_c, TOL["wave"])

    conds, ids = pd.conditioning.conds, torch.as_tensor(pd.plan.text_ids[0])
    beam = DecodingSettings(do_sample=False, num_beams=3)
    with torch.inference_mode():
        a = generate_codes(dev_models.gpt, conds, ids, beam, target_tokens=tokens)
        b = generate_codes(cpu_models.gpt, pc.conditioning.conds, ids, beam, target_tokens=tokens)
    rep.same(S, "beam search (3) codes", [a.codes], [b.codes])

    greedy = DecodingSettings(do_sample=False, num_beams=1)
    modes = ["static"] + ([] if dev.type != "cuda" else ["cuda_graph"]) + \
        ([] if smoke else ["compile", "compile+cuda_graph"] if dev.type == "cuda" else ["compile"])
    with torch.inference_mode():
        ref = generate_codes(dev_models.gpt, conds, ids, greedy, target_tokens=tokens)
        for mode in modes:
            got = generate_codes(dev_models.gpt, conds, ids, dataclasses.replace(greedy, decode_step=mode),
                                 target_tokens=tokens)
            rep.same(S, f"decode_step={mode} vs eager (greedy)", [got.codes], [ref.codes])
        texts = [torch.as_tensor(t) for t in pd.plan.text_ids] * 2
        targets = [tokens, None, tokens // 2, None][:len(texts)]
        settings = DecodingSettings(max_mel_tokens=min(tokens + 8, dev_models.gpt.max_codes))
        gens = lambda: [torch.Generator(dev).manual_seed(i) for i in range(len(texts))]  # noqa: E731
        one = [generate_codes(dev_models.gpt, conds, t, settings, target_tokens=n, generator=g)
               for t, n, g in zip(texts, targets, gens())]
        bat = generate_codes_batch(dev_models.gpt, [conds] * len(texts), texts, settings, targets, gens())
    rep.same(S, f"batched decode ({len(texts)} requests, beam sampling) vs 1-by-1", [r.codes for r in bat],
             [r.codes for r in one])

    s2 = dev_models.s2mel
    g = torch.Generator().manual_seed(3)
    c_dim = s2.cfm.estimator.content_dim
    sizes = [(40, 30), (25, 60), (40, 9)]
    segs = [(torch.randn(1, p, c_dim, generator=g).to(dev), torch.randn(1, f, c_dim, generator=g).to(dev),
             torch.randn(1, 80, p, generator=g).to(dev), torch.randn(1, 192, generator=g).to(dev),
             torch.randn(1, 80, p + f, generator=g).to(dev)) for p, f in sizes]
    with torch.inference_mode():
        one = [s2.sample(*s[:4], steps=10, noise=s[4]) for s in segs]
        bat = s2.sample_batch(*[[s[i] for s in segs] for i in range(4)], steps=10, noises=[s[4] for s in segs])
    for i, (x, y) in enumerate(zip(bat, one)):
        rep.drift(S, f"S2M sample_batch vs 1-by-1, segment {i}", x, y, TOL["same_device_paths"])

    voc = dev_models.vocoder
    mel = torch.randn(1, 80, 100 if smoke else 150, generator=g).to(dev)
    chunk = 50 if smoke else 40
    with torch.inference_mode():
        whole = voc(mel)
        rep.drift(S, f"chunked vocoding (chunk {chunk}) vs whole", vocode_chunked(voc, mel, chunk), whole, TOL["seams"])
        if not smoke:
            try:
                rep.drift(S, "fused activations (compiled) vs reference", voc.fuse_activations(True)(mel), whole,
                          TOL["same_device_paths"])
            finally:
                voc.fuse_activations(False)


# ---- (b) half precision -----------------------------------------------------------------------------
def half_precision(rep: Report, base, dev: torch.device, smoke: bool, cache=None):
    from indextts2_core.gpt import DecodingSettings
    from indextts2_core.pipeline import generate_semantic, gpt_conditioning, prepare

    S = "b"
    p = prepare(base, TEXTS[5], speech_like(1.0 if smoke else 3.0), RATE, target_tokens=12 if smoke else 60, seed=0,
                cache=cache)
    greedy = DecodingSettings(do_sample=False, num_beams=1)
    ids, n = p.plan.text_ids[0], p.plan.tokens[0]
    with torch.inference_mode():
        ref = generate_semantic(base.gpt, p.speaker, p.emotion, ids, greedy, target_tokens=n)
    g = torch.Generator().manual_seed(4)
    c_dim = base.s2mel.cfm.estimator.content_dim
    s_in = (torch.randn(1, 40, c_dim, generator=g).to(dev), torch.randn(1, 60, c_dim, generator=g).to(dev),
            torch.randn(1, 80, 40, generator=g).to(dev), torch.randn(1, 192, generator=g).to(dev))
    noise = torch.randn(1, 80, 100, generator=g).to(dev)
    mel = torch.randn(1, 80, 8 if smoke else 60, generator=g).to(dev)
    with torch.inference_mode():
        mel_ref = base.s2mel.sample(*s_in, noise=noise, steps=10 if smoke else 25)
        wave_ref = base.vocoder(mel)
    for dt in ((torch.bfloat16,) if smoke else (torch.float16, torch.bfloat16)):
        name = str(dt).replace("torch.", "")
        gpt = copy.deepcopy(base.gpt).to(dt)
        with torch.inference_mode():
            got = generate_semantic(gpt, p.speaker, p.emotion, ids, greedy, target_tokens=n,
                                    conditioning=gpt_conditioning(gpt, p.speaker, p.emotion))
        a, b = got.codes[0].cpu(), ref.codes[0].cpu()
        differ = (a != b).nonzero()
        first = int(differ[0]) if differ.numel() else a.numel()
        rep.add(S, f"GPT {name}: greedy codes equal to fp32 before the first difference", first,
                f"of {a.numel()}")
        rep.drift(S, f"GPT {name}: latent drift (own codes)", got.latent, ref.latent) if first == a.numel() else None
        s2 = copy.deepcopy(base.s2mel)
        s2.cfm.to(dt)
        with torch.inference_mode():
            rep.drift(S, f"S2M estimator {name}: mel drift", s2.sample(*s_in, noise=noise, steps=10 if smoke else 25),
                      mel_ref)
            rep.drift(S, f"BigVGAN {name}: wave drift", copy.deepcopy(base.vocoder).to(dt)(mel), wave_ref)


# ---- (c) speed ------------------------------------------------------------------------------------
def speed(rep: Report, m, dev: torch.device, smoke: bool):
    from indextts2_core.gpt import DecodingSettings
    from indextts2_core.gpt.generate import KVCache, generate_codes, generate_codes_batch, prefill
    from indextts2_core.pipeline import (emotion_from_audio, encode_speaker, gpt_conditioning, synthesize,
                                         vocode)
    from indextts2_core.prompt_cache import FeatureCache
    from indextts2_core.vocoder.bigvgan import vocode_chunked

    S = "c"
    spk, emo = speech_like(1.0 if smoke else 10.0), speech_like(1.0 if smoke else 5.0, seed=2)
    kw = dict(mel_config=m.config.s2mel.mel, w2v_features=m.w2v_features)
    with torch.inference_mode():
        speaker, t, peak = rep.timed(lambda: encode_speaker(m.semantic, m.codec, m.campplus, m.s2mel, spk, RATE, **kw))
        rep.add(S, f"speaker features ({spk.shape[-1] / RATE:.0f} s prompt)", t * 1000, "ms", note=_mib(peak))
        emotion, t, peak = rep.timed(lambda: emotion_from_audio(m.semantic, emo, RATE, 1.0, w2v_features=m.w2v_features))
        rep.add(S, f"emotion features ({emo.shape[-1] / RATE:.0f} s prompt)", t * 1000, "ms", note=_mib(peak))
        cond, t, peak = rep.timed(lambda: gpt_conditioning(m.gpt, speaker, emotion), repeat=2)
        rep.add(S, "GPT conditioning", t * 1000, "ms", note=_mib(peak))
        conds = cond.conds
        ids = torch.randint(2, m.config.gpt.number_text_tokens, (40 if smoke else 100,),
                            generator=torch.Generator().manual_seed(0))
        prompt = m.gpt.prompt_embeds(conds, ids)
        _, t, peak = rep.timed(lambda: prefill(m.gpt, prompt, KVCache.for_model(m.gpt, 1, prompt.size(1) + 1)),
                               repeat=2)
        rep.add(S, f"GPT prefill ({prompt.size(1)} rows)", t * 1000, "ms", note=_mib(peak))

        n = 8 if smoke else 100
        modes = ["eager"] + (["cuda_graph", "compile+cuda_graph"] if dev.type == "cuda" else [])
        for method, base in (("greedy", DecodingSettings(do_sample=False, num_beams=1)),
                             ("3-beam sampling", DecodingSettings())):
            for mode in modes:
                s = dataclasses.replace(base, decode_step=mode)
                generate_codes(m.gpt, conds, ids, s, target_tokens=4)  # warm-up (graph capture, compilation)
                per, peak = _ms_per_token(rep, m.gpt, conds, ids, s, n, dev)
                rep.add(S, f"GPT {method}, decode_step={mode}", per, "ms/token", note=_mib(peak))
        for batch in (1, 4) if smoke else (1, 4, 16):
            s = DecodingSettings(do_sample=False, num_beams=1)
            _, t, peak = rep.timed(lambda: generate_codes_batch(m.gpt, [conds] * batch, [ids] * batch, s, [n] * batch))
            rep.add(S, f"GPT greedy batched x{batch} (eager, prefill included)", t * 1000 / (n * batch),
                    "ms/token", note=_mib(peak))

        frames = int(round((1.0 if smoke else 5.0) * RATE / 256))
        c_dim = m.s2mel.cfm.estimator.content_dim
        g = torch.Generator().manual_seed(1)
        cond_t = torch.randn(1, frames, c_dim, generator=g).to(dev)
        args = (speaker.prompt_cond, cond_t, speaker.ref_mel, speaker.style)
        steps = 10 if smoke else 25
        mel, t, peak = rep.timed(lambda: m.s2mel.sample(*args, steps=steps))
        secs = frames * 256 / RATE
        rep.add(S, f"S2M ({steps} steps, CFG batch of 2)", t / secs, "s per s", note=_mib(peak))
        _, t4, peak = rep.timed(lambda: m.s2mel.sample_batch(*[[a] * 4 for a in args], steps=steps))
        rep.add(S, "S2M batch of 4 segments", t4 / (4 * secs), "s per s", note=f"x{4 * t / t4:.2f} vs 1-by-1; " + _mib(peak))
        _, t, peak = rep.timed(lambda: vocode(m.vocoder, mel))
        rep.add(S, "BigVGAN", t / secs, "s per s", note=_mib(peak))
        long_mel = torch.randn(1, 80, 40 if smoke else frames * 4, generator=g).to(dev)
        _, tw, peak_w = rep.timed(lambda: m.vocoder(long_mel))
        chunk = 24 if smoke else 512
        _, tc, peak_c = rep.timed(lambda: vocode_chunked(m.vocoder, long_mel, chunk))
        rep.add(S, f"BigVGAN whole, {long_mel.shape[-1] * 256 / RATE:.1f} s", tw, "s", note=_mib(peak_w))
        rep.add(S, f"BigVGAN chunked ({chunk} frames + {m.vocoder.receptive_field_frames()} each side)", tc, "s",
                note=_mib(peak_c))

    fastest = dataclasses.replace(DecodingSettings(), decode_step=modes[-1])
    if smoke:  # greedy, short: the calls only have to run
        fastest = DecodingSettings(do_sample=False, num_beams=1)
    for seconds in ((0.4,) if smoke else (1, 5, 20)):
        if rep.left() < (0 if smoke else 60):
            rep.add(S, f"RTF {seconds} s text", None, "", None, "skipped: time budget")
            continue
        res, t, peak = rep.timed(lambda: synthesize(m, TEXTS[max(1, int(seconds))], spk, RATE, decoding=fastest,
                                                    seconds=seconds,
                                                    seed=0, **({"s2m": _s2m(10)} if smoke else {})))
        audio = res.waveform.shape[-1] / RATE
        rep.add(S, f"RTF {seconds} s text ({'greedy' if smoke else '3-beam sampling'}, {modes[-1]})", t / audio, "RTF",
                note=f"{audio:.2f} s audio; " + _mib(peak))
    cache = FeatureCache()
    for label in ("first call", "cached prompt"):
        _, t, _ = rep.timed(lambda: synthesize(m, TEXTS[1], spk, RATE, decoding=fastest, seconds=0.4 if smoke else 1,
                                               seed=0,
                                               cache=cache, **({"s2m": _s2m(10)} if smoke else {})))
        rep.add(S, f"{0.4 if smoke else 1} s text, {label}", t, "s")


# ---- (d) VRAM with stage offloading ---------------------------------------------------------------
VRAM_BUDGET_GIB = 8.0


def staged_vram(rep: Report, m, dev: torch.device, smoke: bool):
    """Each stage with only its modules on `dev` (what nodes/model.py asks ComfyUI to load for it),
    then back to the CPU: peak memory per stage, GPT in fp16 (the loader's auto precision)."""
    from indextts2_core.gpt import DecodingSettings
    from indextts2_core.pipeline import (emotion_from_audio, encode_speaker, generate_semantic, synthesize_mel,
                                         vocode)
    from indextts2_core.timing import mel_frames_for_content

    S = "d"
    cuda = dev.type == "cuda"
    spk, emo = speech_like(1.0 if smoke else 15.0), speech_like(1.0 if smoke else 15.0, seed=2)
    tokens = 8 if smoke else 1000  # 20 s of speech in one segment: the largest KV cache
    ids = torch.randint(2, m.config.gpt.number_text_tokens, (20 if smoke else 120,),
                        generator=torch.Generator().manual_seed(0)).tolist()
    gpt = copy.deepcopy(m.gpt).to(torch.float16) if cuda else m.gpt  # the CPU set stays fp32 for (c)
    kw = dict(mel_config=m.config.s2mel.mel, w2v_features=m.w2v_features)
    state = {}

    def stage(key: str, label: str, names: tuple, fn):
        """`names`: module attributes of `m`, or a module itself (the fp16 GPT copy)."""
        modules = [getattr(m, n) if isinstance(n, str) else n for n in names]
        names = tuple(n if isinstance(n, str) else "gpt" for n in names)
        for mod in modules:
            mod.to(dev)
        if cuda:
            torch.cuda.synchronize(dev)
            torch.cuda.reset_peak_memory_stats(dev)
        start = time.perf_counter()
        with torch.inference_mode():
            state[key] = fn()
        sync(dev)
        took = time.perf_counter() - start
        peak = (torch.cuda.max_memory_allocated(dev) / 2**30, torch.cuda.max_memory_reserved(dev) / 2**30) if cuda \
            else None
        for mod in modules:
            mod.to("cpu")
        if cuda:
            torch.cuda.empty_cache()
        note = f"{took:.1f} s" + (f"; reserved {peak[1]:.2f} GiB" if peak else "")
        rep.add(S, f"{label} ({' + '.join(names)})", None if peak is None else peak[0], "GiB" if peak else "", note=note)
        return peak

    secs, steps, gpt_dtype = spk.shape[-1] / RATE, 4 if smoke else 25, "fp16" if cuda else "fp32"
    peaks = [
        stage("speaker", f"speaker prompt, {secs:.0f} s", ("semantic", "codec", "campplus", "s2mel"),
              lambda: encode_speaker(m.semantic, m.codec, m.campplus, m.s2mel, spk, RATE, **kw).to(dev)),
        stage("emotion", f"emotion from audio, {secs:.0f} s", ("semantic",),
              lambda: emotion_from_audio(m.semantic, emo, RATE, 1.0, w2v_features=m.w2v_features).to(dev)),
        stage("codes", f"GPT {gpt_dtype}, 3-beam sampling, {tokens} codes", (gpt,),
              lambda: generate_semantic(gpt, state["speaker"], state["emotion"], ids, DecodingSettings(),
                                        target_tokens=tokens, generator=torch.Generator(dev).manual_seed(0))),
    ]
    frames = mel_frames_for_content(state["codes"].codes.shape[-1])
    peaks.append(stage("mel", f"S2M, {frames} frames, {steps} steps", ("s2mel", "codec"),
                       lambda: synthesize_mel(m.s2mel, m.codec, state["speaker"], state["codes"], target_frames=frames,
                                              settings=_s2m(steps))))
    peaks.append(stage("wave", "BigVGAN", ("vocoder",), lambda: vocode(m.vocoder, state["mel"])))
    if cuda:
        worst = max(p[0] for p in peaks)
        rep.add(S, "largest stage (allocated)", worst, "GiB", ok=worst <= VRAM_BUDGET_GIB,
                note=f"fits {VRAM_BUDGET_GIB:.0f} GiB" if worst <= VRAM_BUDGET_GIB else f"over {VRAM_BUDGET_GIB:.0f} GiB")


def _s2m(steps: int):
    from indextts2_core.pipeline import S2MSettings

    return S2MSettings(steps=steps)


def _ms_per_token(rep: Report, gpt, conds, ids, settings, n: int, dev):
    from indextts2_core.gpt.generate import generate_codes

    stamps = []

    def progress(i, total):
        sync(dev)
        stamps.append(time.perf_counter())

    _, _, peak = rep.timed(lambda: generate_codes(gpt, conds, ids, settings, target_tokens=n, progress=progress,
                                                  generator=torch.Generator(dev).manual_seed(0)))
    return (stamps[-1] - stamps[0]) / max(1, len(stamps) - 1) * 1000, peak


def _mib(peak) -> str:
    return "" if peak is None else f"peak {peak:.0f} MiB"


# ---- main -----------------------------------------------------------------------------------------
def materialize_kit(shared: Path, where: Path) -> Path:
    from tools.conformance.kit_files import materialize_copy

    return materialize_copy(shared / "parity" / "public-e2e", where)


def main(argv=None) -> int:
    from indextts2_core.prompt_cache import FeatureCache

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu-smoke", action="store_true", help="CPU, small sizes, short runs (CI)")
    ap.add_argument("--device", default=None, help="default: cuda when available (cpu with --cpu-smoke)")
    ap.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    ap.add_argument("--kit", type=Path, default=None, help="a materialised public-e2e kit (default: materialise "
                    "one into a temporary folder on CUDA; seeded random weights at its sizes with --cpu-smoke)")
    ap.add_argument("--sections", default="a,b,c,d", help="which parts to run; they run in the order a, b, d, c")
    ap.add_argument("--budget-s", type=float, default=None, help="time budget: what would start after it is "
                    "skipped (default 450 s; 300 s with --cpu-smoke, which takes ~1 min on 2 idle cores)")
    ap.add_argument("--out", type=Path, default=Path("gpu_check.json"))
    args = ap.parse_args(argv)
    smoke = args.cpu_smoke
    dev = torch.device(args.device or ("cpu" if smoke or not torch.cuda.is_available() else "cuda"))
    rep = Report(dev, args.budget_s or (300.0 if smoke else 450.0))
    if smoke and torch.get_num_threads() > 2:
        torch.set_num_threads(2)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine()
    print(f"gpu_check on {dev} ({name}); torch {torch.__version__}; budget {rep.budget_s:.0f} s; "
          f"{'CPU smoke sizes' if smoke else 'full run'}", flush=True)
    sections = set(args.sections.split(","))
    tmp = tempfile.TemporaryDirectory(prefix="gpu_check_")
    try:
        kit = args.kit
        if kit is None and not smoke and "a" in sections and (args.shared / "parity" / "public-e2e").is_dir():
            kit = materialize_kit(args.shared, Path(tmp.name))
        kit_cpu, what = kit_models(args.shared, kit, dev)
        rep.add("-", "kit networks", what)
        # off CUDA (the smoke run) the "device" networks are the CPU ones and one feature cache
        # spares the repeated w2v-BERT passes: the comparisons only keep the code alive there
        kit_dev = kit_cpu if dev.type == "cpu" else moved(kit_cpu, dev)
        cache = FeatureCache() if dev.type == "cpu" else None
        if dev.type == "cuda":  # (a) compares float32 with float32
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        if "a" in sections:
            rep.run("a", lambda: correctness(rep, kit_cpu, kit_dev, dev, smoke, cache), need_s=20)
        if "b" in sections:
            rep.run("b", lambda: half_precision(rep, kit_dev, dev, smoke, cache), need_s=10)
        torch.backends.cuda.matmul.allow_tf32 = False  # torch's default
        torch.backends.cudnn.allow_tf32 = True  # torch's default
        if not smoke:
            del kit_dev
        full = {}

        def cpu_models():  # full-size networks, built once for (c) and (d)
            if "m" not in full:
                full["m"], full["what"] = (kit_cpu, "e2e kit sizes (smoke)") if smoke else full_models(args.shared, smoke)
            return full["m"]

        if "d" in sections:
            rep.run("d", lambda: staged_vram(rep, cpu_models() if not smoke else copy.deepcopy(kit_cpu), dev, smoke),
                    need_s=60 if not smoke else 5)
        if "c" in sections:
            def run_speed():
                models = kit_dev if smoke else moved(cpu_models(), dev)  # the small sizes: the networks built above
                rep.add("c", "networks", full.get("what", "e2e kit sizes (smoke)"))
                speed(rep, models, dev, smoke)
                if not smoke:
                    del models
                    if dev.type == "cuda":
                        torch.cuda.empty_cache()
            rep.run("c", run_speed, need_s=10)
    finally:
        tmp.cleanup()
    elapsed = time.perf_counter() - rep.t0
    failed = [r for r in rep.rows if r["ok"] is False]
    summary = dict(device=str(dev), device_name=name, torch=torch.__version__, smoke=smoke, seconds=elapsed,
                   failed=len(failed), tolerances=TOL, rows=rep.rows)
    args.out.write_text(json.dumps(summary, indent=1, default=str))
    print(f"\n{'section':<8}{'item':<62}{'value':>12}  {'unit':<10}{'':<5}note")
    for r in rep.rows:
        v = r["value"]
        val = f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v))
        mark = {True: "ok", False: "FAIL", None: ""}[r["ok"]]
        print(f"{r['section']:<8}{r['item'][:61]:<62}{val:>12}  {r['unit']:<10}{mark:<5}{r['note']}")
    print(f"\n{len(rep.rows)} rows, {len(failed)} failed, {elapsed:.0f} s; JSON: {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
