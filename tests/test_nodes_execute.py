"""Each node's execute, through the ComfyUI stand-in, with the core stage functions replaced by
recorders: the node unpacks its inputs, loads the right stage modules, calls the core function
(tested directly in the core's own tests) and wraps the result. Also: progress, interruption,
exact lengths, and errors that name the node and the input."""

from __future__ import annotations

import importlib
import sys
from types import SimpleNamespace

import pytest
import torch

from test_nodes_comfy_stub import load_pack, node_list


@pytest.fixture
def env(monkeypatch, tmp_path):
    pack = load_pack(monkeypatch, tmp_path / "models")
    # inside ComfyUI the core is the pack's sub-package (relative imports): patch that copy
    pipeline = importlib.import_module(pack.__name__ + ".indextts2_core.pipeline")
    segments = importlib.import_module(pack.__name__ + ".indextts2_core.pipeline.segments")
    timing = importlib.import_module(pack.__name__ + ".indextts2_core.timing")
    nodes = {n.define_schema().node_id: n for n in node_list(pack)}
    cm = sys.modules[pack.__name__ + ".nodes.comfy_models"]
    wrapper = sys.modules[pack.__name__ + ".nodes.model"]
    mm = sys.modules["comfy.model_management"]
    calls: dict[str, list] = {}

    def record(module, name, result):
        def fn(*args, **kwargs):
            calls.setdefault(name, []).append((args, kwargs))
            progress = kwargs.get("progress")
            if progress is not None:
                for i in range(1, 4):
                    progress(i, 3)
            return result(*args, **kwargs) if callable(result) else result
        monkeypatch.setattr(module, name, fn)

    speaker = pipeline.SpeakerPrompt("spk", torch.zeros(1, 5, 8), torch.zeros(1, 5, 8), torch.zeros(1, 80, 7),
                                     torch.zeros(1, 192), torch.zeros(1, 7, 4), torch.zeros(1, 5, 8))
    # the wrapper's core calls are recorded; the segment stages run for real around stand-in networks
    record(wrapper, "encode_speaker", speaker)
    record(wrapper, "emotion_from_vector", lambda *a, **k: pipeline.EmotionSpec("vector", weights=tuple(a[2])))
    record(wrapper, "emotion_from_audio", pipeline.EmotionSpec("audio", alpha=0.5))
    record(wrapper, "text_segments", lambda tok, text, n=120, language="auto": [[1] * 10, [2] * 30] if len(text) > 20 else [[1] * 10])
    record(segments, "gpt_conditioning", pipeline.GPTConditioning(torch.zeros(1, 34, 8), torch.zeros(1, 8)))

    def semantic(gpt, spk, emo, ids, settings, target_tokens=None, **kw):
        t = target_tokens or 20
        return pipeline.SemanticResult(tuple(ids), torch.zeros(1, t, dtype=torch.long), torch.zeros(1, t, 8),
                                       torch.zeros(1, t + 1, dtype=torch.long), True, torch.zeros(1, 8))
    record(segments, "generate_semantic", semantic)
    record(segments, "synthesize_mel", lambda s2mel, codec, spk, sem, target_frames=None, **kw: torch.zeros(
        1, 80, target_frames or int(sem.codes.shape[-1] * 1.72)))
    record(segments, "vocode", lambda voc, mel: torch.full((1, 256 * mel.shape[-1]), 0.5))

    gpt = torch.nn.Linear(1, 1)
    gpt.max_codes = 1815
    models = pipeline.IndexTTS2Models(**{n: torch.nn.Linear(1, 1) for n in wrapper.STAGE_MODULES if n != "gpt"},
                                      gpt=gpt, tokenizer=None, emotion="matrices", w2v_features=None,
                                      config=SimpleNamespace(s2mel=SimpleNamespace(mel="mel"), timing=timing.Timing()))
    model = wrapper.IndexTTS2Model(models, "x", torch.device("cpu"), torch.device("cpu"))
    return SimpleNamespace(nodes=nodes, calls=calls, model=model, speaker=speaker, mm=mm, cm=cm, pipeline=pipeline,
                           pack=pack, wrapper=wrapper, bars=sys.modules["comfy.utils"].ProgressBar.instances)


T2S_DEFAULTS = dict(duration_mode="natural", target_tokens=250, target_seconds=5.0, language="auto", interval_silence_ms=200,
                    seed=7)


def _chain(env, text="Hello there.", **t2s):
    n = env.nodes
    audio = {"waveform": torch.randn(1, 2, 16000), "sample_rate": 16000}
    speaker = n["IndexTTS2EncodeSpeaker"].execute(model=env.model, audio=audio)[0]
    emotion = n["IndexTTS2EmotionFromVector"].execute(env.model, speaker, 1.0, False, happy=0.5, calm=0.2)[0]
    sem, tokens = n["IndexTTS2T2SGenerate"].execute(env.model, speaker, text, emotion=emotion,
                                                     **{**T2S_DEFAULTS, **t2s}).args
    mel = n["IndexTTS2S2M"].execute(env.model, sem, speaker, 25, 0.7, "auto", 5.0, 1.0, 430, 3)[0]
    audio_out = n["IndexTTS2Vocoder"].execute(env.model, mel)[0]
    return sem, tokens, mel, audio_out


def test_chain_delegates_to_core_and_returns_audio(env):
    sem, tokens, mel, audio = _chain(env)
    assert set(env.calls) >= {"encode_speaker", "emotion_from_vector", "generate_semantic", "synthesize_mel", "vocode"}
    args, kwargs = env.calls["encode_speaker"][0]
    assert args[4].shape == (2, 16000) and args[5] == 16000  # the clip, its own rate
    assert env.calls["emotion_from_vector"][0][0][2] == [0.5, 0, 0, 0, 0, 0, 0, 0.2]
    settings = env.calls["generate_semantic"][0][0][4]
    assert (settings.num_beams, settings.top_k, settings.repetition_penalty) == (3, 30, 10.0)
    assert tokens == 20 and sem.plan.total_samples is None
    assert audio["sample_rate"] == 22050 and audio["waveform"].shape == (1, 1, 256 * 34)
    names = {id(p): name for name, p in env.model.patchers.items()}
    loads = [[names[id(p)] for p in load] for load in env.mm.loads]  # each stage loaded right before use
    assert loads == [["semantic", "codec", "campplus", "s2mel"], ["gpt"], ["s2mel", "codec"], ["vocoder"]]


def test_target_seconds_gives_exact_samples(env):
    sem, tokens, mel, audio = _chain(env, duration_mode="target seconds", target_seconds=3.0)
    assert audio["waveform"].shape[-1] == 66150
    assert tokens == 150 and env.calls["generate_semantic"][0][1]["target_tokens"] == 150
    # two segments: the gaps are sized so the total stays exact
    sem, tokens, mel, audio = _chain(env, text="A much longer text, in two segments.", duration_mode="target seconds",
                                     target_seconds=3.0)
    assert audio["waveform"].shape[-1] == 66150 and len(sem.segments) == 2
    wav = audio["waveform"][0, 0]
    first = sem.plan.samples[0]
    assert first + 4410 + sem.plan.samples[1] == 66150  # the 200 ms silence is part of the 3.0 s
    assert wav[first: first + 4410].eq(0).all() and wav[:first].eq(0.5).all() and wav[first + 4410:].eq(0.5).all()
    # the silence is set once, at T2S; it is part of the 3.0 s
    sem, _, _, audio = _chain(env, text="A much longer text, in two segments.", duration_mode="target seconds",
                              target_seconds=3.0, interval_silence_ms=500)
    assert audio["waveform"].shape[-1] == 66150 and sem.plan.silence_samples == 11025


def test_target_tokens_are_a_total(env):
    sem, tokens, _, _ = _chain(env, text="A much longer text, in two segments.", duration_mode="target tokens",
                               target_tokens=100)
    assert tokens == 100 and [s.codes.shape[-1] for s in sem.segments] == [25, 75]


def test_s2m_target_frames_and_seconds(env):
    sem, _, _, _ = _chain(env)
    s2m = env.nodes["IndexTTS2S2M"]
    mel = s2m.execute(env.model, sem, env.speaker, 10, 0.7, "target frames", 5.0, 1.0, 99, 0)[0]
    assert mel.num_frames == 99 and env.calls["synthesize_mel"][-1][1]["settings"].steps == 10
    mel = s2m.execute(env.model, sem, env.speaker, 10, 0.7, "target seconds", 2.5, 1.0, 99, 0)[0]
    audio = env.nodes["IndexTTS2Vocoder"].execute(env.model, mel)[0]
    assert audio["waveform"].shape[-1] == round(2.5 * 22050)


def test_speak_passes_the_whole_output_length(env, monkeypatch):
    seen = []

    def prepare(models, text, wav, rate, **kw):
        seen.append(kw)
        plan = env.pipeline.plan_durations([[1] * 10], env.model.timing, seconds=kw["seconds"],
                                           interval_silence_ms=kw["interval_silence_ms"])
        return SimpleNamespace(plan=plan)

    def stream(models, prepared, **kw):
        yield SimpleNamespace(waveform=torch.full((1, 100), 0.5), gap=0)

    monkeypatch.setattr(env.wrapper, "prepare", prepare)
    monkeypatch.setattr(env.wrapper, "stream", stream)
    audio = {"waveform": torch.randn(1, 1, 16000), "sample_rate": 16000}
    speak = env.nodes["IndexTTS2Speak"]
    out = speak.execute(env.model, audio, "Hello there.", 1.0, 3.0, "auto", 350, 5)[0]
    speak.execute(env.model, audio, "Hello there.", 1.0, 0.0, "auto", 200, 5)
    assert [(k["seconds"], k["interval_silence_ms"]) for k in seen] == [(3.0, 350), (None, 200)]
    assert out["waveform"].shape == (1, 1, 66150)  # the plan's exact total


def test_progress_and_interrupt(env):
    _chain(env)
    assert any(bar.updates for bar in env.bars)
    env.mm.interrupted = True
    with pytest.raises(env.mm.InterruptProcessingException):
        _chain(env)


@pytest.mark.parametrize("call,words", [
    (lambda n, m: n["IndexTTS2EncodeSpeaker"].execute(model=m, audio=None), ["Encode Speaker", "'audio'"]),
    (lambda n, m: n["IndexTTS2EncodeSpeaker"].execute(model=None, audio=None), ["Encode Speaker", "'model'"]),
    (lambda n, m: n["IndexTTS2T2SGenerate"].execute(m, None, "hi", **T2S_DEFAULTS), ["T2S Generate", "'speaker'"]),
    (lambda n, m: n["IndexTTS2EmotionFromVector"].execute(m, "not a speaker", 1.0, False, happy=1.0),
     ["Emotion from Vector", "'speaker'"]),
    (lambda n, m: n["IndexTTS2S2M"].execute(m, "x", None, 25, 0.7, "auto", 5.0, 1.0, 1, 0), ["S2M", "'speaker'"]),
    (lambda n, m: n["IndexTTS2Loader"].execute("models/indextts2", "tpu", "auto", False, False), ["Load IndexTTS2", "'device'"]),
    (lambda n, m: n["IndexTTS2AudioToFrameCount"].execute({"waveform": torch.ones(1, 1, 10), "sample_rate": 10}, 25.0,
                                                          "5n+1", "up"), ["Frame Count", "'frame_rule'"]),
])
def test_errors_name_node_and_input(env, call, words):
    with pytest.raises(ValueError) as err:
        call(env.nodes, env.model)
    for w in words:
        assert w in str(err.value)


def test_core_errors_are_prefixed_with_the_node(env, monkeypatch):
    speaker = env.speaker
    with pytest.raises(ValueError, match="T2S Settings: temperature must be in"):
        env.nodes["IndexTTS2T2SSettings"].execute(True, 0.0, 0.8, 30, 3, 10.0, 0.0, 1500, 120)
    with pytest.raises(ValueError, match="Emotion from Vector: input 'happy…calm'"):
        env.nodes["IndexTTS2EmotionFromVector"].execute(env.model, speaker, 1.0, False)
    with pytest.raises(ValueError, match="T2S Generate: interval silence"):
        env.nodes["IndexTTS2T2SGenerate"].execute(env.model, speaker, "hi", **{**T2S_DEFAULTS,
                                                                              "interval_silence_ms": 10**8})


def test_no_speech_fails_at_t2s_naming_the_node(env, monkeypatch):
    segments = importlib.import_module(env.pack.__name__ + ".indextts2_core.pipeline.segments")

    def silent(gpt, spk, emo, ids, settings, **kw):
        return env.pipeline.SemanticResult(tuple(ids), torch.zeros(1, 0, dtype=torch.long), torch.zeros(1, 0, 8),
                                           torch.zeros(1, 1, dtype=torch.long), True, torch.zeros(1, 8))
    monkeypatch.setattr(segments, "generate_semantic", silent)
    with pytest.raises(env.pipeline.NoSpeechError, match="T2S Generate: .*no speech.*all 2 text segment"):
        env.nodes["IndexTTS2T2SGenerate"].execute(env.model, env.speaker, "A much longer text, in two segments.",
                                                  **T2S_DEFAULTS)


def test_t2s_settings_reach_the_gpt(env):
    settings = env.nodes["IndexTTS2T2SSettings"].execute(False, 1.0, 1.0, 0, 1, 1.0, 0.0, 300, 60)[0]
    _chain(env, settings=settings)
    used = env.calls["generate_semantic"][-1][0][4]
    assert (used.do_sample, used.num_beams, used.max_mel_tokens) == (False, 1, 300)


@pytest.mark.parametrize("audio, words", [
    ({"waveform": torch.randn(2, 1, 16000), "sample_rate": 16000}, "batch of 2 clips"),
    ({"waveform": torch.randn(1, 1, 16000), "sample_rate": None}, "sample rate"),
    ({"waveform": torch.randn(1, 1, 16000), "sample_rate": 0}, "sample rate"),
    ({"waveform": torch.randn(1, 1, 16000), "sample_rate": 44100.5}, "sample rate"),
    ({"waveform": torch.zeros(1, 0, 16000), "sample_rate": 16000}, "C, T > 0"),
    ({"waveform": torch.zeros(1, 1, 16000, dtype=torch.bool), "sample_rate": 16000}, "boolean"),
    ("not audio", "expected an AUDIO"),
])
def test_bad_audio_inputs_are_refused_naming_node_and_input(env, audio, words):
    with pytest.raises(ValueError, match=f"Encode Speaker.*'audio'.*{words}"):
        env.nodes["IndexTTS2EncodeSpeaker"].execute(model=env.model, audio=audio)


@pytest.mark.parametrize("dtype, scale", [(torch.int16, 32768.0), (torch.int32, 2.0**31), (torch.uint8, None)])
def test_integer_pcm_is_scaled_to_float(env, dtype, scale):
    raw = torch.tensor([[[0, 1, 2, 100]]], dtype=dtype)
    env.nodes["IndexTTS2EncodeSpeaker"].execute(model=env.model, audio={"waveform": raw, "sample_rate": 16000})
    got = env.calls["encode_speaker"][-1][0][4]
    want = (raw[0].float() - 128) / 128 if scale is None else raw[0].float() / scale
    assert got.dtype == torch.float32 and torch.equal(got, want)


def test_loader_downloads_only_when_asked(env, monkeypatch, tmp_path):

    loaded, fetched = [], []
    loaders = sys.modules[env.pack.__name__ + ".nodes.loaders"]
    monkeypatch.setattr(loaders, "load_models", lambda paths, device, dtype, load_t2e, glossary=None: loaded.append(
        (paths.root, str(device), dtype, load_t2e, glossary)) or SimpleNamespace(
        **{n: torch.nn.Linear(1, 1) for n in env.wrapper.STAGE_MODULES}, t2e=None, version=paths.version))
    monkeypatch.setattr(loaders, "download_models", lambda paths, include_t2e, progress: fetched.append(paths) or
                        paths)
    loader = env.nodes["IndexTTS2Loader"]
    out = loader.execute("models/indextts2", "auto", "auto", False, False)[0]
    assert fetched == [] and loaded[-1][1:] == ("cpu", "fp32", False, None)
    assert set(out.patchers) == set(env.wrapper.STAGE_MODULES)
    loader.execute("models/indextts2", "cpu", "bf16", True, True, "/my/glossary.yaml")
    assert len(fetched) == 1 and loaded[-1][1:] == ("cpu", "bf16", True, "/my/glossary.yaml")


def test_video_nodes_are_sample_exact(env):
    n = env.nodes
    seconds, frames, fps = n["IndexTTS2DurationFromVideo"].execute(25.0, 81).args
    assert (seconds, frames, fps) == (3.24, 81, 25.0)
    seconds, frames, _ = n["IndexTTS2DurationFromVideo"].execute(16.0, 1, images=torch.zeros(49, 8, 8, 3)).args
    assert (seconds, frames) == (49 / 16, 49)
    video = SimpleNamespace(get_components=lambda: SimpleNamespace(images=torch.zeros(50, 4, 4, 3), frame_rate=25))
    assert n["IndexTTS2DurationFromVideo"].execute(30.0, 1, video=video).args[:2] == (2.0, 50)
    audio = {"waveform": torch.ones(1, 2, 1000), "sample_rate": 22050}
    fitted = n["IndexTTS2FitAudioToDuration"].execute(audio, 3.0)[0]
    assert fitted["waveform"].shape == (1, 2, 66150) and fitted["sample_rate"] == 22050
    frames, secs = n["IndexTTS2AudioToFrameCount"].execute(fitted, 25.0, "4n+1", "up").args
    assert (frames, secs) == (77, 3.08)
