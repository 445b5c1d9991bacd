"""Decoding of semantic codes with UnifiedVoice (spec §4.7–4.9, §11), apart from the network.

* `KVCache`: preallocated keys/values per layer `[B, H, S_max, Dh]`, written by position; beams
  are reordered in place (`reorder`), nothing is concatenated per step.
* `prefill` / `decode_one_token`: one pass over the prompt, then one token per step. The k-th
  generated code is embedded at mel position k+2 (quirk Q2).
* `process_scores`: the official logits-processor chain, in order: (log_softmax when beams > 1)
  -> repetition penalty over each row's running ids (fake prefix ids 1 and start token included,
  Q3) -> [stop suppression in target mode] -> temperature -> top-k -> top-p (min_tokens_to_keep 2
  with beams). With one beam the chain acts on raw logits, as the official `_sample` / greedy do.
* `generate_codes`: greedy, sampling, deterministic beam search and the official default beam
  *sampling* (2·beams multinomial candidates without replacement, finished-hypothesis list,
  length penalty, stop rule, finalisation). All randomness comes from an explicit generator.
* Duration: natural (stop token, `max_mel_tokens` cap; a warning when no stop, Q15) or target
  mode: exactly N codes (stop suppressed before N, generation ends at N) for every method.
* `generate_codes_batch`: several independent requests (own conditioning, text, language, target
  and generator) through one batched forward per token, prompts left-padded and masked; each
  request gets what `generate_codes` gives it alone. `generate_codes` is a batch of one.
* `DecodingSettings.decode_step`: the per-token forward as it runs eagerly (the cache sliced to
  the written rows) or as the fixed-shape `static_decode_step` (gpt-fast style: whole cache,
  positions as device tensors), optionally compiled and/or replayed as a CUDA graph.

Shape legend: B rows (requests x beams), V number_mel_codes, P prompt rows
(34 + L+2 + 1), S_max cache rows, H heads, Dh head width, D model_dim.
"""

from __future__ import annotations

import contextlib
import logging
import math
import weakref
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .model import UnifiedVoice

log = logging.getLogger(__name__)

StepHook = Callable[[torch.Tensor, torch.Tensor], None]  # (raw logits [B, V], processed scores [B, V])

MAX_BEAMS = 16
INITIAL_BEAM_SCORE = -1e9  # beams 1.. start "dead" so step 0 expands beam 0 only
DECODE_STEPS = ("eager", "static", "compile", "cuda_graph", "compile+cuda_graph")
STOP_CHECK_EVERY = 8  # greedy natural stop off the CPU: the host looks at the codes every this many tokens
STATIC_BUCKET = 256  # static caches are this many rows longer at most: few shapes, few compilations


@dataclass(frozen=True)
class DecodingSettings:
    """Official `infer` defaults (spec §4.8). do_sample=False gives greedy (1 beam) or
    deterministic beam search; the official pipeline always samples."""

    do_sample: bool = True
    num_beams: int = 3
    temperature: float = 0.8
    top_k: int = 30  # 0 = no top-k
    top_p: float = 0.8  # 1.0 = no top-p
    repetition_penalty: float = 10.0  # 1.0 = none
    length_penalty: float = 0.0
    max_mel_tokens: int = 1500  # cap on new codes in natural mode
    # how each token's forward runs (the codes do not depend on it; logits to float rounding):
    # "eager" slices the cache to the written rows (the fastest without a compiler); "static" is the
    # fixed-shape step (whole cache, masked; no per-token allocation or shape change) that
    # "compile" runs through torch.compile and "cuda_graph" replays as a CUDA graph ("compile+cuda_graph":
    # both). The graph modes fall back to their graph-less form on a model that is not on CUDA.
    decode_step: str = "eager"

    def __post_init__(self):
        self.validate()

    def validate(self, max_codes: int | None = None, target_tokens: int | None = None) -> "DecodingSettings":
        """Raise ValueError naming the first bad parameter. `max_codes` is the model's mel table limit
        (`UnifiedVoice.max_codes`); with `target_tokens` (exact-length mode) the cap `max_mel_tokens`
        does not apply and the target must fit the table instead."""
        if not isinstance(self.do_sample, bool):
            raise ValueError(f"do_sample must be True or False, got {self.do_sample!r}")
        _int(self.num_beams, "num_beams")
        if not 1 <= self.num_beams <= MAX_BEAMS:
            raise ValueError(f"num_beams must be between 1 and {MAX_BEAMS}, got {self.num_beams}")
        if not 0 < _real(self.temperature, "temperature") <= 100:
            raise ValueError(f"temperature must be in (0, 100], got {self.temperature}")
        if _int(self.top_k, "top_k") < 0:
            raise ValueError(f"top_k must be >= 0 (0 disables it), got {self.top_k}")
        if not 0 < _real(self.top_p, "top_p") <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        # far outside these ranges the scores overflow: refused here rather than met as NaN mid-decode
        if not 0.01 <= _real(self.repetition_penalty, "repetition_penalty") <= 1000:
            raise ValueError(f"repetition_penalty must be between 0.01 and 1000 (1 = none), got {self.repetition_penalty}")
        if not -100 <= _real(self.length_penalty, "length_penalty") <= 100:
            raise ValueError(f"length_penalty must be between -100 and 100, got {self.length_penalty}")
        if self.decode_step not in DECODE_STEPS:
            raise ValueError(f"decode_step must be one of {', '.join(DECODE_STEPS)}, got {self.decode_step!r}")
        if _int(self.max_mel_tokens, "max_mel_tokens") <= 0:
            raise ValueError(f"max_mel_tokens must be > 0, got {self.max_mel_tokens}")
        if target_tokens is not None:
            if isinstance(target_tokens, bool) or not isinstance(target_tokens, int) or target_tokens <= 0:
                raise ValueError(f"target_tokens must be a positive integer, got {target_tokens!r}")
            if max_codes is not None and target_tokens > max_codes:
                raise ValueError(f"target_tokens {target_tokens} exceeds the mel position table of this model "
                                 f"({max_codes} codes = gpt.max_mel_tokens)")
        elif max_codes is not None and self.max_mel_tokens > max_codes:
            raise ValueError(f"max_mel_tokens {self.max_mel_tokens} exceeds the model's mel position table "
                             f"({max_codes} codes = gpt.max_mel_tokens)")
        return self


def _int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return value


def _real(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


class KVCache:
    """Static per-layer key/value buffers [B, H, S_max, Dh], written by position.

    Eager use (`update` with an int start) returns views of everything written so far. A batch of
    requests with different prompt lengths is left-padded: row b's prompt ends where every other
    row's does, its first `pad[b]` positions are zeros that `decode_mask` hides. The static step
    (`update` with a [1] position tensor) writes with `index_copy_` and returns the whole buffers;
    its mask hides the padding and every position after the current one, so shapes never change."""

    def __init__(self, layers: int, batch: int, heads: int, max_len: int, head_dim: int, device, dtype,
                 zeros: bool = False):
        shape = (batch, heads, max_len, head_dim)
        # eager use never reads beyond what was written, so no zero fill (pages stay untouched until
        # used); the static step reads every row, masked, and masked keys must still be finite
        new = torch.zeros if zeros else torch.empty
        self.k = [new(shape, device=device, dtype=dtype) for _ in range(layers)]
        self.v = [new(shape, device=device, dtype=dtype) for _ in range(layers)]
        self.max_len = max_len
        self.length = 0  # positions written
        self.valid: torch.Tensor | None = None  # [B, S_max] bool: key j exists for row b (padding, static step)
        self.positions: torch.Tensor | None = None  # [S_max] 0.. (static step)

    @classmethod
    def for_model(cls, model: UnifiedVoice, batch: int, max_len: int, zeros: bool = False) -> "KVCache":
        c, w = model.cfg, model.mel_head.weight
        return cls(c.layers, batch, c.heads, max_len, c.model_dim // c.heads, w.device, w.dtype, zeros)

    @property
    def batch(self) -> int:
        return self.k[0].size(0)

    def rows(self, rows: slice, offset: int = 0) -> "KVCache":
        """A cache over rows `rows` whose position 0 is `offset` here (one request's prefill)."""
        view = KVCache.__new__(KVCache)
        view.k = [b[rows, :, offset:] for b in self.k]
        view.v = [b[rows, :, offset:] for b in self.v]
        view.max_len, view.length, view.valid, view.positions = self.max_len - offset, 0, None, None
        return view

    def set_padding(self, pads: list[int], static: bool = False) -> None:
        """Row b's keys start at pads[b]: the padding is zeroed (masked keys must stay finite) and
        masked. `static` masks for the fixed-shape step (every call sees all S_max positions)."""
        if len(pads) != self.batch:
            raise ValueError(f"{len(pads)} pads for {self.batch} rows")
        for b, p in enumerate(pads):
            for buf in self.k + self.v:
                buf[b, :, :p].zero_()
        dev = self.k[0].device
        if not (any(pads) or static):
            self.valid = None
            return
        pos = torch.arange(self.max_len, device=dev)
        valid = pos >= torch.tensor(pads, device=dev)[:, None]
        if static and self.valid is not None:  # in place: a captured graph reads this very buffer
            self.valid.copy_(valid)
        else:
            self.valid = valid
        if static and self.positions is None:
            self.positions = pos

    def update(self, layer: int, start, k: torch.Tensor, v: torch.Tensor):
        if isinstance(start, torch.Tensor):  # static step: one position, whole buffers back
            self.k[layer].index_copy_(2, start, k)
            self.v[layer].index_copy_(2, start, v)
            return self.k[layer], self.v[layer]
        end = start + k.size(2)
        if end > self.max_len:
            raise RuntimeError(f"KV cache overflow: position {end} > {self.max_len}")
        self.k[layer][:, :, start:end] = k  # a batch-1 prefill broadcasts to every beam
        self.v[layer][:, :, start:end] = v
        self.length = max(self.length, end)
        b = k.size(0)  # a broadcast prefill reads back one row
        return self.k[layer][:b, :, :end], self.v[layer][:b, :, :end]

    def decode_mask(self, start) -> torch.Tensor | None:
        """Keys one new token at `start` may see, [B, 1, 1, keys] bool, or None (all written ones)."""
        if isinstance(start, torch.Tensor):
            return (self.valid & (self.positions <= start))[:, None, None]
        return None if self.valid is None else self.valid[:, None, None, :start + 1]

    def reorder(self, beam_idx: torch.Tensor) -> None:
        """Row b of the cache becomes the old row beam_idx[b] (parents of the surviving beams)."""
        parents = beam_idx.tolist() if isinstance(beam_idx, torch.Tensor) else list(beam_idx)
        moved = [(dst, src) for dst, src in enumerate(parents) if dst != src]
        if not moved:
            return
        dsts, n = {d for d, _ in moved}, self.length
        for buf in self.k + self.v:  # only rows whose parent changed are copied, written positions only
            saved = {s: buf[s, :, :n].clone() for _, s in moved if s in dsts}  # sources about to be overwritten
            for dst, src in moved:
                buf[dst, :, :n].copy_(saved.get(src, buf[src, :, :n]))

    def keep(self, rows: torch.Tensor) -> None:
        """Only rows `rows` remain, in that order (finished requests leave an eager batch)."""
        n = self.length
        for bufs in (self.k, self.v):
            for i, buf in enumerate(bufs):
                new = torch.empty((rows.numel(),) + buf.shape[1:], device=buf.device, dtype=buf.dtype)
                new[:, :, :n] = buf[rows, :, :n]
                bufs[i] = new
        if self.valid is not None:
            self.valid = self.valid[rows]


def prefill(model: UnifiedVoice, embeds: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """Prompt embeddings [1, P, D] -> float32 logits [1, V] of the last position."""
    return model.logits(model.hidden_states(embeds, cache, 0)[:, -1]).float()


def decode_one_token(model: UnifiedVoice, tokens: torch.Tensor, step: int, prompt_len: int,
                     cache: KVCache) -> torch.Tensor:
    """Feed the code chosen at `step` ([B]) -> logits [B, V]. It sits at cache row prompt_len+step
    and is embedded with mel position step+2 (quirk Q2: position 1 is never used)."""
    pos = torch.full((1,), step + 2, dtype=torch.long, device=tokens.device)
    emb = model.mel_embeds(tokens.view(-1, 1), pos)
    return model.logits(model.hidden_states(emb, cache, prompt_len + step)[:, -1]).float()


def static_decode_step(model: UnifiedVoice, cache: KVCache, tokens: torch.Tensor, pos: torch.Tensor,
                       mel_pos: torch.Tensor) -> torch.Tensor:
    """The fixed-shape step: codes [B] written at cache row `pos` [1] and embedded at mel position
    `mel_pos` [1] -> logits [B, V]. Every shape is fixed by the cache; positions are device tensors,
    so the step can be compiled or captured as a graph once and replayed for every token."""
    emb = model.mel_embeds(tokens.view(-1, 1), mel_pos)
    return model.logits(model.hidden_states(emb, cache, pos)[:, -1]).float()


def _bucket(width: int) -> int:
    return -(-width // STATIC_BUCKET) * STATIC_BUCKET


_COMPILED: dict = {}
_GRAPH_STEPS: "weakref.WeakKeyDictionary[UnifiedVoice, _StaticStep]" = weakref.WeakKeyDictionary()


def _compiled_step():
    if "step" not in _COMPILED:
        _COMPILED["step"] = torch.compile(static_decode_step, dynamic=False)
    return _COMPILED["step"]


class _StaticStep:
    """A static cache with its step: inputs copied into fixed buffers, then the step run eagerly,
    compiled, or replayed from a CUDA graph captured at the first call. A graph is bound to its
    cache's memory, so a graph step and its cache are kept per model for the next batch of the same
    shape (`release_decode_graphs` frees them)."""

    def __init__(self, model, rows: int, width: int, mode: str):
        self.model, self.mode = model, mode
        self.cache = KVCache.for_model(model, rows, width, zeros=True)
        dev = self.cache.k[0].device
        self.tokens = torch.zeros(rows, dtype=torch.long, device=dev)
        self.pos = torch.zeros(1, dtype=torch.long, device=dev)
        self.mel_pos = torch.zeros(1, dtype=torch.long, device=dev)
        self.fn = _compiled_step() if mode.startswith("compile") else static_decode_step
        self.graph, self.out = None, None

    @classmethod
    def get(cls, model, rows: int, width: int, mode: str) -> "_StaticStep":
        if "cuda_graph" not in mode:
            return cls(model, rows, width, mode)
        held = _GRAPH_STEPS.get(model)
        w = model.mel_head.weight
        if held is None or held.mode != mode or held.cache.k[0].shape[0] != rows or held.cache.max_len != width \
                or held.cache.k[0].dtype != w.dtype:
            _GRAPH_STEPS.pop(model, None)  # one graph per model: the old cache goes before the new one comes
            held = _GRAPH_STEPS[model] = cls(model, rows, width, mode)
        return held

    def __call__(self, tokens: torch.Tensor, row: int, mel_position: int) -> torch.Tensor:
        self.tokens.copy_(tokens)
        self.pos.fill_(row)  # a scalar fill: no host-device sync
        self.mel_pos.fill_(mel_position)
        if self.graph is None and "cuda_graph" in self.mode:
            self._capture()
        if self.graph is not None:
            self.graph.replay()
            return self.out
        return self._run()

    def _run(self):
        return self.fn(self.model, self.cache, self.tokens, self.pos, self.mel_pos)

    def _capture(self) -> None:
        # warm-up on a side stream (compiles, allocates), then capture; the step writes the same
        # keys/values at the same row every time it runs with the same inputs, so the extra runs change nothing
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):
                self._run()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        autocast = torch.is_autocast_enabled("cuda")
        ctx = torch.autocast("cuda", dtype=torch.get_autocast_dtype("cuda"), cache_enabled=False) if autocast \
            else contextlib.nullcontext()
        with ctx, torch.cuda.graph(graph):
            self.out = self._run()
        self.graph = graph


def release_decode_graphs(model: UnifiedVoice | None = None) -> None:
    """Free the CUDA graph steps (and their caches) kept for `model`, or for every model."""
    if model is None:
        _GRAPH_STEPS.clear()
    else:
        _GRAPH_STEPS.pop(model, None)


# ---- logits processors (spec §4.8 step 2) -----------------------------------------------------

def apply_repetition_penalty(scores: torch.Tensor, history: torch.Tensor, penalty: float) -> torch.Tensor:
    """history: running ids [B, S], or a [B, V] bool mask of the ids seen (the same result)."""
    if history.dtype == torch.bool:
        return torch.where(history, torch.where(scores < 0, scores * penalty, scores / penalty), scores)
    s = scores.gather(1, history)
    return scores.scatter(1, history, torch.where(s < 0, s * penalty, s / penalty))


def apply_top_k(scores: torch.Tensor, top_k: int, min_keep: int) -> torch.Tensor:
    k = min(max(top_k, min_keep), scores.size(-1))
    kth = torch.topk(scores, k)[0][..., -1, None]
    return scores.masked_fill(scores < kth, float("-inf"))


def apply_top_p(scores: torch.Tensor, top_p: float, min_keep: int) -> torch.Tensor:
    sorted_scores, order = torch.sort(scores, descending=False)
    cum = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
    drop = cum <= (1 - top_p)
    drop[..., -min_keep:] = False
    return scores.masked_fill(drop.scatter(1, order, drop), float("-inf"))


def suppress(scores: torch.Tensor, token: int, rows: torch.Tensor | None = None) -> torch.Tensor:
    """-inf at `token` in every row, or only in the rows where `rows` [B] is True."""
    idx = scores.new_tensor([token], dtype=torch.long)
    if rows is None:
        return scores.index_fill(1, idx, float("-inf"))
    return scores.index_copy(1, idx, scores.index_select(1, idx).masked_fill(rows[:, None], float("-inf")))


def score_processors(settings: DecodingSettings, history: torch.Tensor,
                     suppress_token: int | None = None, suppress_rows: torch.Tensor | None = None
                     ) -> list[tuple[str, Callable[[torch.Tensor], torch.Tensor]]]:
    """The official logits-processor chain as named steps, in order (a step that would change
    nothing is left out). With beams it starts from log_softmax; `suppress_token` (target mode)
    masks the stop token after the repetition penalty, in the rows `suppress_rows` [B] if given
    (a batch mixing target and natural requests). `history`: see `apply_repetition_penalty`."""
    beams = settings.num_beams
    steps = [("log_softmax", lambda s: F.log_softmax(s, dim=-1))] if beams > 1 else []
    if settings.repetition_penalty != 1.0:
        steps.append(("repetition_penalty", lambda s: apply_repetition_penalty(s, history, settings.repetition_penalty)))
    if suppress_token is not None:
        steps.append(("suppress_stop", lambda s: suppress(s, suppress_token, suppress_rows)))
    if settings.do_sample:
        min_keep = 2 if beams > 1 else 1  # the official value: one eos id, beams > 1
        if settings.temperature != 1.0:
            steps.append(("temperature", lambda s: s / settings.temperature))
        if settings.top_k != 0:
            steps.append(("top_k", lambda s: apply_top_k(s, settings.top_k, min_keep)))
        if settings.top_p < 1.0:
            steps.append(("top_p", lambda s: apply_top_p(s, settings.top_p, min_keep)))
    return steps


def process_scores(logits: torch.Tensor, history: torch.Tensor, settings: DecodingSettings,
                   suppress_token: int | None = None, suppress_rows: torch.Tensor | None = None) -> torch.Tensor:
    """Raw logits [B, V] + running ids [B, S] (or seen mask [B, V]) -> processed scores [B, V]
    (before beam scores)."""
    scores = logits.float()
    for _, step in score_processors(settings, history, suppress_token, suppress_rows):
        scores = step(scores)
    return scores


# ---- beam bookkeeping -------------------------------------------------------------------------

class BeamHypotheses:
    """Finished hypotheses (at most `num_beams`), scored sum_logprobs / generated_len**length_penalty."""

    def __init__(self, num_beams: int, length_penalty: float):
        self.num_beams = num_beams
        self.length_penalty = length_penalty
        self.beams: list[tuple[float, torch.Tensor, bool]] = []  # (score, codes, ended by stop)
        self.origins: list[tuple[int, ...]] = []  # per entry: the beam row each token was taken from
        self.worst_score = 1e9

    def add(self, codes: torch.Tensor, sum_logprobs: float, generated_len: int, finished: bool,
            origins: tuple[int, ...] = ()) -> None:
        score = sum_logprobs / (generated_len ** self.length_penalty)
        if len(self.beams) < self.num_beams or score > self.worst_score:
            self.beams.append((score, codes, finished))
            self.origins.append(tuple(origins))
            if len(self.beams) > self.num_beams:
                ranked = sorted((s, i) for i, (s, _, _) in enumerate(self.beams))
                del self.beams[ranked[0][1]]
                del self.origins[ranked[0][1]]
                self.worst_score = ranked[1][0]
            else:
                self.worst_score = min(score, self.worst_score)

    def is_done(self, best_sum_logprobs: float, generated_len: int) -> bool:
        if len(self.beams) < self.num_beams:
            return False
        return self.worst_score >= best_sum_logprobs / generated_len ** self.length_penalty

    def best(self):
        return self.beams[self._best()]

    def best_origins(self) -> tuple[int, ...]:
        return self.origins[self._best()]

    def _best(self) -> int:
        return sorted(range(len(self.beams)), key=lambda i: self.beams[i][0])[-1]  # ties: the later entry wins


# ---- generation -------------------------------------------------------------------------------

@dataclass
class GenerationResult:
    codes: torch.Tensor  # [1, T] int64 on the model's device, cut before the first stop token
    stopped: bool  # ended on the stop token (natural) or at the requested count (target mode)
    sequence: torch.Tensor  # [1, K] int64 generated tokens as the official generate returns them
    steps: int  # decode steps run
    score: float | None = None  # beam score of the returned hypothesis (beams > 1)
    target_tokens: int | None = None
    beam_indices: tuple[int, ...] | None = None  # beams > 1: the beam row each token of `sequence` came from


@torch.no_grad()  # not inference_mode: the returned codes must be usable in ordinary tensor code
def generate_codes(model: UnifiedVoice, conds: torch.Tensor, text_ids: torch.Tensor,
                   settings: DecodingSettings | None = None, target_tokens: int | None = None,
                   generator: torch.Generator | None = None, progress=None, *,
                   on_step: StepHook | None = None, lang: int | None = None) -> GenerationResult:
    """Decode semantic codes for one segment.

    conds from `model.conditioning` ([1, 34, D] for IndexTTS-2, [1, 3, D] for 2.5), text ids [L];
    `lang` is the segment's language row for a 2.5 model (which adds it to every text row) and must
    be None for IndexTTS-2. `target_tokens` asks for exactly that many codes; otherwise the model
    stops on its own, capped at `settings.max_mel_tokens`. `progress(i, total)` is called after
    every decode step and may raise to interrupt; `on_step(logits, scores)` sees each step's raw
    logits [B, V] and processed scores [B, V] (before beam scores), e.g. to inspect or record them.
    """
    return _generate(model, [conds], [text_ids], settings, [target_tokens], [generator], progress, [lang],
                     on_step=on_step)[0]


@torch.no_grad()
def generate_codes_batch(model: UnifiedVoice, conds: list[torch.Tensor], text_ids: list[torch.Tensor],
                         settings: DecodingSettings | None = None, target_tokens: list[int | None] | None = None,
                         generators: list[torch.Generator | None] | None = None, progress=None,
                         langs: list[int | None] | None = None) -> list[GenerationResult]:
    """Decode several independent segments as one batch: request i is what
    `generate_codes(model, conds[i], text_ids[i], settings, target_tokens[i], generators[i], lang=langs[i])`
    returns (the same codes; the logits agree to float rounding, as a batched matmul may round
    differently). Each request has its own conditioning, text, target (or natural stop) and
    generator; a request's draws come from its generator only, so the same seeds give the same
    codes as one by one (with None, all requests share the global generator and the draws
    interleave). `progress(step, max_steps)` is called after every batched decode step."""
    n = len(conds)
    target_tokens = [None] * n if target_tokens is None else list(target_tokens)
    generators = [None] * n if generators is None else list(generators)
    langs = [None] * n if langs is None else list(langs)
    if not (len(text_ids) == len(target_tokens) == len(generators) == len(langs) == n):
        raise ValueError(f"a batch needs one text, target, generator and lang per conditioning: {n} conds, "
                         f"{len(text_ids)} texts, {len(target_tokens)} targets, {len(generators)} generators, "
                         f"{len(langs)} langs")
    if n == 0:
        return []
    return _generate(model, list(conds), list(text_ids), settings, target_tokens, generators, progress, langs)


def _generate(model, conds, text_ids, settings, targets, generators, progress, langs, *, on_step=None,
              check_every: int | None = None) -> list[GenerationResult]:
    settings = settings or DecodingSettings()
    device = model.mel_head.weight.device
    prompts = []
    for i, (c, ids, target, generator, lang) in enumerate(zip(conds, text_ids, targets, generators, langs)):
        try:
            settings.validate(model.max_codes, target)
            if generator is not None and generator.device.type != device.type:
                raise ValueError(f"generator is on {generator.device}, the model on {device}")
            if c.dim() != 3 or c.size(0) != 1 or c.size(-1) != model.cfg.model_dim:
                raise ValueError(f"conds must be [1, N, {model.cfg.model_dim}], got {list(c.shape)}")
        except ValueError as e:
            raise e if len(conds) == 1 else ValueError(f"request {i}: {e}") from e
        # the model keeps float32 conds float32; a 2.5 model also takes the segment's language
        prompts.append(model.prompt_embeds(c.to(device), ids, **({} if lang is None else {"lang": lang})))
    steps = [t if t is not None else settings.max_mel_tokens for t in targets]
    return _Decoder(model, settings, prompts, steps, targets, generators).run(progress, on_step, check_every)


@dataclass
class _Request:
    index: int
    steps: int  # most codes (target, or the max_mel_tokens cap)
    target: int | None
    generator: torch.Generator | None
    row: int  # first of its `beams` rows in the running batch
    beam: "_BeamState | None" = None
    result: GenerationResult | None = None


class _Decoder:
    """Decodes a batch of requests (`beams` rows each) through one batched forward per token.

    Rows share one timeline: prompts are left-padded to the longest (the padding masked), so
    step k writes cache row P_max + k and embeds its code at mel position k + 2 for every row.
    Eager mode drops a finished request's rows from the batch; the static modes keep every shape
    fixed (finished rows run on unread)."""

    def __init__(self, model, settings: DecodingSettings, prompts, steps, targets, generators):
        self.model, self.settings = model, settings
        self.beams = settings.num_beams
        dev = model.mel_head.weight.device
        self.mode = settings.decode_step
        if "cuda_graph" in self.mode and dev.type != "cuda":
            log.warning("decode_step=%r needs a CUDA model (this one is on %s): the static step runs without a graph",
                        self.mode, dev)
            self.mode = "compile" if self.mode.startswith("compile") else "static"
        self.prompts, self.lens = prompts, [p.size(1) for p in prompts]
        self.top = max(self.lens)
        self.reqs = [_Request(i, s, t, g, i * self.beams) for i, (s, t, g) in enumerate(zip(steps, targets, generators))]
        rows, width = len(prompts) * self.beams, self.top + max(steps)
        if self.mode == "eager":
            self.cache, self.static = KVCache.for_model(model, rows, width), None
        else:
            self.static = _StaticStep.get(model, rows, _bucket(width), self.mode)
            self.cache = self.static.cache

    def run(self, progress, on_step, check_every) -> list[GenerationResult]:
        model, s, cache, beams = self.model, self.settings, self.cache, self.beams
        c, dev = model.cfg, model.mel_head.weight.device
        stop = c.stop_mel_token
        pads = [self.top - n for n in self.lens]
        cache.set_padding([p for p in pads for _ in range(beams)], static=self.static is not None)
        logits = torch.cat([prefill(model, p, cache.rows(slice(r.row, r.row + beams), pad)).expand(beams, -1)
                            for p, pad, r in zip(self.prompts, pads, self.reqs)])
        cache.length = self.top
        self.prompts = None
        rows, vocab = logits.shape
        seen = torch.zeros(rows, vocab, dtype=torch.bool, device=dev)  # the running ids for the repetition penalty
        seen[:, 1] = seen[:, c.start_mel_token] = True  # the fake prompt ids that count (quirk Q3)
        total = max(r.steps for r in self.reqs)
        gen = torch.zeros(rows, total, dtype=torch.long, device=dev)
        targeted = [r.target is not None for r in self.reqs]
        suppress_rows = None if all(targeted) or not any(targeted) else \
            torch.tensor(targeted, device=dev).repeat_interleave(beams)
        suppress_token = stop if any(targeted) else None
        if beams > 1:
            for r in self.reqs:
                r.beam = _BeamState(beams, s.length_penalty, dev)
        # greedy natural stops are looked at every `check` tokens (a sync each time); cutting at the
        # first stop gives the same codes, and greedy draws nothing that later segments would miss
        check = check_every or (1 if dev.type == "cpu" else STOP_CHECK_EVERY)
        deferred = check > 1 and beams == 1 and not s.do_sample
        live, unchecked = list(self.reqs), 0
        for step in range(total):
            scores = process_scores(logits, seen, s, suppress_token, suppress_rows)
            if on_step is not None:
                on_step(logits, scores)
            if beams == 1:
                tokens = scores.argmax(dim=-1)
                if s.do_sample:
                    for r in live:  # each request draws from its own generator, as one by one
                        tokens[r.row] = torch.multinomial(scores[r.row:r.row + 1].softmax(dim=-1), 1,
                                                          generator=r.generator).view(())
            else:
                parents, chosen = list(range(gen.size(0))), [0] * gen.size(0)
                for r in live:
                    t, p = r.beam.step(scores[r.row:r.row + beams], gen[r.row:r.row + beams], step, s,
                                       r.target, r.generator, stop)
                    chosen[r.row:r.row + beams] = t
                    parents[r.row:r.row + beams] = [r.row + q for q in p]
                idx = torch.tensor(parents, device=dev)
                gen.copy_(gen[idx])
                seen.copy_(seen[idx])
                cache.reorder(parents)
                tokens = torch.tensor(chosen, device=dev)
            gen[:, step] = tokens
            seen.scatter_(1, tokens.view(-1, 1), True)
            if progress is not None:
                progress(step + 1, total)
            unchecked += 1
            stopped_rows = None
            if beams == 1 and not all(r.target is not None for r in live):
                if not deferred:
                    stopped_rows = (tokens == stop).tolist()
                elif unchecked >= check:
                    stopped_rows, unchecked = (gen[:, step + 1 - unchecked:step + 1] == stop).any(dim=1).tolist(), 0
            finished = []
            for r in live:
                if r.beam is not None:
                    end = r.beam.done or step + 1 == r.steps
                else:
                    end = step + 1 == r.steps or (r.target is None and stopped_rows is not None and stopped_rows[r.row])
                if end:
                    r.result = self._result(r, gen[r.row:r.row + beams], step + 1)
                    finished.append(r)
            if finished:
                live = [r for r in live if r.result is None]
                if not live:
                    break
                if self.static is None:  # an eager batch sheds the finished rows
                    keep = torch.cat([torch.arange(r.row, r.row + beams, device=dev) for r in live])
                    cache.keep(keep)
                    gen, seen, tokens = gen[keep], seen[keep], tokens[keep]
                    suppress_rows = None if suppress_rows is None else suppress_rows[keep]
                    for i, r in enumerate(live):
                        r.row = i * beams
            if self.static is None:
                logits = decode_one_token(model, tokens, step, self.top, cache)
            else:
                logits = self.static(tokens, self.top + step, step + 2)
                cache.length = self.top + step + 1
        return [r.result for r in self.reqs]

    def _result(self, r: _Request, gen: torch.Tensor, n: int) -> GenerationResult:
        stop = self.model.cfg.stop_mel_token
        if r.beam is not None:
            seq, score, finished, origins = r.beam.finish(gen, n, r.steps, stop)
        else:
            seq, score, origins = gen[0, :n], None, None
            hits = (seq == stop).nonzero().flatten().tolist() if r.target is None else []
            finished = bool(hits)
            if hits:  # a deferred look may come after the stop: the codes end there all the same
                seq, n = seq[:hits[0] + 1], hits[0] + 1
        sequence = seq.view(1, -1).clone()
        hits = (sequence[0] == stop).nonzero().flatten().tolist()
        code_len = hits[0] if hits else sequence.size(1)
        codes = sequence[:, :code_len].clone()
        stopped = finished or r.target is not None
        if not stopped:
            log.warning("no stop token within %d codes: all %d codes are kept (raise max_mel_tokens or shorten "
                        "the segment)", r.steps, code_len)
        elif code_len == 0:
            log.warning("the model emitted the stop token at the first step: no codes")
        return GenerationResult(codes, stopped, sequence, n, score, r.target, origins)


class _BeamState:
    """One request's beam search / beam sampling with the official scorer (spec §4.8 steps 3–6,
    finalisation): its running scores, finished hypotheses and the row every token came from."""

    def __init__(self, beams: int, length_penalty: float, dev):
        self.beams = beams
        self.scores = torch.full((beams,), INITIAL_BEAM_SCORE, dtype=torch.float32, device=dev)
        self.scores[0] = 0.0
        self.hyps = BeamHypotheses(beams, length_penalty)
        self.origins: list[tuple[int, ...]] = [()] * beams  # per running beam: the row each of its tokens came from
        self.done = False

    def step(self, scores, gen, step, settings, target, generator, stop) -> tuple[list[int], list[int]]:
        """Processed scores [beams, V] and this request's generated rows -> (tokens, parent rows)."""
        beams, vocab = scores.shape
        n_cand = 2 * beams  # max(2, 1 + one eos id) * beams
        flat = (scores + self.scores[:, None]).view(1, beams * vocab)
        if settings.do_sample:
            idx = torch.multinomial(flat.softmax(dim=-1), n_cand, generator=generator)  # without replacement
            top = flat.gather(1, idx)
            top, order = top.sort(dim=1, descending=True)
            idx = idx.gather(1, order)
        else:
            top, idx = torch.topk(flat, n_cand, dim=1, largest=True, sorted=True)
        cand_scores, cand_idx = top[0].tolist(), idx[0].tolist()
        new_scores, new_tokens, parents = [], [], []
        for rank, (sc, i) in enumerate(zip(cand_scores, cand_idx)):
            parent, token = divmod(i, vocab)
            if token == stop:
                if rank >= beams or target is not None:  # target mode: the stop token never finishes
                    continue
                self.hyps.add(gen[parent, :step].clone(), sc, step + 1, finished=True,
                              origins=self.origins[parent] + (parent,))
            else:
                new_scores.append(sc)
                new_tokens.append(token)
                parents.append(parent)
            if len(new_tokens) == beams:
                break
        self.done = self.hyps.is_done(max(cand_scores), step + 1)
        self.scores = torch.tensor(new_scores, dtype=torch.float32, device=scores.device)
        self.origins = [self.origins[p] + (p,) for p in parents]
        return new_tokens, parents

    def finish(self, gen, n, steps, stop):
        """The best hypothesis after n steps (gen: this request's rows, reordered, step n-1 written)."""
        if not self.done:  # running beams join the hypotheses with their current scores
            for b, sc in enumerate(self.scores.tolist()):
                self.hyps.add(gen[b, :n].clone(), sc, n, finished=False, origins=self.origins[b])
        score, codes, finished = self.hyps.best()
        if codes.numel() < steps:  # the official output appends the stop token below the length limit
            codes = torch.cat((codes, codes.new_tensor([stop])))
        return codes, score, finished, self.hyps.best_origins()
