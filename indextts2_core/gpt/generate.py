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

Shape legend: B beams (1 for greedy/sampling), V number_mel_codes, P prompt rows
(34 + L+2 + 1), S_max cache rows, H heads, Dh head width, D model_dim.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .model import UnifiedVoice

log = logging.getLogger(__name__)

StepHook = Callable[[torch.Tensor, torch.Tensor], None]  # (raw logits [B, V], processed scores [B, V])

MAX_BEAMS = 16
INITIAL_BEAM_SCORE = -1e9  # beams 1.. start "dead" so step 0 expands beam 0 only


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
    """Static per-layer key/value buffers [B, H, S_max, Dh]; `update` writes at a position and
    returns views of everything written so far."""

    def __init__(self, layers: int, batch: int, heads: int, max_len: int, head_dim: int, device, dtype):
        shape = (batch, heads, max_len, head_dim)
        # never read beyond what was written, so no zero fill (pages stay untouched until used)
        self.k = [torch.empty(shape, device=device, dtype=dtype) for _ in range(layers)]
        self.v = [torch.empty(shape, device=device, dtype=dtype) for _ in range(layers)]
        self.max_len = max_len
        self.length = 0  # positions written

    @classmethod
    def for_model(cls, model: UnifiedVoice, batch: int, max_len: int) -> "KVCache":
        c, w = model.cfg, model.mel_head.weight
        return cls(c.layers, batch, c.heads, max_len, c.model_dim // c.heads, w.device, w.dtype)

    def update(self, layer: int, start: int, k: torch.Tensor, v: torch.Tensor):
        end = start + k.size(2)
        if end > self.max_len:
            raise RuntimeError(f"KV cache overflow: position {end} > {self.max_len}")
        self.k[layer][:, :, start:end] = k  # a batch-1 prefill broadcasts to every beam
        self.v[layer][:, :, start:end] = v
        self.length = max(self.length, end)
        b = k.size(0)  # a broadcast prefill reads back one row
        return self.k[layer][:b, :, :end], self.v[layer][:b, :, :end]

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


# ---- logits processors (spec §4.8 step 2) -----------------------------------------------------

def apply_repetition_penalty(scores: torch.Tensor, history: torch.Tensor, penalty: float) -> torch.Tensor:
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


def score_processors(settings: DecodingSettings, history: torch.Tensor,
                     suppress_token: int | None = None) -> list[tuple[str, Callable[[torch.Tensor], torch.Tensor]]]:
    """The official logits-processor chain as named steps, in order (a step that would change
    nothing is left out). With beams it starts from log_softmax; `suppress_token` (target mode)
    masks the stop token after the repetition penalty."""
    beams = settings.num_beams
    steps = [("log_softmax", lambda s: F.log_softmax(s, dim=-1))] if beams > 1 else []
    if settings.repetition_penalty != 1.0:
        steps.append(("repetition_penalty", lambda s: apply_repetition_penalty(s, history, settings.repetition_penalty)))
    if suppress_token is not None:
        steps.append(("suppress_stop", lambda s: s.index_fill(1, s.new_tensor([suppress_token], dtype=torch.long),
                                                               float("-inf"))))
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
                   suppress_token: int | None = None) -> torch.Tensor:
    """Raw logits [B, V] + running ids [B, S] -> processed scores [B, V] (before beam scores)."""
    scores = logits.float()
    for _, step in score_processors(settings, history, suppress_token):
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
    settings = settings or DecodingSettings()
    stop = model.cfg.stop_mel_token
    settings.validate(model.max_codes, target_tokens)
    steps = target_tokens if target_tokens is not None else settings.max_mel_tokens
    device = model.mel_head.weight.device
    if generator is not None and generator.device.type != device.type:
        raise ValueError(f"generator is on {generator.device}, the model on {device}")
    if conds.dim() != 3 or conds.size(0) != 1 or conds.size(-1) != model.cfg.model_dim:
        raise ValueError(f"conds must be [1, N, {model.cfg.model_dim}], got {list(conds.shape)}")

    # the model keeps float32 conds float32; a 2.5 model also takes the segment's language
    prompt = model.prompt_embeds(conds.to(device), text_ids, **({} if lang is None else {"lang": lang}))
    beams = settings.num_beams
    cache = KVCache.for_model(model, beams, prompt.size(1) + steps)
    logits = prefill(model, prompt, cache).expand(beams, -1)
    run = _run_beams if beams > 1 else _run_single
    seq, score, finished, done_steps, origins = run(model, logits, cache, prompt.size(1), steps, settings,
                                                    target_tokens, generator, progress, on_step)
    sequence = seq.view(1, -1)
    hits = (sequence[0] == stop).nonzero().flatten().tolist()
    code_len = hits[0] if hits else sequence.size(1)
    codes = sequence[:, :code_len].clone()
    stopped = finished or target_tokens is not None
    if not stopped:
        log.warning("no stop token within %d codes: all %d codes are kept (raise max_mel_tokens or shorten "
                    "the segment)", steps, code_len)
    elif code_len == 0:
        log.warning("the model emitted the stop token at the first step: no codes")
    return GenerationResult(codes, stopped, sequence, done_steps, score, target_tokens, origins)


def _history(prefix: torch.Tensor, gen: torch.Tensor, step: int) -> torch.Tensor:
    return torch.cat((prefix, gen[:, :step]), dim=1)


def _run_single(model, logits, cache, prompt_len, steps, settings, target, generator, progress, on_step):
    """Greedy (argmax) or sampling (one multinomial draw) with one running sequence."""
    stop, dev = model.cfg.stop_mel_token, logits.device
    prefix = torch.tensor([[1, model.cfg.start_mel_token]], device=dev)  # the fake prompt ids that count
    gen = torch.zeros(1, steps, dtype=torch.long, device=dev)
    finished = False
    for step in range(steps):
        scores = process_scores(logits, _history(prefix, gen, step), settings,
                                stop if target is not None else None)
        if on_step is not None:
            on_step(logits, scores)
        if settings.do_sample:
            token = torch.multinomial(scores.softmax(dim=-1), 1, generator=generator).view(1)
        else:
            token = scores.argmax(dim=-1)
        gen[:, step] = token
        if progress is not None:
            progress(step + 1, steps)
        if target is None and int(token) == stop:
            finished = True
            break
        if step + 1 < steps:
            logits = decode_one_token(model, token, step, prompt_len, cache)
    return gen[0, :step + 1], None, finished, step + 1, None


def _run_beams(model, logits, cache, prompt_len, steps, settings, target, generator, progress, on_step):
    """Beam search / beam sampling with the official scorer (spec §4.8 steps 3–6, finalisation)."""
    stop, dev = model.cfg.stop_mel_token, logits.device
    beams, vocab = logits.shape
    prefix = torch.tensor([[1, model.cfg.start_mel_token]], device=dev).expand(beams, -1)
    gen = torch.zeros(beams, steps, dtype=torch.long, device=dev)
    beam_scores = torch.full((beams,), INITIAL_BEAM_SCORE, dtype=torch.float32, device=dev)
    beam_scores[0] = 0.0
    hyps = BeamHypotheses(beams, settings.length_penalty)
    origins: list[tuple[int, ...]] = [()] * beams  # per running beam: the row each of its tokens came from
    n_cand = 2 * beams  # max(2, 1 + one eos id) * beams
    done = False
    for step in range(steps):
        scores = process_scores(logits, _history(prefix, gen, step), settings,
                                stop if target is not None else None)
        if on_step is not None:
            on_step(logits, scores)
        flat = (scores + beam_scores[:, None]).view(1, beams * vocab)
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
                hyps.add(gen[parent, :step].clone(), sc, step + 1, finished=True,
                         origins=origins[parent] + (parent,))
            else:
                new_scores.append(sc)
                new_tokens.append(token)
                parents.append(parent)
            if len(new_tokens) == beams:
                break
        done = hyps.is_done(max(cand_scores), step + 1)
        parent_idx = torch.tensor(parents, device=dev)
        beam_scores = torch.tensor(new_scores, dtype=torch.float32, device=dev)
        gen = gen[parent_idx]
        origins = [origins[p] + (p,) for p in parents]
        tokens = torch.tensor(new_tokens, device=dev)
        gen[:, step] = tokens
        cache.reorder(parents)
        if progress is not None:
            progress(step + 1, steps)
        if done or step + 1 == steps:
            break
        logits = decode_one_token(model, tokens, step, prompt_len, cache)
    n = step + 1
    if not done:  # running beams join the hypotheses with their current scores
        for b, sc in enumerate(beam_scores.tolist()):
            hyps.add(gen[b, :n].clone(), sc, n, finished=False, origins=origins[b])
    score, codes, finished = hyps.best()
    if codes.numel() < steps:  # the official output appends the stop token below the length limit
        codes = torch.cat((codes, codes.new_tensor([stop])))
    return codes, score, finished, n, hyps.best_origins()
