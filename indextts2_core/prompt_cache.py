"""Prompt feature cache keyed by audio content (spec §9.4, quirk Q19: the official code keys on the
file path; a node pack receives waveforms, so the key is a hash of the samples and the rate).

A re-used speaker or emotion prompt then costs one hash instead of w2v-BERT, the codec, CAMPPlus
and the mel front end. Callers combine `audio_key` with whatever else the value depends on
(e.g. `(audio_key(w, sr), "speaker", id(model))`) and must not modify cached tensors in place.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import torch

log = logging.getLogger(__name__)


def audio_key(waveform: torch.Tensor, sample_rate: int) -> str:
    """SHA-256 of the waveform's dtype, shape, raw bytes and the sample rate (hex string)."""
    if not isinstance(waveform, torch.Tensor):
        raise ValueError(f"audio_key: waveform must be a tensor, got {type(waveform).__name__}")
    if waveform.numel() == 0:
        raise ValueError("audio_key: waveform is empty")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
        raise ValueError(f"audio_key: sample_rate must be a positive int, got {sample_rate!r}")
    data = waveform.detach().to("cpu").contiguous().reshape(-1)
    h = hashlib.sha256()
    h.update(f"{sample_rate}|{data.dtype}|{tuple(waveform.shape)}|".encode())
    h.update(data.view(torch.uint8).numpy().tobytes())  # byte view: works for any dtype, incl. bfloat16
    return h.hexdigest()


def nbytes(value: Any) -> int:
    """Bytes held by the tensors of a cached value (a tensor, or a dataclass / tuple of them)."""
    if isinstance(value, torch.Tensor):
        return value.nelement() * value.element_size()
    if dataclasses.is_dataclass(value):
        return sum(nbytes(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, (tuple, list)):
        return sum(nbytes(v) for v in value)
    return 0


class FeatureCache:
    """Small thread-safe LRU of computed prompt features, bounded in bytes (and entries). Callers store
    detached CPU tensors (pipeline.prompts does), so nothing here holds GPU memory or autograd graphs."""

    def __init__(self, max_bytes: int = 256 * 2**20, max_items: int = 64):
        for name, v in (("max_bytes", max_bytes), ("max_items", max_items)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"FeatureCache: {name} must be a positive int, got {v!r}")
        self.max_bytes, self.max_items = max_bytes, max_items
        self.hits = 0
        self.misses = 0
        self.bytes = 0
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def get(self, key: Hashable, default: Any = None) -> Any:
        """The cached value for `key` (now the most recently used), or `default`."""
        with self._lock:
            if key not in self._items:
                return default
            self._items.move_to_end(key)
            self.hits += 1
            return self._items[key][0]

    def get_or_compute(self, key: Hashable, fn: Callable[[], Any]) -> Any:
        """The cached value for `key`, or `fn()` stored under it (least recently used entries evicted
        until both bounds hold; a value larger than `max_bytes` is returned but not kept).

        `fn` runs outside the lock, so a slow computation does not block other keys; an exception
        from `fn` propagates and caches nothing."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key][0]
            self.misses += 1
        value = fn()
        self.put(key, value)
        return value

    def put(self, key: Hashable, value: Any) -> None:
        """Keep `value` under `key` (least recently used entries evicted until both bounds hold; a
        value larger than `max_bytes` is not kept)."""
        size = nbytes(value)
        if size > self.max_bytes:
            log.debug("prompt cache: %s (%d bytes) exceeds the cache; not kept", key, size)
            return
        with self._lock:
            if key in self._items:
                self.bytes -= self._items.pop(key)[1]
            self._items[key] = (value, size)
            self.bytes += size
            while len(self._items) > self.max_items or self.bytes > self.max_bytes:
                old, (_, old_size) = self._items.popitem(last=False)
                self.bytes -= old_size
                log.debug("prompt cache: evicted %s", old)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.bytes = 0
