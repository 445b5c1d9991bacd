"""Prompt feature cache: content keys and LRU behaviour."""

import threading

import pytest
import torch

from indextts2_core.prompt_cache import FeatureCache, audio_key


def wave(seed=0, n=1600):
    return torch.randn(1, n, generator=torch.Generator().manual_seed(seed))


def test_key_depends_on_content_and_rate_only():
    w = wave()
    assert audio_key(w, 16000) == audio_key(w.clone(), 16000)  # same samples, another tensor
    assert audio_key(w[:, ::2], 16000) == audio_key(w[:, ::2].contiguous(), 16000)  # strides do not matter
    assert audio_key(w, 16000) != audio_key(w, 22050)
    changed = w.clone()
    changed[0, 1234] += 1e-6
    assert audio_key(changed, 16000) != audio_key(w, 16000)
    assert audio_key(w, 16000) != audio_key(w.double(), 16000)
    assert audio_key(w, 16000) != audio_key(w[0], 16000)  # [1, N] vs [N]
    assert len(audio_key(w.bfloat16(), 16000)) == 64


@pytest.mark.parametrize("w, sr, match", [
    (torch.zeros(1, 0), 16000, "empty"),
    ([0.0, 1.0], 16000, "tensor"),
    (torch.zeros(1, 8), 0, "positive int"),
    (torch.zeros(1, 8), 16000.0, "positive int"),
    (torch.zeros(1, 8), True, "positive int"),
])
def test_key_rejects_bad_input(w, sr, match):
    with pytest.raises(ValueError, match=match):
        audio_key(w, sr)


def test_reuse_costs_nothing_and_lru_evicts_oldest():
    cache = FeatureCache(max_items=2)
    calls = []

    def compute(name):
        return lambda: calls.append(name) or f"feat-{name}"

    ka, kb, kc = (audio_key(wave(s), 16000) for s in range(3))
    assert cache.get_or_compute(ka, compute("a")) == "feat-a"
    assert cache.get_or_compute(ka, compute("a")) == "feat-a"
    assert calls == ["a"] and (cache.hits, cache.misses) == (1, 1)
    cache.get_or_compute(kb, compute("b"))
    cache.get_or_compute(ka, compute("a"))  # a becomes most recently used
    cache.get_or_compute(kc, compute("c"))  # evicts b
    assert ka in cache and kc in cache and kb not in cache and len(cache) == 2
    cache.get_or_compute(kb, compute("b"))
    assert calls == ["a", "b", "c", "b"]
    cache.clear()
    assert len(cache) == 0


def test_failed_computation_is_not_cached():
    cache = FeatureCache(max_items=1)

    def boom():
        raise RuntimeError("w2v failed")

    with pytest.raises(RuntimeError, match="w2v failed"):
        cache.get_or_compute("k", boom)
    assert "k" not in cache
    assert cache.get_or_compute("k", lambda: 3) == 3


def test_threads_share_entries():
    cache = FeatureCache(max_items=4)
    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_compute("k", lambda: "v")))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["v"] * 8 and len(cache) == 1


@pytest.mark.parametrize("n", [0, -1, 1.5, True])
def test_bad_size(n):
    with pytest.raises(ValueError, match="max_items"):
        FeatureCache(max_items=n)
    with pytest.raises(ValueError, match="max_bytes"):
        FeatureCache(max_bytes=n)


def test_cache_is_bounded_in_bytes():
    cache = FeatureCache(max_bytes=10_000, max_items=100)
    for i in range(10):  # 4000 bytes each: at most two fit
        cache.get_or_compute(i, lambda: torch.zeros(1000))
    assert len(cache) == 2 and cache.bytes == 8000 and 9 in cache and 8 in cache
    big = cache.get_or_compute("big", lambda: torch.zeros(5000))  # larger than the cache: returned, not kept
    assert big.numel() == 5000 and "big" not in cache and cache.bytes == 8000
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Pair:
        a: torch.Tensor
        b: torch.Tensor

    cache.get_or_compute("pair", lambda: Pair(torch.zeros(500), torch.zeros(250, dtype=torch.float64)))
    assert cache.bytes == 4000 + 2000 + 2000 and len(cache) == 2  # the dataclass counts its tensors
