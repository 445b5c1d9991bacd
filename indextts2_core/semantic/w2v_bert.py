"""w2v-BERT 2.0 semantic features: transformers' `Wav2Vec2BertModel`, built with only the layers the
pipeline reads, followed by the IndexTTS2 mean/std normalisation (`wav2vec2bert_stats.pt`).

IndexTTS2 takes `hidden_states[17]` (the output of the 17th conformer layer; index 0 is the feature
projection). The model is built with `num_hidden_layers = 17`, so layers 17+ are neither allocated
nor computed; as the encoder has no final norm, its last hidden state is exactly that tensor.

Shapes:
  B batch, T stacked frames (50 Hz), P feature_projection_input_dim (160 = 2 x 80 fbank bins),
  H hidden_size (1024)
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import torch
from torch import nn

from ..checkpoints import CheckpointError, SkipList, load_strict, read_checkpoint, strip_prefix
from ..config import ConfigError, read_json

log = logging.getLogger(__name__)

HIDDEN_STATE_INDEX = 17  # official get_emb: hidden_states[17]; also the number of layers built

SKIP = SkipList(
    "w2v-bert-2.0",
    (
        rf"encoder\.layers\.(?!(?:{'|'.join(str(i) for i in range(HIDDEN_STATE_INDEX))})\.)\d+\..*",
        r"masked_spec_embed",
    ),
    f"encoder layers {HIDDEN_STATE_INDEX}+ come after hidden_states[{HIDDEN_STATE_INDEX}], the only output "
    "IndexTTS2 reads, so they are not built; masked_spec_embed is the SpecAugment mask vector, used only "
    "in training (mask_time_prob is zeroed so it is not built)",
)


def truncated_config(config):
    """A copy of a `Wav2Vec2BertConfig` that builds only the layers up to `HIDDEN_STATE_INDEX`."""
    if config.num_hidden_layers < HIDDEN_STATE_INDEX:
        raise CheckpointError(
            f"w2v-BERT: IndexTTS2 reads hidden_states[{HIDDEN_STATE_INDEX}] but the config has only "
            f"{config.num_hidden_layers} layers; this is not the facebook/w2v-bert-2.0 model")
    config = copy.deepcopy(config)
    config.num_hidden_layers = HIDDEN_STATE_INDEX
    config.mask_time_prob = 0.0  # SpecAugment is training-only; without it masked_spec_embed is not built
    config.mask_feature_prob = 0.0
    return config


class SemanticEncoder(nn.Module):
    """w2v-BERT cut to `HIDDEN_STATE_INDEX` layers + normalisation -> IndexTTS2 `*_cond_emb`.
    Not responsible for the fbank features (audio front end) nor for loading files."""

    def __init__(self, model: nn.Module, mean: torch.Tensor, std: torch.Tensor, full_num_layers: int):
        super().__init__()
        self.model = model
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.full_num_layers = full_num_layers  # layers of the published model (RNG note below)

    @property
    def input_dim(self) -> int:
        return self.model.config.feature_projection_input_dim

    def hidden_state(self, input_features: torch.Tensor, attention_mask: torch.Tensor | None = None):
        """input_features [B, T, P], attention_mask [B, T] (1 = real frame) -> raw h17 [B, T, H].

        Padded frames are zeroed before the encoder and excluded as attention keys, but their rows
        are still computed and returned (as in the official pipeline)."""
        x, mask = self._check(input_features, attention_mask)
        # transformers 4.5x draws one torch.rand per layer (LayerDrop) even in eval, 5.x none; keep the
        # global CPU RNG untouched either way (see `replay_layerdrop_draws` for official parity).
        with torch.random.fork_rng(devices=[]):
            out = self.model(input_features=x, attention_mask=mask, output_hidden_states=True)
        states = out.hidden_states
        if len(states) != HIDDEN_STATE_INDEX + 1:
            raise RuntimeError(f"w2v-BERT returned {len(states)} hidden states, expected {HIDDEN_STATE_INDEX + 1}")
        return states[HIDDEN_STATE_INDEX]

    def normalise(self, hidden: torch.Tensor) -> torch.Tensor:
        return (hidden - self.mean) / self.std  # no epsilon, as the official get_emb

    def forward(self, input_features: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """input_features [B, T, P], attention_mask [B, T] -> normalised features [B, T, H]."""
        return self.normalise(self.hidden_state(input_features, attention_mask))

    def replay_layerdrop_draws(self) -> None:
        """Consume the CPU RNG draws the official full-depth model makes per call (spec quirk Q7),
        for callers that need the official global-RNG stream under a fixed seed."""
        for _ in range(self.full_num_layers):
            torch.rand([])

    def _check(self, x, mask):
        p = self.input_dim
        if not isinstance(x, torch.Tensor) or not x.dtype.is_floating_point:
            raise ValueError("w2v-BERT: input_features must be a floating-point tensor")
        if x.dim() != 3 or x.shape[-1] != p or x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"w2v-BERT: input_features must be [B, T, {p}] with B, T > 0, got {list(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError("w2v-BERT: input_features contain NaN or Inf")
        device = self.mean.device
        x = x.to(device=device, dtype=next(self.model.parameters()).dtype)
        if mask is None:
            return x, None
        if not isinstance(mask, torch.Tensor) or mask.shape != x.shape[:2]:
            shape = list(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise ValueError(f"w2v-BERT: attention_mask must be [B, T] = {list(x.shape[:2])}, got {shape}")
        if mask.dtype.is_floating_point and not torch.isfinite(mask).all():
            raise ValueError("w2v-BERT: attention_mask contains NaN or Inf")
        if not ((mask == 0) | (mask == 1)).all():
            raise ValueError("w2v-BERT: attention_mask must hold only 0 and 1")
        if not mask.bool().any(dim=1).all():
            raise ValueError("w2v-BERT: every batch row needs at least one unmasked frame")
        return x, mask.to(device=device, dtype=torch.long)


def read_stats(path: str | Path, hidden_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`wav2vec2bert_stats.pt` -> (mean [H], std = sqrt(var) [H])."""
    stats = read_checkpoint(path)
    for name in ("mean", "var"):
        t = stats.get(name)
        if not isinstance(t, torch.Tensor) or tuple(t.shape) != (hidden_size,):
            found = list(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise CheckpointError(f"{path}: '{name}' must be a tensor of shape [{hidden_size}], found {found}")
        if not t.is_floating_point():
            raise CheckpointError(f"{path}: '{name}' must be a floating-point tensor, found {t.dtype}")
    mean, var = stats["mean"].float(), stats["var"].float()
    if not (torch.isfinite(mean).all() and torch.isfinite(var).all() and (var > 0).all()):
        raise CheckpointError(f"{path}: mean/var must be finite and var positive")
    return mean, torch.sqrt(var)


def load_semantic_encoder(model_dir: str | Path, stats_path: str | Path, device="cpu",
                          dtype: torch.dtype = torch.float32) -> SemanticEncoder:
    """Load the local `facebook/w2v-bert-2.0` folder (`config.json`, `model.safetensors`) and the stats."""
    from transformers import Wav2Vec2BertConfig, Wav2Vec2BertModel

    model_dir = Path(model_dir)
    absent = [n for n in ("config.json", "model.safetensors") if not (model_dir / n).is_file()]
    if absent:
        raise FileNotFoundError(f"w2v-BERT folder {model_dir} lacks {', '.join(absent)}")
    config_path = model_dir / "config.json"
    raw = read_json(config_path)  # malformed or absurdly nested JSON -> ConfigError naming the file
    if not isinstance(raw, dict):
        raise ConfigError(f"{config_path}: expected a JSON object, found {type(raw).__name__}")
    for key in ("hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size",
                "feature_projection_input_dim"):
        value = raw.get(key)
        if key in raw and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise ConfigError(f"{config_path}: '{key}' must be a positive integer, got {value!r}")
    try:
        full = Wav2Vec2BertConfig.from_dict(raw)
        with torch.device("meta"):
            model = Wav2Vec2BertModel(truncated_config(full))
    except (ValueError, TypeError, ZeroDivisionError, AttributeError, RuntimeError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise ConfigError(f"{config_path}: transformers cannot build w2v-BERT from it ({type(e).__name__}: {e})") from e
    # the pack's strict loader (not from_pretrained's lenient one): the only keys left out are SKIP's
    weights = strip_prefix(read_checkpoint(model_dir / "model.safetensors"), "wav2vec2_bert.")
    load_strict(model, weights, f"w2v-BERT ({model_dir})", skip=SKIP)
    mean, std = read_stats(stats_path, full.hidden_size)
    encoder = SemanticEncoder(model, mean, std, full.num_hidden_layers)
    return encoder.to(device=device, dtype=dtype).eval()
