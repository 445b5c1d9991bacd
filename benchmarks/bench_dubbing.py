"""Timeline dubbing, batched against one line at a time, on the public e2e kit's models.

A 20-cue, two-voice SRT (each cue its own text and slot) is dubbed twice: `batch_size=1` (every
line through the GPT and S2M alone) and `batch_size=N` (lines decoded and synthesised together).
Prints the wall time of each, per line, the speed-up, whether every line got the same tokens and
frames (it must: each segment draws from its own generator) and the largest sample difference of
the two tracks (float rounding of batched kernels only). The kit's networks are small and
random, so the figures measure the engine and the batching, not a full-size model; on a GPU the
same command with `--device cuda` measures the batched kernels.

    python -m benchmarks.bench_dubbing [--kit MATERIALISED_KIT] [--cues 20] [--batch 8] [--device cpu]

`--kit` may be an IndexTTS-2.5 e2e kit too.

Without `--kit`, the public e2e kit ($INDEXTTS2_SHARED or ../shared) is materialised into a
temporary folder first (about 850 MB, seconds).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from indextts2_core import pipeline as pl
from indextts2_core.audio import load_audio
from indextts2_core.dubbing import DubSettings, FitSettings, dub, parse_script, voice_set
from indextts2_core.gpt import DecodingSettings
from tools.conformance.kit_files import materialize_copy

ROOT = Path(__file__).resolve().parents[1]
LINES = ["The robots sang.", "Then they danced all night.", "Where did they go?", "Out to the river, of course.",
         "Then they slept.", "Good night.", "The sun came up again.", "They woke and sang.", "Again?",
         "Again, and again, and again."]


def materialise(tmp: Path) -> Path:
    shared = Path(os.environ.get("INDEXTTS2_SHARED", ROOT.parent / "shared"))
    if not (shared / "parity" / "public-e2e").is_dir():
        sys.exit(f"error: {shared / 'parity' / 'public-e2e'} not found: pass --kit or set INDEXTTS2_SHARED")
    return materialize_copy(shared / "parity" / "public-e2e", tmp)


def srt(cues: int) -> str:
    rows, t = [], 0.3
    for i in range(cues):
        text = LINES[i % len(LINES)]
        length = 0.5 + 0.06 * len(text.split()) + 0.1 * (i % 3)
        a, b = round(t * 1000), round((t + length) * 1000)
        rows.append(f"{i + 1}\n00:{a // 60000:02d}:{a // 1000 % 60:02d},{a % 1000:03d} --> "
                    f"00:{b // 60000:02d}:{b // 1000 % 60:02d},{b % 1000:03d}\n[{'Alice' if i % 2 == 0 else 'Bob'}] {text}\n")
        t += length + 0.2
    return "\n".join(rows)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kit", type=Path, help="a materialised e2e kit (its checkpoints/ folder is used)")
    ap.add_argument("--cues", type=int, default=20)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=10, help="S2M flow-matching steps")
    ap.add_argument("--max-tokens", type=int, default=40, help="GPT token cap per segment (natural runs)")
    args = ap.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as tmp:
        kit = args.kit or materialise(Path(tmp))
        models = pl.load_models(kit / "checkpoints", device=args.device, dtype="fp32")
        voices = []
        for name, wav in (("Alice", "spk_prompt_22k.wav"), ("Bob", "emo_prompt_16k.wav")):
            audio, rate = load_audio(kit / "inputs" / wav)
            spk = pl.encode_speaker(models.semantic, models.codec, models.campplus, models.s2mel, audio, rate,
                                    mel_config=models.config.s2mel.mel, w2v_features=models.w2v_features)
            voices.append((name, spk, (audio, rate)))
        voices = voice_set(voices, default="Alice")
        script = parse_script(srt(args.cues))
        decoding = DecodingSettings(do_sample=True, top_k=1, num_beams=1, repetition_penalty=10.0,
                                    max_mel_tokens=args.max_tokens)
        base = DubSettings(fit=FitSettings(bounds=(0.1, 10.0), overflow="squeeze"), decoding=decoding,
                           s2m=pl.S2MSettings(steps=args.steps), seed=3)
        results = {}
        for batch in (1, args.batch):
            settings = DubSettings(**{**base.__dict__, "batch_size": batch})
            start = time.perf_counter()
            results[batch] = dub(models, script, voices, settings)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            results[batch] = (results[batch], time.perf_counter() - start)
    (one, t1), (many, tn) = results[1], results[args.batch]
    speech = one.waveform.shape[-1] / one.sample_rate
    print(f"{len(script.cues)} cues, {speech:.2f} s track, device {args.device}, S2M {args.steps} steps")
    print(f"one line at a time : {t1:7.2f} s  ({t1 / len(script.cues) * 1000:6.0f} ms per line)")
    print(f"batches of {args.batch:<8d}: {tn:7.2f} s  ({tn / len(script.cues) * 1000:6.0f} ms per line)")
    print(f"speed-up           : {t1 / tn:7.2f}x")
    same = [(a.tokens, a.frames) for a in one.cues] == [(b.tokens, b.frames) for b in many.cues]
    print(f"same tokens/frames : {same}")
    print(f"max |track diff|   : {(one.waveform - many.waveform).abs().max().item():.2e}")


if __name__ == "__main__":
    main()
