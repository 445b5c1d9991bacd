"""Conditional flow matching sampler of S2M (spec §6.5): Euler steps over t in [0, 1] with
classifier-free guidance. The velocity network is injected (`estimator`, the DiT); this file holds
the algorithm only.

Shape legend:
    B  batch (1 in the pipeline)
    P  prompt mel frames (the speaker reference)
    F  target mel frames
    T  P + F
    M  mel bins (80)
    Cc content width of mu
    S  style width (192)
"""

from __future__ import annotations

import math
import numbers
from typing import Callable, Sequence

import torch
from torch import nn

DEFAULT_STEPS = 25  # official n_timesteps
DEFAULT_CFG_RATE = 0.7  # official inference_cfg_rate


def _check_finite(name: str, x: torch.Tensor) -> None:
    if not torch.isfinite(x).all():
        raise ValueError(f"flow matching: {name} contains NaN or Inf")


def validate(mu: torch.Tensor, prompt_mel: torch.Tensor, style: torch.Tensor, steps: int, cfg_rate: float,
             noise: torch.Tensor | None, in_channels: int | None = None) -> None:
    """Raise ValueError naming the first bad argument of `sample`."""
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps <= 0:
        raise ValueError(f"flow matching: steps must be a positive integer, got {steps!r}")
    if isinstance(cfg_rate, bool) or not isinstance(cfg_rate, (int, float)) or not math.isfinite(cfg_rate):
        raise ValueError(f"flow matching: cfg_rate must be a finite number, got {cfg_rate!r}")
    if mu.dim() != 3 or mu.shape[1] == 0:
        raise ValueError(f"flow matching: mu must be [B, T, C] with T > 0, got {list(mu.shape)}")
    b, total = mu.shape[0], mu.shape[1]
    if prompt_mel.dim() != 3 or prompt_mel.shape[0] != b:
        raise ValueError(f"flow matching: prompt_mel must be [{b}, M, P], got {list(prompt_mel.shape)}")
    if in_channels is not None and prompt_mel.shape[1] != in_channels:
        raise ValueError(f"flow matching: prompt_mel has {prompt_mel.shape[1]} mel bins, the model {in_channels}")
    if prompt_mel.shape[2] >= total:
        raise ValueError(f"flow matching: prompt ({prompt_mel.shape[2]} frames) leaves no target frames in mu "
                         f"({total} frames); mu must cover prompt + target")
    if style.dim() != 2 or style.shape[0] != b:
        raise ValueError(f"flow matching: style must be [{b}, S], got {list(style.shape)}")
    want = (b, prompt_mel.shape[1], total)
    if noise is not None and tuple(noise.shape) != want:
        raise ValueError(f"flow matching: noise must have shape {list(want)}, got {list(noise.shape)}")
    for name, x in (("mu", mu), ("prompt_mel", prompt_mel), ("style", style)) + (
            (("noise", noise),) if noise is not None else ()):
        _check_finite(name, x)


def cfg_batch(x: torch.Tensor, prompt_x: torch.Tensor, style: torch.Tensor, mu: torch.Tensor,
              t: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The estimator inputs of one guided step: conditional rows, then null rows (zero prompt,
    style and content; same x and t). t is a 0-dim tensor; returns (x, prompt_x, t [2B], style, mu)."""
    b = x.shape[0]
    return (torch.cat([x, x]), torch.cat([prompt_x, torch.zeros_like(prompt_x)]),
            t.reshape(1).expand(2 * b), torch.cat([style, torch.zeros_like(style)]),
            torch.cat([mu, torch.zeros_like(mu)]))


def _model_dtype(estimator: nn.Module, fallback: torch.dtype) -> torch.dtype:
    p = next(estimator.parameters(), None)
    return p.dtype if p is not None else fallback


@torch.no_grad()
def sample(estimator: nn.Module, mu: torch.Tensor, prompt_mel: torch.Tensor, style: torch.Tensor,
           steps: int = DEFAULT_STEPS, cfg_rate: float = DEFAULT_CFG_RATE, noise: torch.Tensor | None = None,
           generator: torch.Generator | None = None,
           progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Euler-integrate the guided velocity from noise at t=0 to a mel at t=1.

    mu [B, T, Cc] covers prompt + target; prompt_mel [B, M, P]; style [B, S]. `noise` [B, M, T]
    (the official torch.randn, temperature 1) is drawn with `generator` on mu's device when not
    given. `progress(i, steps)` is called after each step i = 1..steps and may raise to stop.
    Returns the target mel [B, M, F] (F = T - P), float32. The integration state stays float32;
    the estimator sees its own dtype.
    """
    validate(mu, prompt_mel, style, steps, cfg_rate, noise, getattr(estimator, "in_channels", None))
    b, total = mu.shape[0], mu.shape[1]
    mels, plen = prompt_mel.shape[1], prompt_mel.shape[2]
    device = mu.device
    dtype = _model_dtype(estimator, mu.dtype)
    if noise is None:  # on the generator's device (official: the compute device), then moved
        where = generator.device if generator is not None else device
        noise = torch.randn((b, mels, total), generator=generator, device=where, dtype=torch.float32)
    x = noise.to(device=device, dtype=torch.float32).clone()
    x[:, :, :plen] = 0  # noise is drawn over the whole length, then the prompt region is cleared
    prompt_x = torch.zeros((b, mels, total), device=device, dtype=dtype)
    prompt_x[:, :, :plen] = prompt_mel.to(device=device, dtype=dtype)
    mu, style = mu.to(device=device, dtype=dtype), style.to(device=device, dtype=dtype)

    return _euler(estimator, x, prompt_x, style, mu, int(steps), cfg_rate, _clear_prompt(plen), None,
                  progress)[:, :, plen:]


def _clear_prompt(plen: int):
    def clear(x: torch.Tensor) -> None:
        x[:, :, :plen] = 0
    return clear


def _euler(estimator, x, prompt_x, style, mu, steps, cfg_rate, clear, lengths, progress) -> torch.Tensor:
    """The guided Euler loop shared by `sample` and `sample_batch`; `clear(x)` zeroes what is not
    target after every step, `lengths` (or None) is passed on to the estimator."""
    b, device, dtype = x.shape[0], x.device, prompt_x.dtype
    extra = {} if lengths is None else {"lengths": lengths}
    extra2 = {} if lengths is None else {"lengths": torch.cat([lengths, lengths])}
    t_span = torch.linspace(0, 1, steps + 1, device=device, dtype=torch.float32)
    t = t_span[0]
    for step in range(1, steps + 1):
        dt = t_span[step] - t_span[step - 1]
        if cfg_rate == 0:  # guidance off: (1 + 0)·v_c − 0·v_u is v_c, so skip the null half
            v = estimator(x.to(dtype), prompt_x, t.reshape(1).expand(b), style, mu, **extra).float()
        else:  # conditional and null rows as one batch of 2B
            out = estimator(*cfg_batch(x.to(dtype), prompt_x, style, mu, t), **extra2).float()
            v_c, v_u = out[:b], out[b:]
            v = (1.0 + cfg_rate) * v_c - cfg_rate * v_u
        x = x + dt * v
        t = t + dt  # accumulated in float32, not re-read from t_span (official)
        clear(x)
        if progress is not None:
            progress(step, steps)
    return x


@torch.no_grad()
def sample_batch(estimator: nn.Module, mus: Sequence[torch.Tensor], prompt_mels: Sequence[torch.Tensor],
                 styles: Sequence[torch.Tensor], steps: int = DEFAULT_STEPS, cfg_rate: float = DEFAULT_CFG_RATE,
                 noises: Sequence[torch.Tensor | None] | None = None,
                 generators: Sequence[torch.Generator | None] | None = None,
                 progress: Callable[[int, int], None] | None = None) -> list[torch.Tensor]:
    """Several independent segments (each its own prompt, style and length) integrated as one
    batch: segment i gets what `sample(estimator, mus[i], prompt_mels[i], styles[i], steps,
    cfg_rate, noises[i], generators[i])` gives it alone, to float rounding (the estimator must
    take `lengths`, as the DiT does: rows are right-padded to the longest and masked). The noise
    of segment i is drawn from generators[i] exactly as `sample` draws it. mus[i] [1, T_i, Cc],
    prompt_mels[i] [1, M, P_i], styles[i] [1, S]; returns the target mels [1, M, T_i − P_i]."""
    n = len(mus)
    noises = [None] * n if noises is None else list(noises)
    generators = [None] * n if generators is None else list(generators)
    if not (len(prompt_mels) == len(styles) == len(noises) == len(generators) == n):
        raise ValueError("flow matching: a batch needs one prompt mel, style, noise and generator per mu")
    if n == 0:
        return []
    in_channels = getattr(estimator, "in_channels", None)
    for i, (mu, pm, st, nz) in enumerate(zip(mus, prompt_mels, styles, noises)):
        try:
            validate(mu, pm, st, steps, cfg_rate, nz, in_channels)
            if mu.shape[0] != 1:
                raise ValueError(f"flow matching: batch segments must be [1, T, C] each, got {list(mu.shape)}")
        except ValueError as e:
            raise ValueError(f"segment {i}: {e}") from e
    device = mus[0].device
    dtype = _model_dtype(estimator, mus[0].dtype)
    mels = prompt_mels[0].shape[1]
    lengths = [mu.shape[1] for mu in mus]
    plens = [pm.shape[2] for pm in prompt_mels]
    total = max(lengths)
    x = torch.zeros((n, mels, total), device=device, dtype=torch.float32)
    prompt_x = torch.zeros((n, mels, total), device=device, dtype=dtype)
    mu = torch.zeros((n, total, mus[0].shape[2]), device=device, dtype=dtype)
    target = torch.zeros((n, 1, total), device=device, dtype=torch.bool)
    for i, (m, pm, nz, g, length, plen) in enumerate(zip(mus, prompt_mels, noises, generators, lengths, plens)):
        if nz is None:  # drawn as `sample` draws it: [1, M, T_i] on the generator's device
            where = g.device if g is not None else device
            nz = torch.randn((1, mels, length), generator=g, device=where, dtype=torch.float32)
        x[i, :, plen:length] = nz[0, :, plen:].to(device=device, dtype=torch.float32)
        prompt_x[i, :, :plen] = pm[0].to(device=device, dtype=dtype)
        mu[i, :length] = m[0].to(device=device, dtype=dtype)
        target[i, :, plen:length] = True
    style = torch.cat([st.to(device=device, dtype=dtype) for st in styles])

    def clear(y: torch.Tensor) -> None:
        y.masked_fill_(~target, 0.0)  # prompt frames, as `sample`, and the padding (kept finite)

    same = len(set(lengths)) == 1  # equal lengths need no mask (the plain path)
    x = _euler(estimator, x, prompt_x, style, mu, int(steps), cfg_rate, clear,
               None if same else torch.tensor(lengths), progress)  # lengths stay on the host
    return [x[i:i + 1, :, plen:length] for i, (plen, length) in enumerate(zip(plens, lengths))]
