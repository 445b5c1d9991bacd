"""pipeline.synthesize and friends on the public e2e kit's random-weight models (loaded once per session): durations,
segments and silences, caching, determinism, emotion modes, precision, and the refusals."""

from __future__ import annotations

import copy
import dataclasses
import sys

import pytest
import torch

from e2e_fixtures import e2e_audio, e2e_kit, e2e_models  # noqa: F401  (fixtures)
from indextts2_core import pipeline as pl
from indextts2_core.gpt import DecodingSettings

FAST = DecodingSettings(do_sample=False, num_beams=1, repetition_penalty=1.0, max_mel_tokens=12)
TEXT = "The robots sang. Then they danced, and then they slept."
KIT_TEXT = "The 3 little robots sang 27 songs today."


@pytest.fixture(scope="module")
def speaker(e2e_audio):  # noqa: F811
    (wav, sr), _ = e2e_audio
    return wav[:, : int(0.6 * sr)], sr  # short prompt: cheap w2v-BERT


def run(models, speaker, **kw):
    wav, sr = speaker
    kw.setdefault("decoding", FAST)
    kw.setdefault("s2m", pl.S2MSettings(steps=2))
    return pl.synthesize(models, kw.pop("text", TEXT), wav, sr, **kw)


def test_seconds_are_the_whole_output_silences_included(e2e_models, speaker):  # noqa: F811
    r = run(e2e_models, speaker, seconds=3.0, max_text_tokens_per_segment=8, interval_silence_ms=350, seed=3)
    n, gap = len(r.segments), int(22050 * 0.35)
    assert n >= 3
    assert r.waveform.shape == (1, 66150)  # 3.0 s exactly, the four 350 ms silences included
    assert sum(s.num_samples for s in r.segments) == 66150 - (n - 1) * gap
    for a, b in zip(r.segments, r.segments[1:]):
        assert b.start_sample == a.start_sample + a.num_samples + gap
        assert torch.all(r.waveform[0, a.start_sample + a.num_samples: b.start_sample] == 0)
        assert a.mel_frames * 256 >= a.num_samples > (a.mel_frames - 1) * 256  # S2M length, then the cut
    assert r.segments[0].start_sample == 0 and r.waveform.abs().max() <= 1


def test_target_tokens_are_for_the_whole_text(e2e_models, speaker):  # noqa: F811
    r = run(e2e_models, speaker, text="The robots sang today.", target_tokens=7, seed=0)
    (seg,) = r.segments
    assert seg.codes.shape == (1, 7) and seg.mel_frames == int(7 * 1.72)
    assert r.waveform.shape[-1] == int(7 * 1.72) * 256
    r = run(e2e_models, speaker, target_tokens=40, max_text_tokens_per_segment=8, seed=0)
    codes = [s.codes.shape[-1] for s in r.segments]
    lengths = [len(s.text_ids) for s in r.segments]
    assert sum(codes) == 40 and len(codes) >= 3
    assert all(abs(c - 40 * n / sum(lengths)) < 1 for c, n in zip(codes, lengths))  # shared by text tokens
    assert r.waveform.shape[-1] == sum(int(c * 1.72) * 256 for c in codes) + (len(codes) - 1) * 4410


def test_natural_mode_caches_the_speaker_on_the_cpu(e2e_models, e2e_audio):  # noqa: F811
    from indextts2_core.prompt_cache import FeatureCache

    full_prompt = e2e_audio[0]  # with the kit's whole prompt the random GPT speaks before stopping
    cache = FeatureCache()
    a = run(e2e_models, full_prompt, text=KIT_TEXT, seed=11, cache=cache)
    hits = cache.hits
    b = run(e2e_models, full_prompt, text=KIT_TEXT, seed=11, cache=cache)
    assert cache.hits == hits + 1  # the speaker prompt was not encoded again
    stored = [v for v, _ in cache._items.values()]
    assert stored and all(not t.requires_grad and t.device.type == "cpu"
                          for v in stored for t in ([v] if isinstance(v, torch.Tensor) else
                                                    [getattr(v, f.name) for f in dataclasses.fields(v)])
                          if isinstance(t, torch.Tensor))
    assert torch.equal(a.waveform, b.waveform)
    (seg,) = a.segments
    assert seg.codes.shape[-1] == 12 and not seg.stopped  # capped by max_mel_tokens
    assert a.waveform.shape[-1] == int(12 * 1.72) * 256


def test_sampling_follows_the_seed(e2e_models, speaker):  # noqa: F811
    sampling = DecodingSettings(num_beams=1, top_k=0, top_p=1.0, temperature=1.5, repetition_penalty=1.0)
    codes = [run(e2e_models, speaker, text="The robots sang.", decoding=sampling, target_tokens=8, seed=s)
             .segments[0].codes for s in (1, 1, 2)]
    assert torch.equal(codes[0], codes[1]) and not torch.equal(codes[0], codes[2])


def test_segment_without_codes_is_left_out(e2e_models, speaker, monkeypatch):  # noqa: F811
    chain = sys.modules["indextts2_core.pipeline.synthesize"]  # the module (the package exports the function)

    real = chain.generate_semantic

    def first_segment_silent(*a, **k):
        res = real(*a, **k)
        if res.text_ids == first_ids:
            return dataclasses.replace(res, codes=res.codes[:, :0], latent=res.latent[:, :0])
        return res

    texts = pl.text_segments(e2e_models.tokenizer, TEXT, 8)
    first_ids = texts[0].ids
    monkeypatch.setattr(chain, "generate_semantic", first_segment_silent)
    r = run(e2e_models, speaker, target_tokens=30, max_text_tokens_per_segment=8, seed=0)
    tokens = pl.plan_durations(texts, e2e_models.timing, target_tokens=30).tokens
    n = len(r.segments)
    assert r.segments[0].num_samples == 0 and r.segments[0].codes.shape[-1] == 0 and r.segments[0].mel_frames == 0
    assert r.waveform.shape[-1] == sum(int(t * 1.72) * 256 for t in tokens[1:]) + (n - 2) * 4410  # no gap for it
    assert r.segments[1].start_sample == 0 and "s2mel" not in r.segments[0].seconds


def test_no_speech_at_all_is_an_error(e2e_models, speaker, monkeypatch):  # noqa: F811
    chain = sys.modules["indextts2_core.pipeline.synthesize"]  # the module (the package exports the function)

    real = chain.generate_semantic

    def silent(*a, **k):
        res = real(*a, **k)
        return dataclasses.replace(res, codes=res.codes[:, :0], latent=res.latent[:, :0])

    monkeypatch.setattr(chain, "generate_semantic", silent)
    with pytest.raises(pl.NoSpeechError, match="no speech"):
        run(e2e_models, speaker, target_tokens=3, seed=0)


def test_emotion_modes(e2e_models, speaker, e2e_audio):  # noqa: F811
    m = e2e_models
    spk = pl.encode_speaker(m.semantic, m.codec, m.campplus, m.s2mel, *speaker, mel_config=m.config.s2mel.mel,
                            w2v_features=m.w2v_features)
    own = pl.gpt_conditioning(m.gpt, spk, pl.emotion_from_speaker()).emovec
    _, (emo, emo_sr) = e2e_audio
    audio0 = pl.gpt_conditioning(m.gpt, spk, pl.emotion_from_audio(m.semantic, emo, emo_sr, 0.0)).emovec
    assert torch.allclose(audio0, m.gpt.emovec(spk.spk_cond_emb), atol=1e-5)  # α = 0: the speaker base
    vec = pl.emotion_from_vector(m.emotion, spk, [0, 0, 0.5, 0, 0, 0, 0, 0], alpha=0.6)
    assert vec.weights[2] == 0.3 and vec.rows == tuple(m.emotion.select_rows(spk.style))
    mixed = pl.gpt_conditioning(m.gpt, spk, vec).emovec
    assert torch.allclose(mixed, vec.mix + 0.7 * own, atol=1e-5)
    r1 = pl.emotion_random(m.emotion, spk, [1, 0, 0, 0, 0, 0, 0, 1], seed=5)
    assert r1.rows == pl.emotion_random(m.emotion, spk, [1, 0, 0, 0, 0, 0, 0, 1], seed=5).rows
    assert r1.mode == "random"


def test_emotion_text_uses_the_t2e_scores_as_a_vector(e2e_models, speaker):  # noqa: F811
    class FakeT2E:  # stands in for the Qwen model (not available offline)
        def __init__(self):
            self.seen = []

        def scores(self, text, seed=None):
            self.seen.append((text, seed))
            return [0.0, 0.0, 0.9, 0.0, 0.0, 0.0, 0.0, 0.1]

    t2e = FakeT2E()
    models = dataclasses.replace(e2e_models, t2e=t2e)
    kw = dict(text="The robots sang today.", target_tokens=3, seed=4)
    by_text = run(models, speaker, emotion_text="I am so sad.", emotion_alpha=0.6, **kw)
    by_vector = run(models, speaker, emotion_vector=[0.0, 0.0, 0.9, 0.0, 0.0, 0.0, 0.0, 0.1], emotion_alpha=0.6, **kw)
    assert t2e.seen == [("I am so sad.", 4)]  # the call's seed reaches the sampling T2E
    assert torch.equal(by_text.emovec, by_vector.emovec) and torch.equal(by_text.waveform, by_vector.waveform)


def test_bf16_gpt_other_stages_fp32(e2e_models, speaker):  # noqa: F811
    gpt16 = copy.deepcopy(e2e_models.gpt).to(torch.bfloat16)
    models = dataclasses.replace(e2e_models, gpt=gpt16)
    assert models.dtype == torch.bfloat16
    r = run(models, speaker, text="The robots sang today.", target_tokens=5, seed=1)
    assert torch.isfinite(r.waveform).all() and r.waveform.shape[-1] == int(5 * 1.72) * 256
    assert next(models.s2mel.parameters()).dtype == torch.float32


@pytest.mark.parametrize("kw, message", [
    ({"text": ""}, "text is empty"),
    ({"text": "   \n\t"}, "text is empty"),
    ({"text": "!!! ... ???"}, "no speakable content"),
    ({"emotion_vector": [1, 0, 0, 0, 0, 0, 0, 0], "emotion_text": "sad"}, "at most one emotion source"),
    ({"emotion_alpha": 0.5}, "emotion_alpha needs an emotion source"),
    ({"use_random": True}, "use_random"),
    ({"normalize_emotion_vector": True}, "normalize_emotion_vector"),
    ({"seconds": 1.0, "target_tokens": 5}, "either seconds or target_tokens"),
    ({"seconds": 0.001}, "too short"),
    ({"seconds": 0.05, "max_text_tokens_per_segment": 8}, r"too short for \d+ text segment"),
    ({"target_tokens": 2, "max_text_tokens_per_segment": 8}, r"fewer than the \d+ text segments"),
    ({"seconds": float("nan")}, "seconds"),
    ({"emotion_text": "I am sad"}, "Qwen"),
    ({"interval_silence_ms": -1}, "interval silence"),
    ({"interval_silence_ms": 1e8}, "interval silence"),
    ({"target_tokens": 10**6}, "at most"),
    ({"seconds": 1e9}, "at most"),
    ({"emotion_vector": [1, 2, 3]}, "8 values"),
    ({"emotion_vector": [1e30, 0, 0, 0, 0, 0, 0, 0]}, "emotion"),
])
def test_bad_requests_are_refused(e2e_models, speaker, kw, message):  # noqa: F811
    with pytest.raises(ValueError, match=message):
        run(e2e_models, speaker, **kw)


@pytest.mark.parametrize("audio, rate, message", [
    (None, 22050, "no audio"),
    (torch.randn(1, 2205) * 0.1, 22050, "too short: 0.100 s"),
    (torch.zeros(1, 22050), 22050, "silent"),
    (torch.full((1, 22050), float("nan")), 22050, "NaN"),
    (torch.randn(1, 22050) * 0.1, 8, "too low for speech"),
    (torch.randn(1, 22050) * 0.1, 0, "positive"),
    (torch.randn(3, 1, 22050) * 0.1, 22050, "batch"),
])
def test_bad_speaker_audio_is_refused(e2e_models, audio, rate, message):  # noqa: F811
    with pytest.raises(ValueError, match=message):
        pl.synthesize(e2e_models, TEXT, audio, rate, decoding=FAST)


@pytest.mark.parametrize("seed", [1.5, "3", True])
def test_bad_seed_is_refused(e2e_models, speaker, seed):  # noqa: F811
    with pytest.raises((ValueError, TypeError), match="seed"):
        run(e2e_models, speaker, seed=seed)


def test_unknown_device_and_dtype(tmp_path):
    with pytest.raises(ValueError, match="device"):
        pl.resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            pl.load_models(tmp_path, device="cuda")
    with pytest.raises(ValueError, match="dtype"):
        pl.load_models(tmp_path, dtype="int8")
    assert pl.resolve_dtype("bf16") is torch.bfloat16 and pl.resolve_dtype(torch.float16) is torch.float16


def test_missing_model_files_listed(tmp_path):
    from indextts2_core.model_files import ModelFilesError

    with pytest.raises(ModelFilesError, match="download --models") as e:
        pl.load_models(tmp_path / "nothing")
    assert "gpt.pth" in str(e.value) and "bigvgan_generator.pt" in str(e.value)


def test_ten_minute_speaker_is_cut_to_15_seconds():
    """The front end of encode_speaker on stand-in networks: a 10 min clip at 44.1 kHz becomes the
    official 15 s prompt (330 750 samples at 22.05 kHz -> 1291 mel frames, 749 w2v-BERT rows)."""
    from indextts2_core.config import MelConfig

    class Semantic(torch.nn.Module):
        def forward(self, feats, mask):
            return torch.zeros(feats.shape[0], feats.shape[1], 1024)

    class Codec:
        def quantize(self, x):
            return torch.zeros(x.shape[:2], dtype=torch.long), x

    class S2M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def length_regulator(self, x, frames):
            return torch.zeros(1, frames, 8)

    t = torch.arange(600 * 44100) / 44100
    wav = (0.3 * torch.sin(2 * torch.pi * 220 * t)).unsqueeze(0)
    mel = MelConfig(sr=22050, n_fft=1024, win_length=1024, hop_length=256, n_mels=80, fmin=0.0, fmax=None)
    spk = pl.encode_speaker(Semantic(), Codec(), lambda f: torch.zeros(1, 192), S2M(), wav, 44100, mel_config=mel)
    assert spk.ref_mel.shape == (1, 80, 1291) and spk.prompt_cond.shape[1] == 1291
    assert spk.spk_cond_emb.shape[1] == 749 and spk.emo_cond_emb.shape[1] == 749


@pytest.mark.parametrize("module, stage", [("vocoder", "BigVGAN vocoder"), ("s2mel", "S2M"),
                                           ("gpt", "GPT"), ("semantic", "w2v-BERT")])
def test_non_finite_values_stop_at_the_stage_that_made_them(e2e_models, speaker, tmp_path, module, stage):  # noqa: F811
    """A weight that turns NaN after loading (the loader refuses NaN in files) never becomes audio:
    the stage that produced it is named, and nothing is written."""
    broken = copy.deepcopy(getattr(e2e_models, module))
    with torch.no_grad():
        next(p for p in broken.parameters() if p.is_floating_point() and p.dim() > 1).fill_(float("nan"))
    models = dataclasses.replace(e2e_models, **{module: broken})
    out = tmp_path / "never.wav"
    with pytest.raises(pl.NonFiniteError, match=stage) as err:
        result = run(models, speaker, text="The robots sang.", target_tokens=4, seed=0)
        pl.write_wav(out, result)
    assert "NaN or Inf" in str(err.value) and not out.exists()
