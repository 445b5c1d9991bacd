"""UnifiedVoice of IndexTTS-2.5: the text-to-semantic GPT with CAMPPlus speaker conditioning
(spec 2.5 §4). Everything but the speaker conditioning and the language rows is shared with
IndexTTS-2 (`model.UnifiedVoiceBase`: emotion branch, embeddings, GPT-2 stack, heads).

Differences to v2:
  * speaker: `spk_emb_proj` Linear 192 -> D of the CAMPPlus vector gives ONE row; the prefix is
    [spk_emb_proj(style) + emovec, 0, 0] (two literal float32 zero rows where v2 has speed_emb);
  * `lang_embedding` (107 rows, hard-coded) is added to every text row, framing ids included;
  * no speaker conformer / perceiver, no speed_emb, no teacher-forced latent pass.

Sequence layout at generation time (batch 1, spec 2.5 §4.5), with ids 0/1 removed from the text:
    [3 conds rows] [0, t'_1..t'_M, 1] + text_pos[0..M+1] + lang   [start mel] + mel_pos[0], then
    generated code c_k + mel_pos[k+2]
The official input also carries L - M left padding rows masked as keys; they change nothing but
rounding, so generation leaves them out (`official_inputs` builds them, e.g. for parity checks).

Shape legend: B batch, L text ids (incl. the appended 1), M ids kept, D model_dim, S = 192 style.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..checkpoints import SkipList, load_strict
from ..config25 import GPT25Config, IndexTTS25Config
from .model import UnifiedVoiceBase, mixed_precision, read_gpt_state

STYLE_DIM = 192  # CAMPPlus embedding width; hard-coded by the official constructor
LANGUAGES = 107  # lang_embedding rows: len(LANGUAGE_DICT) + 1, hard-coded upstream
CONDITIONING_ROWS = 3

GPT25_SKIP = SkipList(
    "gpt.pth (2.5)",
    (
        r"emo_conditioning_encoder\.embed\.pos_enc\.pe",
        r"gpt\.h\.\d+\.attn\.(bias|masked_bias)",
        r"gpt\.(wte|wpe)\.weight",
        r"inference_model\..*",
    ),
    "pos_enc.pe: sinusoid table, recomputed in forward; attn.bias/masked_bias: causal-mask buffers "
    "of older transformers GPT-2; gpt.wte/wpe: deleted at construction upstream; inference_model.*: "
    "aliases of the same weights made by the official post-init",
)


class UnifiedVoice25(UnifiedVoiceBase):
    """The 2.5 T2S GPT. Not responsible for the CAMPPlus vector (speaker/campplus.py) nor for the
    language index of a segment (the text front end)."""


    def __init__(self, cfg: GPT25Config):
        super().__init__(cfg)
        self.spk_emb_proj = nn.Linear(STYLE_DIM, cfg.model_dim)
        self.lang_embedding = nn.Embedding(LANGUAGES, cfg.model_dim)

    # ---- conditioning -------------------------------------------------------------------------
    def speaker_latent(self, style: torch.Tensor) -> torch.Tensor:
        """[B, 192] CAMPPlus vector -> [B, 1, D] speaker row (official `speech_conditioning_latent`)."""
        if not isinstance(style, torch.Tensor) or style.dim() != 2 or style.size(-1) != STYLE_DIM:
            shape = list(style.shape) if isinstance(style, torch.Tensor) else type(style).__name__
            raise ValueError(f"style must be a [B, {STYLE_DIM}] CAMPPlus vector, got {shape}")
        if not torch.isfinite(style).all():
            raise ValueError("style contains NaN or Inf")
        w = self.spk_emb_proj.weight
        with mixed_precision(w):
            return self.spk_emb_proj(style.to(device=w.device, dtype=w.dtype)).unsqueeze(1)

    def conditioning(self, style: torch.Tensor, emovec: torch.Tensor) -> torch.Tensor:
        """CAMPPlus vector [B, 192] + emovec [B, D] -> conds [B, 3, D], float32 (the literal zero rows
        are float32 upstream and promote the row, also in half precision)."""
        d = self.cfg.model_dim
        s = self.speaker_latent(style)
        if not isinstance(emovec, torch.Tensor) or emovec.dim() != 2 or emovec.shape != (s.size(0), d):
            shape = list(emovec.shape) if isinstance(emovec, torch.Tensor) else type(emovec).__name__
            raise ValueError(f"emovec must be [{s.size(0)}, {d}], got {shape}")
        if not torch.isfinite(emovec).all():
            raise ValueError("emovec contains NaN or Inf")
        row = (s + emovec.to(s.device).unsqueeze(1)).float()
        return torch.cat((row, row.new_zeros(row.size(0), CONDITIONING_ROWS - 1, d)), dim=1)

    # ---- embeddings ---------------------------------------------------------------------------
    def check_lang(self, lang) -> torch.Tensor:
        """A language row index (int, or an integer tensor of one element) -> [1] int64."""
        t = torch.as_tensor(lang)
        if t.dtype.is_floating_point or t.dtype == torch.bool or t.numel() != 1:
            raise ValueError(f"lang must be one integer language index, got {lang!r}")
        t = t.reshape(1).long().to(self.mel_head.weight.device)
        if not 0 <= int(t) < LANGUAGES:
            raise ValueError(f"lang must lie in [0, {LANGUAGES - 1}], got {int(t)}")
        return t

    def text_embeds(self, text_ids: torch.Tensor, lang) -> torch.Tensor:
        """[M] ids -> [1, M+2, D]: [start_text, ids, stop_text] + text positions 0..M+1 + the
        language row on every position."""
        c = self.cfg
        ids = torch.as_tensor(text_ids).reshape(-1)
        ids = self.check_text_ids(ids) if ids.numel() else ids.long().to(self.mel_head.weight.device)
        seq = torch.cat((ids.new_tensor([c.start_text_token]), ids, ids.new_tensor([c.stop_text_token])))
        pos = torch.arange(seq.numel(), device=seq.device)
        emb = self.text_embedding(seq) + self.text_pos_embedding.emb(pos) + self.lang_embedding(self.check_lang(lang))
        return emb.unsqueeze(0)

    def kept_text_ids(self, text_ids: torch.Tensor) -> torch.Tensor:
        """The segment ids [L] (with the appended 1) minus every start/stop text id (0 / 1), as
        upstream (quirk R1: a standalone "!" is id 0 and never reaches the model)."""
        c = self.cfg
        ids = self.check_text_ids(text_ids, limit=False)
        kept = ids[(ids != c.start_text_token) & (ids != c.stop_text_token)]
        if kept.numel() > self.max_text_ids:  # upstream needs M + 2 <= text table rows
            raise ValueError(f"text_ids keep {kept.numel()} tokens; the text position table allows "
                             f"{self.max_text_ids} (gpt.max_text_tokens)")
        return kept

    def prompt_embeds(self, conds: torch.Tensor, text_ids: torch.Tensor, lang) -> torch.Tensor:
        """Generation prefix [1, 3 + M+2 + 1, D]: conds, text rows, start mel token at mel position 0
        (float32 conds make a float32 prefix, as upstream). An empty text after the 0/1 filter keeps
        just the framing rows, as upstream."""
        c = self.cfg
        if conds.dim() != 3 or conds.size(0) != 1 or conds.size(-1) != c.model_dim:
            raise ValueError(f"conds must be [1, {CONDITIONING_ROWS}, {c.model_dim}], got {list(conds.shape)}")
        ids = self.kept_text_ids(text_ids)
        start = torch.full((1, 1), c.start_mel_token, dtype=torch.long, device=ids.device)
        mel = self.mel_embeds(start, torch.zeros(1, dtype=torch.long, device=ids.device))
        return torch.cat((conds.to(ids.device), self.text_embeds(ids, lang), mel), dim=1)

    def official_inputs(self, conds: torch.Tensor, text_ids: torch.Tensor, lang):
        """The official generate inputs (spec 2.5 §4.5): fake input ids [1, L+6] (ones, then the
        start mel token), inputs_embeds [1, L+5, D] (L-M zero padding rows of the text embeddings'
        dtype, conds, text rows) and the attention mask [1, L+6] (0 on the padding rows)."""
        ids = self.check_text_ids(text_ids, limit=False)
        prompt = self.prompt_embeds(conds, ids, lang)[:, :-1]  # without the start mel row
        pad = ids.numel() - self.kept_text_ids(ids).numel()
        dev = prompt.device
        rows = torch.zeros(1, pad, prompt.size(-1), device=dev, dtype=self.text_embedding.weight.dtype)
        embeds = torch.cat((rows, prompt), dim=1)
        fake = torch.ones(1, embeds.size(1) + 1, dtype=torch.long, device=dev)
        fake[0, -1] = self.cfg.start_mel_token
        mask = torch.ones_like(fake)
        mask[0, :pad] = 0
        return fake, embeds, mask


def _gpt25_config(cfg: GPT25Config | IndexTTS25Config) -> GPT25Config:
    return cfg.gpt if isinstance(cfg, IndexTTS25Config) else cfg


def load_gpt25(path: str | Path, cfg: GPT25Config | IndexTTS25Config, device="cpu",
               dtype: torch.dtype = torch.float32) -> UnifiedVoice25:
    """Build UnifiedVoice25 on meta, load the 2.5 `gpt.pth` strictly (flat or `{"model": sd}`,
    weights_only), move to device/dtype (half dtypes follow the official mixed flow, see model.py)."""
    sd = read_gpt_state(path)
    with torch.device("meta"):
        model = UnifiedVoice25(_gpt25_config(cfg))
    load_strict(model, sd, f"gpt ({Path(path).name})", GPT25_SKIP)
    return model.to(device=device, dtype=dtype).eval()
