"""The one timing module: conversions, the rounding rule, video frames, and agreement with the web
readout's JavaScript (web/js/timing.js) on 10 000 random values."""

import json
import math
import random
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest
import torch

from indextts2_core import timing as tm
from indextts2_core.audio import fit_waveform
from indextts2_core.config import IndexTTS2Config

ROOT = Path(__file__).resolve().parents[1]
V2 = tm.Timing()


def test_official_config_gives_the_v2_rates(official_config: IndexTTS2Config):
    assert official_config.timing == tm.Timing(22050, 256, 50, 1)


def test_lengths_round_the_exact_decimal_value():
    assert V2.samples(3.0) == 66150 and V2.samples(3.24) == 71442 and V2.samples(1 / 3) == 7350
    assert V2.samples(0.17) == 3749  # 3748.5 exactly, a tie: up (0.17 * 22050 in floats is 3748.4999...)
    assert all(V2.samples(k / 30) == 735 * k for k in range(1, 3000))  # video frame times never lose a sample
    assert V2.samples(Fraction(1, 3)) == 7350 and V2.samples(0) == 0
    assert V2.codes(2.0) == 100 and V2.codes(0.001) == 1 and V2.codes(0.029) == 1 and V2.codes(0.03) == 2
    assert V2.codes_for_samples(22050) == 50 and V2.codes_for_samples(1) == 1 and V2.codes_for_samples(661) == 1
    assert tm.Timing(sample_rate=16000).samples(0.1) == 1600


def test_silence_follows_the_official_int():
    for ms in range(0, 5000, 7):
        assert V2.silence_samples(ms) == int(22050 * ms / 1000)
    assert V2.silence_samples(12.5) == 275 and V2.silence_samples(30) == 661


def test_covering_counts_round_up_and_counts_convert_exactly():
    assert V2.frames_for_samples(256) == 1 and V2.frames_for_samples(257) == 2
    assert V2.frames_to_samples(86) == 86 * 256 and V2.seconds(22050) == 1.0 and V2.code_seconds(50) == 1.0


def test_official_frame_rule_matches_float32_truncation():
    for t in range(1, 3000):
        assert V2.frames_for_codes(t) == int((torch.tensor([t]) * 1.72).long())


def test_a_codec_that_doubles_the_code_rate():
    """IndexTTS-2.5: 25 codes/s decoded to 50 content frames/s; S2M frames int(2T·1.72·df)."""
    t25 = tm.Timing(codes_per_second=25, content_per_code=2)
    for t in range(1, 1816):
        for df in (0.5, 0.8, 1.0, 1.2, 2.0):
            assert t25.frames_for_codes(t, df) == int(2 * t * 1.72 * df)
    assert t25.codes(1.0) == 25


def test_video_frames():
    assert tm.video_seconds(81, 25) == 3.24
    assert V2.video_samples(81, 25) == 71442
    assert tm.fps_fraction(24000 / 1001) == Fraction(24000, 1001) and tm.fps_fraction(29.97) == Fraction(2997, 100)
    assert V2.video_samples(240, 24000 / 1001) == 220721  # 10.01 s = 220720.5 samples, a tie: up
    assert V2.video_frames(71442, 25) == 81 and V2.video_frames(71443, 25) == 82
    assert V2.video_frames(71443, 25, "down") == 81 and V2.video_frames(71443, 25, "nearest") == 81
    for frames, fps in [(81, 25), (49, 16), (100, 29.97), (33, 30)]:
        kept = math.ceil(Fraction(22050) / tm.fps_fraction(fps) * frames)  # what CreateVideo keeps
        assert V2.video_samples(frames, fps) <= kept


@pytest.mark.parametrize("frames,rule,rounding,expected", [
    (80, "4n+1", "up", 81), (81, "4n+1", "up", 81), (82, "4n+1", "up", 85), (82, "4n+1", "down", 81),
    (83, "4n+1", "nearest", 85), (82, "4n+1", "nearest", 81), (80, "8n+1", "up", 81), (90, "8n+1", "down", 89),
    (1, "8n+1", "up", 1), (2, "8n+1", "down", 1), (77, "none", "up", 77),
])
def test_frame_rule(frames, rule, rounding, expected):
    assert tm.frame_rule(frames, rule, rounding) == expected


def test_split_total_is_exact_and_proportional():
    assert tm.split_total(10, [1, 1, 1]) == [4, 3, 3]
    assert sum(tm.split_total(157, [17, 5, 40])) == 157
    assert tm.split_total(1000, [1, 3]) == [250, 750]
    assert tm.split_total(3, [100, 1, 1]) == [1, 1, 1]
    assert tm.split_total(2205, [200, 1], minimum=256) == [1949, 256]
    with pytest.raises(ValueError, match="at least 256"):
        tm.split_total(500, [1, 1], minimum=256)


def test_fit_waveform_pads_and_trims_at_sample_precision():
    out = fit_waveform(torch.ones(1, 2, 1000), V2.samples(3.0))
    assert out.shape == (1, 2, 66150) and out[..., :1000].eq(1).all() and out[..., 1000:].eq(0).all()
    assert fit_waveform(torch.ones(1, 1, 70000), 66150).shape == (1, 1, 66150)


@pytest.mark.parametrize("call", [
    lambda: V2.samples(-1), lambda: V2.samples(float("nan")), lambda: V2.samples("3"), lambda: V2.samples(True),
    lambda: V2.codes(0), lambda: V2.frames_for_codes(0), lambda: V2.frames_for_codes(3, 0.0),
    lambda: V2.frames_for_codes(1, 0.1), lambda: V2.frames_to_samples(2.5), lambda: tm.video_seconds(0, 25),
    lambda: tm.video_seconds(10, 0), lambda: tm.frame_rule(10, "3n+1"), lambda: tm.split_total(2, [1, 1, 1]),
    lambda: fit_waveform(torch.ones(1, 1, 0), 10), lambda: V2.silence_samples(-1),
    lambda: V2.silence_samples(float("inf")), lambda: tm.Timing(sample_rate=0), lambda: V2.video_frames(5, 25, "x"),
])
def test_bad_values_raise(call):
    with pytest.raises(ValueError):
        call()


def _core(case: dict) -> list[int]:
    t = tm.Timing(**case["timing"])
    return [t.samples(case["seconds"]), t.silence_samples(case["ms"]), t.codes(case["seconds"]),
            t.codes_for_samples(case["n"]), t.frames_for_samples(case["n"]), t.frames_for_codes(case["codes"], case["df"])]


def _random_cases(n: int) -> list[dict]:
    rng = random.Random(1234)
    timings = [tm.Timing(), tm.Timing(codes_per_second=25, content_per_code=2), tm.Timing(44100, 512, 75, 1)]
    typed = [0.17, 0.1, 0.3, 1e-5, 2.675, 1e7, 123456.789, 0.05, 29.97]
    cases = []
    for i in range(n):
        seconds = [round(rng.uniform(0.001, 600), rng.randint(0, 4)),  # what a user types
                   rng.uniform(0.001, 3600),  # any double
                   rng.randint(1, 100000) / 1000, rng.choice(typed)][i % 4]
        cases.append({"timing": timings[i % len(timings)].__dict__, "seconds": seconds,
                      "ms": round(rng.uniform(0, 10000), rng.randint(0, 3)), "n": rng.randint(1, 10**8),
                      "codes": rng.randint(1, 10**5),
                      "df": rng.choice([1.0, 0.5, 0.8, 1.2, 2.0, round(rng.uniform(0.5, 2.0), 2)])})
    return cases


JS_RUNNER = """
import * as tm from "./timing.mjs";
import { readFileSync } from "node:fs";
const cases = JSON.parse(readFileSync(process.argv[2], "utf8"));
const out = cases.map((c) => [tm.samples(c.timing, c.seconds), tm.silenceSamples(c.timing, c.ms),
  tm.codes(c.timing, c.seconds), tm.codesForSamples(c.timing, c.n), tm.framesForSamples(c.timing, c.n),
  tm.framesForCodes(c.timing, c.codes, c.df)]);
console.log(JSON.stringify({ out, defaults: tm.DEFAULT_TIMING }));
"""


def test_web_readout_agrees_with_the_core_on_10000_random_values(tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node (JavaScript runtime) is not installed")
    shutil.copy(ROOT / "web" / "js" / "timing.js", tmp_path / "timing.mjs")
    (tmp_path / "run.mjs").write_text(JS_RUNNER)
    cases = _random_cases(10_000)
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    proc = subprocess.run([node, str(tmp_path / "run.mjs"), str(tmp_path / "cases.json")], capture_output=True,
                          text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    js = json.loads(proc.stdout)
    bad = [(c["seconds"], c["ms"], _core(c), j) for c, j in zip(cases, js["out"]) if _core(c) != j]
    assert not bad, f"{len(bad)} of {len(cases)} disagree, e.g. (seconds, ms, core, js) {bad[:3]}"
    assert js["defaults"] == tm.Timing().__dict__  # the readout's rates before a model has run
