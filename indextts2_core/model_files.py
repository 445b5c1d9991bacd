"""Where the model files are: one resolver for the two supported folder layouts.

* **official** — an `IndexTeam/IndexTTS-2` download (`config.yaml`, `gpt.pth`, ...) with the four
  external models in `hf_cache/` as the official downloader lays them out:

      DIR/config.yaml, gpt.pth, s2mel.pth, bpe.model, wav2vec2bert_stats.pt, feat1.pt, feat2.pt,
          qwen0.6bemo4-merge/ (optional, emotion from text)
      DIR/hf_cache/w2v-bert-2.0/{config.json, preprocessor_config.json, model.safetensors}
      DIR/hf_cache/semantic_codec_model.safetensors
      DIR/hf_cache/campplus_cn_common.bin
      DIR/hf_cache/bigvgan/{config.json, bigvgan_generator.pt}

* **pack** — ComfyUI's `models/indextts2/`: one folder per hub repository, named after the
  repository, holding the files at the hub's relative paths (what `huggingface_hub` writes with
  `local_dir`):

      ROOT/IndexTTS-2/...                          (IndexTeam/IndexTTS-2)
      ROOT/w2v-bert-2.0/...                        (facebook/w2v-bert-2.0)
      ROOT/MaskGCT/semantic_codec/model.safetensors (amphion/MaskGCT)
      ROOT/campplus/campplus_cn_common.bin         (funasr/campplus)
      ROOT/bigvgan_v2_22khz_80band_256x/...        (nvidia/bigvgan_v2_22khz_80band_256x)

File names inside IndexTTS-2 are read from its `config.yaml`. A `.safetensors` file next to a
`.pth/.pt/.bin` of the same stem (written by `download --convert-safetensors`) is preferred.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from pathlib import Path

log = logging.getLogger(__name__)

INDEXTTS2_REPO = "IndexTeam/IndexTTS-2"
W2V_BERT_REPO = "facebook/w2v-bert-2.0"
MASKGCT_REPO = "amphion/MaskGCT"
CAMPPLUS_REPO = "funasr/campplus"
BIGVGAN_REPO = "nvidia/bigvgan_v2_22khz_80band_256x"

# official file names (spec §1.1/§1.2), used when config.yaml itself is missing
DEFAULT_NAMES = {
    "bpe_model": "bpe.model", "gpt_checkpoint": "gpt.pth", "s2mel_checkpoint": "s2mel.pth",
    "w2v_stat": "wav2vec2bert_stats.pt", "spk_matrix": "feat1.pt", "emo_matrix": "feat2.pt",
    "qwen_emo_path": "qwen0.6bemo4-merge/",
}
W2V_BERT_FILES = ("config.json", "preprocessor_config.json", "model.safetensors")
BIGVGAN_FILES = ("config.json", "bigvgan_generator.pt")
MASKGCT_FILE = "semantic_codec/model.safetensors"
CAMPPLUS_FILE = "campplus_cn_common.bin"
# Qwen emotion model folder (spec §1.7): needed to load it / downloaded when present on the hub
QWEN_REQUIRED = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
QWEN_OPTIONAL = ("generation_config.json", "vocab.json", "merges.txt", "added_tokens.json",
                 "special_tokens_map.json", "chat_template.jinja")

PACK_DIRS = {  # pack layout: hub repo -> folder under the models root
    INDEXTTS2_REPO: "IndexTTS-2", W2V_BERT_REPO: "w2v-bert-2.0", MASKGCT_REPO: "MaskGCT",
    CAMPPLUS_REPO: "campplus", BIGVGAN_REPO: "bigvgan_v2_22khz_80band_256x",
}
CONVERTIBLE = (".pth", ".pt", ".bin")


class ModelFilesError(FileNotFoundError):
    """Model files are missing; the message lists all of them and the download command."""


def download_command(root: str | Path, include_t2e: bool = False) -> str:
    cmd = f'python -m indextts2_core download --models "{root}"'
    return cmd if include_t2e else cmd + " --no-t2e"


@dataclass(frozen=True)
class HubFile:
    """One file of a hub repository and where it lives locally."""

    repo: str
    filename: str  # path inside the hub repo
    local: Path  # path in the chosen layout
    optional: bool = False  # downloaded when the hub has it, never reported missing
    t2e: bool = False  # belongs to the Qwen emotion model


@dataclass(frozen=True)
class ModelPaths:
    """Resolved paths of every model file (whether or not they exist yet)."""

    root: Path
    layout: str  # "official" | "pack"
    config: Path
    gpt: Path
    s2mel: Path
    bpe: Path
    w2v_stats: Path
    spk_matrix: Path  # feat1.pt
    emo_matrix: Path  # feat2.pt
    qwen_dir: Path
    w2v_bert_dir: Path
    semantic_codec: Path
    campplus: Path
    bigvgan_dir: Path

    @property
    def bigvgan_config(self) -> Path:
        return self.bigvgan_dir / "config.json"

    @property
    def bigvgan_weights(self) -> Path:
        return prefer_safetensors(self.bigvgan_dir / "bigvgan_generator.pt")

    @property
    def indextts2_dir(self) -> Path:
        return self.config.parent

    @classmethod
    def locate(cls, root: str | Path) -> "ModelPaths":
        """Resolve the files under `root` (official layout if `root/config.yaml` exists, else pack)."""
        root = Path(root).expanduser()
        if (root / "config.yaml").is_file() or (root / "hf_cache").is_dir():
            return cls._build(root, "official")
        return cls._build(root, "pack")

    @classmethod
    def _build(cls, root: Path, layout: str) -> "ModelPaths":
        if layout == "official":
            main, ext = root, root / "hf_cache"
            w2v, codec = ext / "w2v-bert-2.0", ext / "semantic_codec_model.safetensors"
            campplus, bigvgan = ext / CAMPPLUS_FILE, ext / "bigvgan"
        elif layout == "pack":
            main = root / PACK_DIRS[INDEXTTS2_REPO]
            w2v = root / PACK_DIRS[W2V_BERT_REPO]
            codec = root / PACK_DIRS[MASKGCT_REPO] / MASKGCT_FILE
            campplus = root / PACK_DIRS[CAMPPLUS_REPO] / CAMPPLUS_FILE
            bigvgan = root / PACK_DIRS[BIGVGAN_REPO]
        else:
            raise ValueError(f"unknown layout {layout!r} (official or pack)")
        names = _file_names(main / "config.yaml")
        return cls(
            root=root, layout=layout, config=main / "config.yaml",
            gpt=prefer_safetensors(main / names["gpt_checkpoint"]),
            s2mel=prefer_safetensors(main / names["s2mel_checkpoint"]),
            bpe=main / names["bpe_model"],
            w2v_stats=prefer_safetensors(main / names["w2v_stat"]),
            spk_matrix=prefer_safetensors(main / names["spk_matrix"]),
            emo_matrix=prefer_safetensors(main / names["emo_matrix"]),
            qwen_dir=main / names["qwen_emo_path"].rstrip("/"),
            w2v_bert_dir=w2v, semantic_codec=codec, campplus=prefer_safetensors(campplus),
            bigvgan_dir=bigvgan,
        )

    def hub_files(self, include_t2e: bool = False) -> list[HubFile]:
        """Every file the pipeline reads, with its hub origin, in this layout."""
        main = self.indextts2_dir
        names = _file_names(self.config)
        out = [HubFile(INDEXTTS2_REPO, "config.yaml", self.config)]
        for key in ("gpt_checkpoint", "s2mel_checkpoint", "bpe_model", "w2v_stat", "spk_matrix", "emo_matrix"):
            out.append(HubFile(INDEXTTS2_REPO, names[key], main / names[key]))
        if include_t2e:
            sub = names["qwen_emo_path"].strip("/")
            for f in QWEN_REQUIRED + QWEN_OPTIONAL:
                out.append(HubFile(INDEXTTS2_REPO, f"{sub}/{f}", self.qwen_dir / f, optional=f in QWEN_OPTIONAL,
                                   t2e=True))
        out += [HubFile(W2V_BERT_REPO, f, self.w2v_bert_dir / f) for f in W2V_BERT_FILES]
        out.append(HubFile(MASKGCT_REPO, MASKGCT_FILE, self.semantic_codec.with_suffix(".safetensors")))
        out.append(HubFile(CAMPPLUS_REPO, CAMPPLUS_FILE, self.campplus.with_suffix(".bin")))
        out += [HubFile(BIGVGAN_REPO, f, self.bigvgan_dir / f) for f in BIGVGAN_FILES]
        return out

    def missing(self, include_t2e: bool = False) -> list[str]:
        """Paths of required files that are absent (a `.safetensors` sibling counts as present)."""
        return [str(f.local) for f in self.hub_files(include_t2e)
                if not f.optional and not prefer_safetensors(f.local).is_file()]

    def require(self, include_t2e: bool = False) -> "ModelPaths":
        """Raise one `ModelFilesError` listing every missing file and the download command."""
        missing = self.missing(include_t2e)
        if missing:
            lines = "\n".join(f"  {m}" for m in missing)
            raise ModelFilesError(
                f"{len(missing)} IndexTTS2 model file(s) missing under {self.root} ({self.layout} layout):\n"
                f"{lines}\nDownload them with:\n  {download_command(self.root, include_t2e)}")
        return self

    def describe(self) -> str:
        return "\n".join(f"{f.name}: {getattr(self, f.name)}" for f in fields(self))


def prefer_safetensors(path: Path) -> Path:
    """`x.safetensors` when it exists next to `x.pth/.pt/.bin`, else `path`."""
    if path.suffix in CONVERTIBLE:
        alt = path.with_suffix(".safetensors")
        if alt.is_file():
            return alt
    return path


def _file_names(config_path: Path) -> dict[str, str]:
    """IndexTTS-2 file names from its config.yaml; official defaults while the file is absent."""
    if not config_path.is_file():
        return dict(DEFAULT_NAMES)
    from .config import IndexTTS2Config

    cfg = IndexTTS2Config.from_yaml(config_path)
    return {key: getattr(cfg, key) for key in DEFAULT_NAMES}
