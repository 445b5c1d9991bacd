"""The dubbing benchmark stays alive: a 3-cue run on the e2e kit prints both timings and finds the
batched lines equal to the lines made one at a time."""

from __future__ import annotations

import re

import pytest

from e2e_fixtures import e2e_kit  # noqa: F401  (fixture)


@pytest.mark.slow
def test_bench_dubbing_prints_figures_and_equal_lines(e2e_kit, capsys):  # noqa: F811
    from benchmarks.bench_dubbing import main

    main(["--kit", str(e2e_kit), "--cues", "3", "--batch", "2", "--steps", "1", "--max-tokens", "6"])
    out = capsys.readouterr().out
    assert out.startswith("3 cues, ")
    assert re.search(r"one line at a time : +\d+\.\d+ s", out) and re.search(r"batches of 2 +: +\d+\.\d+ s", out)
    assert "same tokens/frames : True" in out
    assert float(re.search(r"max \|track diff\| +: (\S+)", out).group(1)) < 1e-3
