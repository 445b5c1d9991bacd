"""Per-stage wall times of one `pipeline.synthesize` run.

    python -m benchmarks.bench_pipeline                  # from the checkout: full-size networks, random weights
    python -m benchmarks.bench_pipeline --models DIR     # real (or kit) model files, either layout

Without --models the networks are built at the real sizes from the official config.yaml (GPT 871 M
parameters, w2v-BERT cut to 17 layers, S2M, BigVGAN v2, CAMPPlus, codec) with random weights; no
model files are needed, only config.yaml and bpe.model (default: ../shared/official-data). A random
GPT never stops on its own, so the length is fixed with --tokens (codes for the whole text).
"""

from __future__ import annotations

import argparse
import os
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("INDEXTTS2_SHARED", ROOT.parent / "shared"))
OFFICIAL = SHARED / "official-data"
MANIFESTS = ROOT / "tests" / "data" / "manifests"


def random_models(config: Path, bpe: Path, device: torch.device, dtype: torch.dtype):
    """IndexTTS2Models at the sizes of `config` (+ the published w2v-BERT / BigVGAN configs), random weights."""
    from transformers import Wav2Vec2BertConfig, Wav2Vec2BertModel

    from indextts2_core.audio import W2VFeatureConfig
    from indextts2_core.config import BigVGANConfig, IndexTTS2Config
    from indextts2_core.emotion import EmotionMatrices
    from indextts2_core.gpt import UnifiedVoice
    from indextts2_core.text import TextTokenizer
    from indextts2_core.pipeline import IndexTTS2Models
    from indextts2_core.prompt_cache import FeatureCache
    from indextts2_core.s2mel import S2Mel
    from indextts2_core.semantic.codec import SemanticCodec
    from indextts2_core.semantic.w2v_bert import SemanticEncoder, truncated_config
    from indextts2_core.speaker.campplus import CAMPPlus
    from indextts2_core.vocoder.bigvgan import BigVGAN

    cfg = IndexTTS2Config.from_yaml(config)
    torch.manual_seed(0)
    w2v_cfg = json.loads((MANIFESTS / "w2v-bert-2.0.json").read_text())["config_json_values_used"]
    full = Wav2Vec2BertConfig.from_dict(dict(w2v_cfg))
    hidden = full.hidden_size
    semantic = SemanticEncoder(Wav2Vec2BertModel(truncated_config(full)), torch.zeros(hidden), torch.ones(hidden),
                               full.num_hidden_layers)
    voc_cfg = json.loads((MANIFESTS / "bigvgan_generator.pt.json").read_text())["config_json"]
    n = sum(cfg.emo_num)
    fp32 = dict(device=device, dtype=torch.float32)
    return IndexTTS2Models(
        config=cfg, tokenizer=TextTokenizer(bpe), semantic=semantic.to(**fp32).eval(),
        codec=SemanticCodec(cfg.semantic_codec).to(**fp32).eval(), campplus=CAMPPlus().to(**fp32).eval(),
        gpt=UnifiedVoice(cfg.gpt).to(device=device, dtype=dtype).eval(), s2mel=S2Mel(cfg.s2mel).to(**fp32).eval(),
        vocoder=BigVGAN(BigVGANConfig.from_dict(voc_cfg)).to(**fp32).eval(),
        emotion=EmotionMatrices(torch.randn(n, cfg.s2mel.style_dim), 0.5 * torch.randn(n, cfg.gpt.model_dim),
                                cfg.emo_num).to(device),
        device=device, dtype=dtype, w2v_features=W2VFeatureConfig(), cache=FeatureCache(4))


def speech_like(seconds: float, rate: int = 22050) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    t = torch.arange(int(seconds * rate)) / rate
    f0 = 140 + 30 * torch.sin(2 * torch.pi * 0.7 * t)
    x = sum(torch.sin(2 * torch.pi * k * torch.cumsum(f0, 0) / rate) / k for k in range(1, 6))
    env = 0.5 + 0.5 * torch.sin(2 * torch.pi * 3 * t).abs()
    return (0.2 * x * env + 0.01 * torch.randn(t.shape, generator=g)).unsqueeze(0).float()


def main(argv=None) -> int:
    from indextts2_core.gpt import DecodingSettings
    from indextts2_core.pipeline import load_models, resolve_device, resolve_dtype, synthesize

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, help="model folder (default: random full-size networks)")
    ap.add_argument("--config", type=Path, default=OFFICIAL / "config.yaml")
    ap.add_argument("--bpe", type=Path, default=OFFICIAL / "bpe.model")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="fp32", help="GPT precision")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--speaker-seconds", type=float, default=5.0)
    ap.add_argument("--text", default="The quick brown fox jumps over the lazy dog, and then it rests in the sun.")
    ap.add_argument("--tokens", type=int, default=100, help="codes for the whole text (2 s of speech at 50 per second)")
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--beams", type=int, default=3)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device, dtype = resolve_device(args.device), resolve_dtype(args.dtype)

    t0 = time.perf_counter()
    if args.models:
        models = load_models(args.models, device, dtype)
        what = f"model files in {args.models}"
    else:
        models = random_models(args.config, args.bpe, device, dtype)
        what = "full-size networks, random weights"
    load_s = time.perf_counter() - t0
    params = {k: sum(p.numel() for p in getattr(models, k).parameters()) / 1e6
              for k in ("semantic", "codec", "campplus", "gpt", "s2mel", "vocoder")}
    speaker = speech_like(args.speaker_seconds)
    settings = DecodingSettings(num_beams=args.beams)
    t0 = time.perf_counter()
    with torch.inference_mode():
        result = synthesize(models, args.text, speaker, 22050, target_tokens=args.tokens, settings=settings,
                            cfm_steps=args.steps, seed=0)
    total = time.perf_counter() - t0
    audio_s = result.waveform.shape[-1] / result.sample_rate

    print(f"IndexTTS2 pipeline, {what}; device {device}, GPT {dtype}, {torch.get_num_threads()} CPU threads")
    print("parameters (M): " + ", ".join(f"{k} {v:.1f}" for k, v in params.items()))
    print(f"speaker prompt {args.speaker_seconds:g} s, {len(result.segments)} segment(s), {args.tokens} codes, "
          f"{args.beams} beams, {args.steps} CFM steps -> {audio_s:.2f} s of audio")
    print(f"{'stage':<18}{'seconds':>9}")
    print(f"{'build / load':<18}{load_s:>9.2f}")
    for name, secs in result.seconds.items():
        print(f"{name:<18}{secs:>9.2f}")
    print(f"{'synthesize total':<18}{total:>9.2f}   (real-time factor {total / audio_s:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
