"""Emotion vectors (spec §5.1, §5.2, quirks Q10, Q11, Q17).

Shapes: D = GPT model_dim (width of `feat2.pt`), S = CAMPPlus style width (width of `feat1.pt`),
N = sum(emo_num) prototype rows, B batch (1 in the official pipeline).

* Audio mode (§5.1): `emovec = b + α·(e − b)` with b / e the GPT emotion vectors of the speaker
  and the emotion prompt (`blend_emovec`). α is not clamped there.
* Vector mode (§5.2): 8 weights `w` in the order of `EMOTIONS`. When α ≠ 1 (after clamping to
  [0, 1]) every weight becomes `trunc(w·α·10⁴)/10⁴` (`scale_vector`). For each emotion k one
  prototype row r_k of its block is picked (`EmotionMatrices.select_rows`: cosine similarity of
  the speaker's CAMPPlus style to the rows of `feat1.pt`, or random rows), then
  `M = Σ_k w_k·feat2_k[r_k]` [1, D] (`mix`) and `emovec = M + (1 − Σw)·e_spk` (`vector_emovec`).
* The API applies no normalisation (Q10): weights may sum above 1, which gives the speaker's own
  emotion a negative weight. The web UI's `normalize_emo_vec` (biases, total capped at 0.8) is
  `normalize_webui`, off unless a caller applies it.
"""

from __future__ import annotations

import logging
import math
import numbers
import random
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from ..checkpoints import read_tensor

log = logging.getLogger(__name__)

# The one definition of the emotion order (index k of every vector, block k of feat1/feat2).
EMOTIONS = ("happy", "angry", "sad", "afraid", "disgusted", "melancholic", "surprised", "calm")
# Labels the Qwen text-emotion model emits, same order.
EMOTIONS_ZH = ("高兴", "愤怒", "悲伤", "恐惧", "反感", "低落", "惊讶", "自然")

WEBUI_BIASES = (0.9375, 0.875, 1.0, 1.0, 0.9375, 0.9375, 0.6875, 0.5625)  # webui normalize_emo_vec
WEBUI_MAX_TOTAL = 0.8
COSINE_EPS = 1e-8


MAX_WEIGHT = 2.0  # beyond this the mix extrapolates far outside anything the model was trained on


def validate_weights(weights, *, allow_all_zero: bool = False) -> list[float]:
    """The 8 emotion weights as Python floats; ValueError for a wrong length, non-numbers, NaN/Inf,
    values outside [0, MAX_WEIGHT], or (unless allowed) all zeros, which would leave the speaker's
    emotion as is."""
    if isinstance(weights, torch.Tensor):
        if weights.dim() != 1:
            raise ValueError(f"emotion vector must be 1-D with {len(EMOTIONS)} values, got shape {list(weights.shape)}")
        weights = weights.detach().cpu().tolist()
    if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence):
        raise ValueError(f"emotion vector must be a sequence of {len(EMOTIONS)} numbers, got {type(weights).__name__}")
    if len(weights) != len(EMOTIONS):
        raise ValueError(f"emotion vector needs {len(EMOTIONS)} values ({', '.join(EMOTIONS)}), got {len(weights)}")
    out = []
    for name, w in zip(EMOTIONS, weights):
        if isinstance(w, bool) or not isinstance(w, numbers.Real):
            raise ValueError(f"emotion weight '{name}' is not a number: {w!r}")
        w = float(w)
        if not math.isfinite(w):
            raise ValueError(f"emotion weight '{name}' is not finite: {w}")
        if not 0 <= w <= MAX_WEIGHT:
            raise ValueError(f"emotion weight '{name}' must be between 0 and {MAX_WEIGHT} (1 is the emotion at full "
                             f"strength), got {w}")
        out.append(w)
    if not allow_all_zero and not any(out):
        raise ValueError("emotion vector is all zeros: it would not change the speaker's own emotion; "
                         "give at least one positive weight or use no emotion vector")
    return out


def _check_alpha(alpha) -> float:
    if isinstance(alpha, torch.Tensor):
        if alpha.numel() != 1:
            raise ValueError(f"emo_alpha must be a single number, got shape {list(alpha.shape)}")
        alpha = alpha.item()
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not math.isfinite(alpha):
        raise ValueError(f"emo_alpha must be a finite number, got {alpha!r}")
    return float(alpha)


def scale_vector(weights, alpha: float) -> list[float]:
    """Official α scaling of a weight vector (§5.2 step 1, Q11).

    α is clamped to [0, 1] as the official code does (logged when it changes); when the clamped α is
    not 1 each weight becomes int(w·α·10000)/10000 in Python float arithmetic (truncation toward zero
    to 4 decimals). When nothing is left (α = 0, or weights truncated to 0) the zeros are returned,
    as upstream: the emotion vector is then the speaker's own (M = 0, 1 − Σw = 1); a warning says so.
    """
    w = validate_weights(weights)
    a = _check_alpha(alpha)
    clamped = min(max(a, 0.0), 1.0)
    if clamped != a:
        log.warning("emo_alpha %s outside [0, 1] for an emotion vector; clamped to %s (official behaviour)", a, clamped)
    if clamped != 1.0:
        w = [int(x * clamped * 10000) / 10000 for x in w]
    if not any(w):
        log.warning("emotion vector is all zeros after scaling by emo_alpha=%s: the speaker's own emotion is "
                    "used (official behaviour)", a)
    return w


def normalize_webui(weights, biases: Sequence[float] = WEBUI_BIASES, max_total: float = WEBUI_MAX_TOTAL) -> list[float]:
    """The web UI's `normalize_emo_vec` (not applied by the API, Q17): multiply by per-emotion biases,
    then, if the total exceeds `max_total`, rescale so that it equals `max_total`."""
    w = validate_weights(weights, allow_all_zero=True)
    if len(biases) != len(EMOTIONS):
        raise ValueError(f"need {len(EMOTIONS)} biases, got {len(biases)}")
    w = [x * b for x, b in zip(w, biases)]
    total = sum(w)
    if total > max_total:
        scale = max_total / total
        w = [x * scale for x in w]
    return w


def blend_emovec(base: torch.Tensor, emo: torch.Tensor, alpha: float) -> torch.Tensor:
    """Audio mode (§5.1): base + α·(emo − base); base / emo [B, D] from the GPT's get_emovec.
    α is not clamped here (the official code does not clamp it in this path)."""
    a = _check_alpha(alpha)
    if base.shape != emo.shape:
        raise ValueError(f"speaker and emotion vectors differ in shape: {list(base.shape)} vs {list(emo.shape)}")
    return base + a * (emo - base)


def _weight_tensor(weights, device, dtype=torch.float32) -> torch.Tensor:
    # official: torch.tensor(list of Python floats) → float32
    return torch.tensor(validate_weights(weights, allow_all_zero=True), dtype=dtype, device=device)


def vector_emovec(mix: torch.Tensor, weights, speaker_emovec: torch.Tensor) -> torch.Tensor:
    """Vector mode (§5.2 step 4): M + (1 − Σw)·e_spk → [B, D]. `speaker_emovec` [B, D] is the speaker
    audio's own emotion vector (merge_emovec with α = 1); Σw > 1 is allowed as in the official code (Q10)."""
    if mix.dim() != 2 or speaker_emovec.dim() != 2 or mix.shape[-1] != speaker_emovec.shape[-1]:
        raise ValueError(f"emotion mix {list(mix.shape)} and speaker emotion vector {list(speaker_emovec.shape)} "
                         "must both be [B, D] with the same D")
    w = _weight_tensor(weights, speaker_emovec.device)
    total = w.sum()
    if total.item() > 1:
        log.info("emotion weights sum to %.4f > 1: the speaker's own emotion gets a negative weight", total.item())
    return mix.to(speaker_emovec.device) + (1 - total) * speaker_emovec


class EmotionMatrices:
    """The emotion prototypes: `spk_matrix` (feat1.pt, [N, S]) and `emo_matrix` (feat2.pt, [N, D]),
    both split along rows into 8 consecutive blocks of `emo_num` rows, block k = emotion k."""

    def __init__(self, spk_matrix: torch.Tensor, emo_matrix: torch.Tensor, emo_num: Sequence[int]):
        emo_num = tuple(int(n) for n in emo_num)
        if len(emo_num) != len(EMOTIONS) or any(n <= 0 for n in emo_num):
            raise ValueError(f"emo_num must list {len(EMOTIONS)} positive block sizes, got {list(emo_num)}")
        for name, m in (("speaker matrix (feat1)", spk_matrix), ("emotion matrix (feat2)", emo_matrix)):
            if m.dim() != 2:
                raise ValueError(f"{name} must be 2-D [rows, width], got shape {list(m.shape)}")
            if m.shape[0] != sum(emo_num):
                raise ValueError(f"{name} has {m.shape[0]} rows but emo_num {list(emo_num)} sums to {sum(emo_num)}")
            if not m.is_floating_point() or not torch.isfinite(m).all():
                raise ValueError(f"{name} must hold finite floating-point values")
        self.spk_matrix = spk_matrix
        self.emo_matrix = emo_matrix
        self.emo_num = emo_num

    @classmethod
    def load(cls, spk_matrix_path: str | Path, emo_matrix_path: str | Path, emo_num: Sequence[int],
             model_dim: int | None = None) -> "EmotionMatrices":
        """Read feat1.pt / feat2.pt; `model_dim` (the GPT width), when given, is checked against feat2."""
        m = cls(read_tensor(spk_matrix_path), read_tensor(emo_matrix_path), emo_num)
        if model_dim is not None and m.emo_matrix.shape[1] != model_dim:
            raise ValueError(f"{emo_matrix_path}: emotion matrix width {m.emo_matrix.shape[1]} "
                             f"does not match the GPT model_dim {model_dim}")
        return m

    def to(self, device=None, dtype: torch.dtype | None = None) -> "EmotionMatrices":
        return EmotionMatrices(self.spk_matrix.to(device, dtype), self.emo_matrix.to(device, dtype), self.emo_num)

    @property
    def dim(self) -> int:
        return self.emo_matrix.shape[1]

    def _blocks(self, matrix: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return torch.split(matrix, self.emo_num, dim=0)

    def select_rows(self, style: torch.Tensor | None = None, use_random: bool = False,
                    rng: random.Random | None = None) -> list[int]:
        """One row index per emotion block (§5.2 step 2).

        use_random=False: argmax over the block of cos(style, feat1 row) (eps 1e-8; first on ties);
        `style` [1, S] or [S] is the speaker's CAMPPlus vector.
        use_random=True: rng.randint(0, emo_num[k] − 1) for k in order, as the official code does with
        Python's global `random`; pass a seeded `random.Random` for reproducible rows (a fresh
        unseeded one is used when rng is None).
        """
        if use_random:
            rng = rng if rng is not None else random.Random()
            return [rng.randint(0, n - 1) for n in self.emo_num]
        if style is None:
            raise ValueError("select_rows needs the speaker's CAMPPlus style vector unless use_random=True")
        if style.dim() == 1:
            style = style.unsqueeze(0)
        if style.dim() != 2 or style.shape[0] != 1 or style.shape[1] != self.spk_matrix.shape[1]:
            raise ValueError(f"style must be [1, {self.spk_matrix.shape[1]}] (CAMPPlus width of feat1), "
                             f"got {list(style.shape)}")
        if not torch.isfinite(style).all():
            raise ValueError("style vector contains NaN or Inf")
        style = style.to(self.spk_matrix.device, self.spk_matrix.dtype)
        return [int(torch.argmax(F.cosine_similarity(style, block, dim=1, eps=COSINE_EPS)).item())
                for block in self._blocks(self.spk_matrix)]

    def rows(self, indices: Sequence[int]) -> torch.Tensor:
        """feat2 row indices[k] of block k for every emotion → [8, D]."""
        if len(indices) != len(EMOTIONS):
            raise ValueError(f"need {len(EMOTIONS)} row indices, got {len(indices)}")
        picked = []
        for name, n, i, block in zip(EMOTIONS, self.emo_num, indices, self._blocks(self.emo_matrix)):
            if not 0 <= int(i) < n:
                raise ValueError(f"row index {i} for '{name}' outside its block of {n} rows")
            picked.append(block[int(i)])
        return torch.stack(picked, dim=0)

    def mix(self, weights, indices: Sequence[int]) -> torch.Tensor:
        """M = Σ_k w_k · feat2_k[indices[k]] → [1, D] (§5.2 step 3)."""
        rows = self.rows(indices)
        w = _weight_tensor(weights, rows.device).to(rows.dtype)
        return (w.unsqueeze(1) * rows).sum(dim=0, keepdim=True)

    def emovec(self, weights, style: torch.Tensor | None, speaker_emovec: torch.Tensor, *,
               use_random: bool = False, rng: random.Random | None = None) -> torch.Tensor:
        """The whole vector mode for already-scaled weights: select rows, mix, add (1 − Σw)·e_spk."""
        w = validate_weights(weights)
        indices = self.select_rows(style, use_random=use_random, rng=rng)
        return vector_emovec(self.mix(w, indices), w, speaker_emovec)
