"""UnifiedVoice v2: the IndexTTS2 text-to-semantic GPT (spec §4).

Conditioning encoders (conformer + perceiver for the speaker, a second pair for emotion), the
emotion-vector projections, two constant "speed" rows, text/mel token embeddings with their own
learned position tables, a GPT-2 stack (HF names and `Conv1D` [in, out] weights, no `wte`/`wpe`),
`ln_f`, `final_norm` and the mel head. The decoding loop lives in `generate.py`; this file only
embeds, runs the stack (optionally into a static KV cache) and projects.

Sequence layout (batch 1, L text ids, spec §4.7 / §4.10):
    [conds (34 rows: 32 speaker latents + emovec, speed[1], speed[0])]
    [0, t_1..t_L, 1] + text_pos[0..L+1]
    [8192] + mel_pos[0], then generated codes c_k + mel_pos[k+2]        (generation, quirk Q2)
    [8192, c_0..c_{T-1}, 8193] + mel_pos[0..T+1]                         (latent pass, contiguous)

Shape legend:
    B batch (beams), T frames / tokens, L text ids, D model_dim, H heads, Dh = D / H,
    V number_mel_codes, W = 1024 conditioning feature width.

Half precision follows the official `use_fp16` run (the whole model `.half()` under CUDA
autocast), written out so that it does not depend on autocast's per-device op lists (CPU autocast,
for one, leaves LayerNorm in half). bf16 is the pack's own option for IndexTTS-2 (upstream has fp16
only) with the same flow, which is also the official 2.5 `use_bf16` one:
    * the residual stream of the GPT-2 stack is float32: HF GPT2Model adds the (null, float32 zero)
      position embedding to `inputs_embeds`, which promotes every input row, prefix and fed-back
      codes alike;
    * the conditioning rows (`conditioning`) are float32, so the whole prefix is;
    * LayerNorms compute in float32 (autocast's fp32 list), and so does the gelu_new of the MLP
      (its `pow` is on that list);
    * every matmul (Conv1D, attention, mel head) runs in the weights' half dtype, so the KV cache
      is half; logits come out half and are read as float32.
The conditioning encoders run under autocast of the weights' dtype (`mixed_precision`), as upstream.
With float32 weights every cast is a no-op.
"""

from __future__ import annotations

import contextlib
import logging
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoints import CheckpointError, SkipList, load_strict, read_checkpoint
from ..config import GPTConfig, IndexTTS2Config
from .conformer import ConformerEncoder
from .perceiver import PerceiverResampler

log = logging.getLogger(__name__)

COND_INPUT_DIM = 1024  # w2v-BERT feature width; hard-coded by the official constructor
EMO_DIM = 1024  # emotion perceiver width; hard-coded as well
SPEAKER_LATENTS = 32
COND_LENGTH = 1024  # quirk Q1: the pipeline passes the feature width as every conditioning length

GPT_SKIP = SkipList(
    "gpt.pth",
    (
        r"(emo_)?conditioning_encoder\.embed\.pos_enc\.pe",
        r"gpt\.h\.\d+\.attn\.(bias|masked_bias)",
        r"gpt\.(wte|wpe)\.weight",
        r"inference_model\..*",
    ),
    "pos_enc.pe: sinusoid tables, recomputed in forward; attn.bias/masked_bias: causal-mask buffers "
    "of older transformers GPT-2, recomputed; gpt.wte/wpe: deleted at construction upstream (an alias "
    "of mel_embedding or an unused absolute table if a file still has them); inference_model.*: "
    "aliases of the same weights made by the official post-init",
)


HALF = (torch.float16, torch.bfloat16)


def mixed_precision(weight: torch.Tensor):
    """Autocast to the dtype of half weights (the official fp16 run), a no-op for float32 weights."""
    if weight.dtype in HALF and weight.device.type in ("cuda", "cpu"):
        return torch.autocast(weight.device.type, dtype=weight.dtype)
    return contextlib.nullcontext()


class LayerNorm32(nn.LayerNorm):
    """nn.LayerNorm (same keys) that computes in float32 and returns float32, as autocast does."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.float(), self.normalized_shape, self.weight.float(), self.bias.float(), self.eps)


class Conv1D(nn.Module):
    """GPT-2's linear layer: weight stored [in, out] (the checkpoint layout), y = x @ W + b, computed
    in the weights' dtype."""

    def __init__(self, nx: int, nf: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(nx, nf))
        self.bias = nn.Parameter(torch.empty(nf))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x2 = x.reshape(-1, x.size(-1)).to(self.weight.dtype)
        return torch.addmm(self.bias, x2, self.weight).view(*x.shape[:-1], -1)


class GPT2Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.c_attn = Conv1D(dim, 3 * dim)  # output columns q | k | v
        self.c_proj = Conv1D(dim, dim)

    def forward(self, x: torch.Tensor, cache=None, layer: int = 0, start_pos=0) -> torch.Tensor:
        """start_pos: cache row of x's first position, an int, or a [1] tensor for the static decode step."""
        b, t, d = x.shape
        q, k, v = (y.view(b, t, self.heads, d // self.heads).transpose(1, 2)
                   for y in self.c_attn(x).split(d, dim=2))  # [B, H, T, Dh]
        mask = None
        if cache is not None:
            k, v = cache.update(layer, start_pos, k, v)  # [B, H, start_pos + T, Dh] (S_max for a static step)
            mask = cache.decode_mask(start_pos) if t == 1 else None
        if t == 1:  # one new query sees every cached key (a batch's padding and a static step's unwritten ones masked)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        elif k.size(2) == t:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # a chunk after cached positions: causal with an offset
            allowed = torch.ones(t, k.size(2), dtype=torch.bool, device=x.device).tril(k.size(2) - t)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        return self.c_proj(out.transpose(1, 2).reshape(b, t, d))


class GPT2MLP(nn.Module):
    def __init__(self, dim: int, inner: int):
        super().__init__()
        self.c_fc = Conv1D(dim, inner)
        self.c_proj = Conv1D(inner, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x).float(), approximate="tanh"))  # "gelu_new", float32


class GPT2Block(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.ln_1 = LayerNorm32(dim, eps=1e-5)
        self.attn = GPT2Attention(dim, heads)
        self.ln_2 = LayerNorm32(dim, eps=1e-5)
        self.mlp = GPT2MLP(dim, 4 * dim)

    def forward(self, x, cache=None, layer: int = 0, start_pos: int = 0):
        """x [B, T, D] float32 residual stream; the branches return the weights' dtype."""
        x = x + self.attn(self.ln_1(x), cache, layer, start_pos)
        return x + self.mlp(self.ln_2(x))


class GPT2Stack(nn.Module):
    """HF GPT2Model minus its token/position embeddings: inputs are embeddings, output after ln_f."""

    def __init__(self, dim: int, layers: int, heads: int):
        super().__init__()
        self.h = nn.ModuleList(GPT2Block(dim, heads) for _ in range(layers))
        self.ln_f = LayerNorm32(dim, eps=1e-5)

    def forward(self, x: torch.Tensor, cache=None, start_pos: int = 0) -> torch.Tensor:
        """[B, T, D] input embeddings (any float dtype) -> float32 [B, T, D]."""
        # HF adds the null position embedding (float32 zeros): half inputs become float32
        x = x.to(torch.promote_types(x.dtype, torch.float32))
        for i, block in enumerate(self.h):
            x = block(x, cache, i, start_pos)
        return self.ln_f(x)


class LearnedPositionEmbeddings(nn.Module):
    def __init__(self, rows: int, dim: int):
        super().__init__()
        self.emb = nn.Embedding(rows, dim)


class UnifiedVoiceBase(nn.Module):
    """What both generations share (spec 2.5 §4: everything but the speaker conditioning and the
    language rows): the emotion branch, token and position embeddings, the GPT-2 stack, final norm
    and heads, the limits and the decoding interface `generate.py` uses (`prompt_embeds`,
    `hidden_states`, `mel_embeds`, `logits`, `cfg`, `max_codes`)."""

    def __init__(self, cfg):
        super().__init__()
        if cfg.model_dim % cfg.heads:
            raise ValueError(f"gpt.model_dim {cfg.model_dim} is not divisible by gpt.heads {cfg.heads}")
        self.cfg = cfg
        d, em = cfg.model_dim, cfg.emo_condition_module
        self.emo_conditioning_encoder = ConformerEncoder(COND_INPUT_DIM, em)
        self.emo_perceiver_encoder = PerceiverResampler(EMO_DIM, em.output_size, 1, em.attention_heads,
                                                        em.perceiver_mult)
        self.emovec_layer = nn.Linear(EMO_DIM, d)
        self.emo_layer = nn.Linear(d, d)
        self.text_embedding = nn.Embedding(cfg.number_text_tokens + 1, d)
        self.mel_embedding = nn.Embedding(cfg.number_mel_codes, d)
        self.text_pos_embedding = LearnedPositionEmbeddings(cfg.max_text_tokens + 2, d)
        self.mel_pos_embedding = LearnedPositionEmbeddings(cfg.max_mel_tokens + 3, d)
        self.gpt = GPT2Stack(d, cfg.layers, cfg.heads)
        self.final_norm = LayerNorm32(d, eps=1e-5)
        self.mel_head = nn.Linear(d, cfg.number_mel_codes)
        self.text_head = nn.Linear(d, cfg.number_text_tokens + 1)  # in the file, never run at inference

    # ---- limits -------------------------------------------------------------------------------
    @property
    def max_codes(self) -> int:
        """Most codes one segment may have (= gpt.max_mel_tokens): generation feeds code k at mel
        position k+2 and v2's latent pass needs [start, codes, stop] in the max_mel_tokens + 3 rows."""
        return self.mel_pos_embedding.emb.num_embeddings - 3

    @property
    def max_text_ids(self) -> int:
        return self.text_pos_embedding.emb.num_embeddings - 2

    # ---- conditioning -------------------------------------------------------------------------
    def _features(self, x: torch.Tensor, what: str) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.size(-1) != COND_INPUT_DIM:
            shape = list(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{what} must be [B, T, {COND_INPUT_DIM}] features, got {shape}")
        if x.size(1) < 3:
            raise ValueError(f"{what} has {x.size(1)} frames; at least 3 are needed")
        if not torch.isfinite(x).all():
            raise ValueError(f"{what} contains NaN or Inf")
        return x.to(device=self.mel_head.weight.device, dtype=self.mel_head.weight.dtype)

    def _encode(self, encoder: ConformerEncoder, perceiver: PerceiverResampler, x: torch.Tensor) -> torch.Tensor:
        lengths = torch.full((x.size(0),), COND_LENGTH, dtype=torch.long, device=x.device)
        with mixed_precision(self.mel_head.weight):
            h, mask = encoder(x, lengths)
            return perceiver(h, mask.squeeze(1))

    def emo_conditioning(self, emo_cond_emb: torch.Tensor) -> torch.Tensor:
        """[B, T, 1024] -> [B, 1024]: emotion conformer + one-latent perceiver."""
        x = self._features(emo_cond_emb, "emo_cond_emb")
        return self._encode(self.emo_conditioning_encoder, self.emo_perceiver_encoder, x).squeeze(1)

    def emovec(self, emo_cond_emb: torch.Tensor) -> torch.Tensor:
        """[B, T, 1024] -> [B, D] (official get_emovec); half weights give a half vector."""
        with mixed_precision(self.mel_head.weight):
            return self.emo_layer(self.emovec_layer(self.emo_conditioning(emo_cond_emb)))

    def merge_emovec(self, spk_cond_emb: torch.Tensor, emo_cond_emb: torch.Tensor, alpha: float) -> torch.Tensor:
        """b + α·(e − b), b from the speaker features, e from the emotion features -> [B, D]."""
        alpha = float(alpha)
        if not math.isfinite(alpha):
            raise ValueError(f"emo alpha must be a finite number, got {alpha}")
        base = self.emovec(spk_cond_emb)
        return base + alpha * (self.emovec(emo_cond_emb) - base)

    # ---- embeddings ---------------------------------------------------------------------------
    def check_text_ids(self, text_ids: torch.Tensor, limit: bool = True) -> torch.Tensor:
        """[L] or [1, L] integer ids within the text table -> [L] int64 on the model's device; with
        `limit`, L must fit the text position table too."""
        ids = torch.as_tensor(text_ids)
        if ids.dim() == 2 and ids.size(0) == 1:
            ids = ids[0]
        if ids.dim() != 1 or ids.dtype.is_floating_point or ids.dtype == torch.bool:
            raise ValueError(f"text_ids must be an integer tensor [L] or [1, L], got {ids.dtype} {list(ids.shape)}")
        if ids.numel() == 0:
            raise ValueError("text_ids is empty")
        if limit and ids.numel() > self.max_text_ids:
            raise ValueError(f"text_ids has {ids.numel()} tokens; the text position table allows "
                             f"{self.max_text_ids} (gpt.max_text_tokens)")
        if ids.min() < 0 or ids.max() > self.cfg.number_text_tokens:
            raise ValueError(f"text_ids must lie in [0, {self.cfg.number_text_tokens}], "
                             f"got [{int(ids.min())}, {int(ids.max())}]")
        return ids.long().to(self.mel_head.weight.device)

    def mel_embeds(self, codes: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """[B, T] codes at mel positions [T] -> [B, T, D]."""
        return self.mel_embedding(codes) + self.mel_pos_embedding.emb(positions)

    # ---- transformer --------------------------------------------------------------------------
    def hidden_states(self, embeds: torch.Tensor, cache=None, start_pos: int = 0) -> torch.Tensor:
        """[B, T, D] input embeddings -> final_norm(ln_f(GPT-2)) [B, T, D]; with a cache, keys and
        values are written at positions start_pos.. and attention covers every earlier position."""
        return self.final_norm(self.gpt(embeds, cache, start_pos))

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """[.., D] -> [.., V] in the weights' dtype (callers read them as float32)."""
        return self.mel_head(hidden.to(self.mel_head.weight.dtype))


class UnifiedVoice(UnifiedVoiceBase):
    """IndexTTS-2: speaker conformer + perceiver latents (32 rows) and two speed rows."""

    def __init__(self, cfg: GPTConfig):
        super().__init__(cfg)
        d, cm = cfg.model_dim, cfg.condition_module
        self.conditioning_encoder = ConformerEncoder(COND_INPUT_DIM, cm)
        self.perceiver_encoder = PerceiverResampler(d, cm.output_size, SPEAKER_LATENTS, cm.attention_heads,
                                                    cm.perceiver_mult)
        self.speed_emb = nn.Embedding(2, d)

    # ---- conditioning -------------------------------------------------------------------------
    def speaker_latents(self, spk_cond_emb: torch.Tensor) -> torch.Tensor:
        """[B, T, 1024] normalised w2v-BERT features -> [B, 32, D] (official get_conditioning)."""
        x = self._features(spk_cond_emb, "spk_cond_emb")
        return self._encode(self.conditioning_encoder, self.perceiver_encoder, x)

    def conditioning(self, latents: torch.Tensor, emovec: torch.Tensor) -> torch.Tensor:
        """[B, 32, D] speaker latents + [B, D] emovec -> float32 conds [B, 34, D] (spec §4.6; float32 in
        half precision too, as upstream, where the perceiver's norm returns float32)."""
        d = self.cfg.model_dim
        if latents.dim() != 3 or latents.size(-1) != d:
            raise ValueError(f"latents must be [B, N, {d}], got {list(latents.shape)}")
        if emovec.dim() != 2 or emovec.size(-1) != d or emovec.size(0) != latents.size(0):
            raise ValueError(f"emovec must be [{latents.size(0)}, {d}], got {list(emovec.shape)}")
        if not (torch.isfinite(latents).all() and torch.isfinite(emovec).all()):
            raise ValueError("latents / emovec contain NaN or Inf")
        dev = self.mel_head.weight.device
        b = latents.size(0)
        speed = self.speed_emb.weight.float()
        # row 1 ("duration_emb_half") then row 0 ("duration_emb"), both always used
        rows = torch.stack((speed[1], speed[0])).unsqueeze(0).expand(b, -1, -1)
        return torch.cat(((latents.to(dev) + emovec.to(dev).unsqueeze(1)).float(), rows), dim=1)

    # ---- embeddings ----------------------------------------------------------------------------
    def text_embeds(self, text_ids: torch.Tensor) -> torch.Tensor:
        """[L] ids -> [1, L+2, D]: [start_text, ids, stop_text] + text positions 0..L+1."""
        ids = self.check_text_ids(text_ids)
        c = self.cfg
        seq = torch.cat((ids.new_tensor([c.start_text_token]), ids, ids.new_tensor([c.stop_text_token])))
        pos = torch.arange(seq.numel(), device=seq.device)
        return (self.text_embedding(seq) + self.text_pos_embedding.emb(pos)).unsqueeze(0)

    def prompt_embeds(self, conds: torch.Tensor, text_ids: torch.Tensor) -> torch.Tensor:
        """Generation prefix [1, 34 + L+2 + 1, D]: conds, text, start mel token at mel position 0.
        The rows keep their dtypes' promotion (float32 conds make a float32 prefix, as upstream)."""
        c = self.cfg
        ids = self.check_text_ids(text_ids)
        # generation drops start/stop-text ids from the text (SentencePiece never emits them in v2)
        ids = ids[(ids != c.start_text_token) & (ids != c.stop_text_token)]
        if ids.numel() == 0:
            raise ValueError("text_ids holds only start/stop text tokens")
        start = torch.full((1, 1), c.start_mel_token, dtype=torch.long, device=ids.device)
        mel = self.mel_embeds(start, torch.zeros(1, dtype=torch.long, device=ids.device))
        return torch.cat((conds[:1].to(ids.device), self.text_embeds(ids), mel), dim=1)

    # ---- teacher-forced pass ---------------------------------------------------------------------
    def latents(self, conds: torch.Tensor, text_ids: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """Teacher-forced second pass (spec §4.10): [1, T, D] hidden states whose next-token
        predictions are the codes (input start token for row 0, c_{j-1} for row j)."""
        c = self.cfg
        codes = torch.as_tensor(codes)
        if codes.dim() == 1:
            codes = codes.unsqueeze(0)
        if codes.dim() != 2 or codes.size(0) != 1 or codes.size(1) == 0 or codes.dtype.is_floating_point:
            raise ValueError(f"codes must be a non-empty integer tensor [1, T], got {codes.dtype} {list(codes.shape)}")
        t = codes.size(1)
        if t > self.max_codes:
            raise ValueError(f"{t} codes exceed the mel position table ({self.max_codes} = gpt.max_mel_tokens)")
        if codes.min() < 0 or codes.max() >= c.number_mel_codes:
            raise ValueError(f"codes must lie in [0, {c.number_mel_codes - 1}]")
        if conds.dim() != 3 or conds.size(0) != 1 or conds.size(-1) != c.model_dim:
            raise ValueError(f"conds must be [1, N, {c.model_dim}], got {list(conds.shape)}")
        dev = self.mel_head.weight.device
        codes = codes.long().to(dev)
        mel_seq = torch.cat((codes.new_tensor([[c.start_mel_token]]), codes, codes.new_tensor([[c.stop_mel_token]])), 1)
        mel = self.mel_embeds(mel_seq, torch.arange(t + 2, device=dev))
        text = self.text_embeds(text_ids)
        h = self.hidden_states(torch.cat((conds.to(dev), text, mel), dim=1))
        return h[:, conds.size(1) + text.size(1):][:, :t]


def _gpt_config(cfg: GPTConfig | IndexTTS2Config) -> GPTConfig:
    return cfg.gpt if isinstance(cfg, IndexTTS2Config) else cfg


def read_gpt_state(path: str | Path) -> dict:
    """The flat state dict of a `gpt.pth` (flat, or wrapped as `{"model": sd}`)."""
    sd = read_checkpoint(path)
    if "model" in sd and isinstance(sd["model"], dict):
        sd = sd["model"]
    bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path}: entries that are not tensors: {bad[:5]}")
    return sd


def load_gpt(path: str | Path, cfg: GPTConfig | IndexTTS2Config, device="cpu",
             dtype: torch.dtype = torch.float32) -> UnifiedVoice:
    """Build UnifiedVoice on meta, load `gpt.pth` strictly (flat or `{"model": sd}`), move to device/dtype."""
    sd = read_gpt_state(path)
    with torch.device("meta"):
        model = UnifiedVoice(_gpt_config(cfg))
    load_strict(model, sd, f"gpt ({Path(path).name})", GPT_SKIP)
    return model.to(device=device, dtype=dtype).eval()
