"""Where the model files are: one resolver for IndexTTS-2 and IndexTTS-2.5 in three layouts.

* **pack**: ComfyUI's `models/indextts2/`, one folder per hub repository, named after it, holding
  the files at the hub's relative paths. TTS-Audio-Suite's `models/TTS/IndexTTS/` is the same layout.

      ROOT/IndexTTS-2/...                           (IndexTeam/IndexTTS-2)
      ROOT/IndexTTS-2.5/...                         (IndexTeam/IndexTTS-2.5)
      ROOT/w2v-bert-2.0/...                         (facebook/w2v-bert-2.0)
      ROOT/MaskGCT/semantic_codec/model.safetensors (amphion/MaskGCT; IndexTTS-2 only)
      ROOT/campplus/campplus_cn_common.bin          (funasr/campplus)
      ROOT/bigvgan_v2_22khz_80band_256x/...         (nvidia/bigvgan_v2_22khz_80band_256x)

* **official**: an `IndexTeam/IndexTTS-2(.5)` download (`config.yaml`, `gpt.pth`, ...) with the
  helper models in `hf_cache/` as the official downloader lays them out:

      DIR/hf_cache/w2v-bert-2.0/{config.json, preprocessor_config.json, model.safetensors}
      DIR/hf_cache/semantic_codec_model.safetensors   (IndexTTS-2 only)
      DIR/hf_cache/campplus_cn_common.bin
      DIR/hf_cache/bigvgan/{config.json, bigvgan_generator.pt}

* **hf-cache**: snapshots in a Hugging Face hub cache (`models--IndexTeam--IndexTTS-2/snapshots/REV/`).

Each helper model (w2v-BERT, MaskGCT codec, CAMPPlus, BigVGAN) is taken from the layout's own
place when complete there, else from the first complete copy among `search` places (by default the
folders next to the model folder and the Hugging Face cache), so files the user already has are
used where they are. File names inside the model folder come from its `config.yaml` and must be
plain relative names. The version (2 or 2.5) is read from the folder's files and config.
A `.safetensors` file next to a `.pth/.pt/.bin` of the same stem is preferred.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path, PurePosixPath, PureWindowsPath

from .config import ConfigError

log = logging.getLogger(__name__)

INDEXTTS2_REPO = "IndexTeam/IndexTTS-2"
INDEXTTS25_REPO = "IndexTeam/IndexTTS-2.5"
W2V_BERT_REPO = "facebook/w2v-bert-2.0"
MASKGCT_REPO = "amphion/MaskGCT"
CAMPPLUS_REPO = "funasr/campplus"
BIGVGAN_REPO = "nvidia/bigvgan_v2_22khz_80band_256x"

VERSIONS = ("2", "2.5")
MAIN_REPOS = {"2": INDEXTTS2_REPO, "2.5": INDEXTTS25_REPO}

# official file names (spec §1.1/§1.2), used where config.yaml does not name them
DEFAULT_NAMES = {
    "bpe_model": "bpe.model", "gpt_checkpoint": "gpt.pth", "s2mel_checkpoint": "s2mel.pth",
    "w2v_stat": "wav2vec2bert_stats.pt", "spk_matrix": "feat1.pt", "emo_matrix": "feat2.pt",
    "qwen_emo_path": "qwen0.6bemo4-merge/",
}
# IndexTTS-2.5 names its config does not carry (2.5 spec §1.3 "Not in the config")
CODEC_25 = "codec.pth"
TIKTOKEN_25 = "multilingual_zh_ja_yue_char_del.tiktoken"
V25_TEXT_TOKENS = 60509  # gpt.number_text_tokens of 2.5 (v2: 12000)

W2V_BERT_FILES = ("config.json", "preprocessor_config.json", "model.safetensors")
BIGVGAN_FILES = ("config.json", "bigvgan_generator.pt")
MASKGCT_FILE = "semantic_codec/model.safetensors"
CAMPPLUS_FILE = "campplus_cn_common.bin"
# Qwen emotion model folder (spec §1.7): needed to load it / downloaded when present on the hub
QWEN_REQUIRED = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
QWEN_OPTIONAL = ("generation_config.json", "vocab.json", "merges.txt", "added_tokens.json",
                 "special_tokens_map.json", "chat_template.jinja")

PACK_DIRS = {  # pack layout: hub repo -> folder under the models root
    INDEXTTS2_REPO: "IndexTTS-2", INDEXTTS25_REPO: "IndexTTS-2.5", W2V_BERT_REPO: "w2v-bert-2.0",
    MASKGCT_REPO: "MaskGCT", CAMPPLUS_REPO: "campplus", BIGVGAN_REPO: "bigvgan_v2_22khz_80band_256x",
}
HELPERS = ("w2v_bert_dir", "semantic_codec", "campplus", "bigvgan_dir")  # ModelPaths fields of helper models
HELPER_REPOS = {"w2v_bert_dir": W2V_BERT_REPO, "semantic_codec": MASKGCT_REPO, "campplus": CAMPPLUS_REPO,
                "bigvgan_dir": BIGVGAN_REPO}
CONVERTIBLE = (".pth", ".pt", ".bin")
MAX_CONFIG_BYTES = 1 << 20
PACK_ROOT = Path(__file__).resolve().parents[1]  # the folder holding indextts2_core/ (the node pack)


class ModelFilesError(FileNotFoundError):
    """Model files are missing; the message lists all of them and how to get them."""


class ModelVersionError(ValueError):
    """A folder's files and config do not say one IndexTTS version, or not the one asked for."""


def download_command(root: str | Path, version: str = "2", include_t2e: bool = False) -> str:
    """A `download` command line that works from any working directory: this Python running the pack
    folder (its `__main__.py` is `python -m indextts2_core`)."""
    args = ["download", "--models", str(Path(root).expanduser().absolute())]
    if version != "2":
        args += ["--version", version]
    if include_t2e:
        args.append("--t2e")
    if (PACK_ROOT / "__main__.py").is_file():
        return _shell_join([sys.executable or "python", str(PACK_ROOT), *args])
    inner = _shell_join([sys.executable or "python", "-m", "indextts2_core", *args])
    return f"cd {_shell_join([str(PACK_ROOT)])} && {inner}"


def _shell_join(argv: list[str]) -> str:
    return subprocess.list2cmdline(argv) if os.name == "nt" else shlex.join(argv)


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache as huggingface_hub finds it (read from the environment now)."""
    env = os.environ
    for key in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if env.get(key):
            return Path(env[key]).expanduser()
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "hub"
    base = Path(env["XDG_CACHE_HOME"]).expanduser() if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def snapshot_dir(hub: Path, repo: str) -> Path | None:
    """`hub/models--ORG--NAME/snapshots/REV` for the revision `refs/main` names, else the newest one."""
    base = Path(hub) / ("models--" + repo.replace("/", "--"))
    snaps = base / "snapshots"
    if not snaps.is_dir():
        return None
    ref = base / "refs" / "main"
    try:
        rev = ref.read_text(encoding="utf-8").strip() if ref.is_file() else ""
    except OSError:
        rev = ""
    if rev and "/" not in rev and "\\" not in rev and rev not in (".", "..") and (snaps / rev).is_dir():
        return snaps / rev
    found = [p for p in snaps.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def safe_name(name, key: str, source: str) -> str:
    """A file name from a config: a non-empty relative path inside the model folder, or ConfigError."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{source}: {key} must be a file name, got {name!r}")
    win, posix = PureWindowsPath(name), PurePosixPath(name)
    parts = name.replace("\\", "/").split("/")
    if posix.is_absolute() or win.is_absolute() or win.drive or win.root or name.startswith("~"):
        raise ConfigError(f"{source}: {key} must be relative to the model folder, got the absolute path {name!r}")
    if ".." in parts:
        raise ConfigError(f"{source}: {key} must stay inside the model folder, got {name!r} (contains '..')")
    if "\0" in name or any(ord(c) < 32 for c in name):
        raise ConfigError(f"{source}: {key} contains control characters: {name!r}")
    return name


def read_config(config_path: Path) -> dict:
    """config.yaml as a dict (safe YAML; bounded size and nesting), or ConfigError naming the file."""
    import yaml

    try:
        if config_path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{config_path}: larger than {MAX_CONFIG_BYTES} bytes; not an IndexTTS config")
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"{config_path}: not valid YAML ({e})") from e
    except RecursionError:
        raise ConfigError(f"{config_path}: nested too deeply") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{config_path}: expected a mapping at the top level, got {type(raw).__name__}")
    return raw


def file_names(config_path: Path, raw: dict | None = None) -> dict[str, str]:
    """Model file names from config.yaml (official defaults where absent), each checked by `safe_name`.
    Keys: those of DEFAULT_NAMES, plus `codec` and `tokenizer` (2.5 names the config does not carry)."""
    if raw is None:
        raw = read_config(config_path) if config_path.is_file() else {}
    dataset = raw.get("dataset") if isinstance(raw.get("dataset"), dict) else {}
    found = {**{key: raw.get(key) for key in DEFAULT_NAMES}, "bpe_model": dataset.get("bpe_model")}
    names = {key: DEFAULT_NAMES[key] if found[key] is None else found[key] for key in DEFAULT_NAMES}
    names["codec"], names["tokenizer"] = CODEC_25, TIKTOKEN_25
    return {key: safe_name(value, key, str(config_path)) for key, value in names.items()}


def detect_version(folder: str | Path) -> str | None:
    """"2" or "2.5" for an IndexTTS model folder, from its files and config.yaml; None when it holds
    neither kind (e.g. an empty folder). ModelVersionError when they contradict each other."""
    folder = Path(folder)
    config = folder / "config.yaml"
    raw = read_config(config) if config.is_file() else {}
    names = file_names(config, raw)
    v2_files = [n for n in (names["bpe_model"],) if (folder / n).is_file()]
    v25_files = [n for n in (names["codec"], names["tokenizer"]) if (folder / n).is_file()]
    gpt = raw.get("gpt") if isinstance(raw.get("gpt"), dict) else {}
    config_25 = str(raw.get("version")) == "2.5" or gpt.get("number_text_tokens") == V25_TEXT_TOKENS
    if v25_files and not v2_files:
        return "2.5"
    if v2_files and not v25_files:
        if config_25:
            raise ModelVersionError(
                f"{folder}: config.yaml describes IndexTTS-2.5 but the folder holds {v2_files[0]} (IndexTTS-2) "
                f"and neither {CODEC_25} nor {TIKTOKEN_25}; put the files of one version in the folder")
        return "2"
    if v2_files and v25_files:
        if config_25:  # an IndexTTS-2.5 download over an IndexTTS-2 folder keeps the old bpe.model
            return "2.5"
        raise ModelVersionError(
            f"{folder}: holds files of both versions ({', '.join(v2_files + v25_files)}) and config.yaml does not "
            f"say IndexTTS-2.5; keep IndexTTS-2 and IndexTTS-2.5 in separate folders")
    return "2.5" if config_25 else None


@dataclass(frozen=True)
class HubFile:
    """One file of a hub repository and where it lives locally."""

    repo: str
    filename: str  # path inside the hub repo
    local: Path  # path in the chosen layout
    optional: bool = False  # downloaded when the hub has it, never reported missing
    t2e: bool = False  # belongs to the Qwen emotion model
    revision: str = "main"


@dataclass(frozen=True)
class ModelPaths:
    """Resolved paths of every model file (whether or not they exist yet)."""

    root: Path  # the folder downloads complete (pack root, official folder, or hub cache)
    layout: str  # "pack" | "official" | "hf-cache"
    version: str  # "2" | "2.5"
    config: Path
    gpt: Path
    s2mel: Path
    bpe: Path | None  # IndexTTS-2: SentencePiece model
    w2v_stats: Path
    spk_matrix: Path  # feat1.pt
    emo_matrix: Path  # feat2.pt
    qwen_dir: Path
    w2v_bert_dir: Path
    semantic_codec: Path | None  # IndexTTS-2: MaskGCT semantic codec (2.5 does not use it)
    campplus: Path
    bigvgan_dir: Path
    codec: Path | None = None  # IndexTTS-2.5: codec.pth
    tokenizer: Path | None = None  # IndexTTS-2.5: the .tiktoken vocabulary
    revisions: dict = field(default_factory=dict, compare=False, repr=False)  # hf-cache: repo -> snapshot

    @property
    def bigvgan_config(self) -> Path:
        return self.bigvgan_dir / "config.json"

    @property
    def bigvgan_weights(self) -> Path:
        return prefer_safetensors(self.bigvgan_dir / "bigvgan_generator.pt")

    @property
    def indextts2_dir(self) -> Path:
        """The IndexTeam model folder (config.yaml, gpt.pth, ...) of either version."""
        return self.config.parent

    @property
    def repo(self) -> str:
        return MAIN_REPOS[self.version]

    @classmethod
    def locate(cls, root: str | Path, version: str | None = None, *, search=None) -> "ModelPaths":
        """Resolve the files under `root`: the official layout when `root` holds config.yaml or
        hf_cache/, else the pack layout (`root/IndexTTS-2` or `root/IndexTTS-2.5`).

        `version` ("2", "2.5" or None = from the folder; "2" for an empty one) picks the model and must
        agree with what the folder holds. `search`: extra places for the helper models (a list of
        `helper_places(...)` dicts); None = the folders next to the model folder and the HF cache."""
        root = Path(root).expanduser()
        if version is not None and version not in VERSIONS:
            raise ValueError(f"unknown IndexTTS version {version!r} (use one of {', '.join(VERSIONS)})")
        if (root / "config.yaml").is_file() or (root / "hf_cache").is_dir():
            main, layout, own = root, "official", official_helpers(root)
        else:
            main, layout, own = root / PACK_DIRS[MAIN_REPOS[version or "2"]], "pack", pack_helpers(root)
            if version is None:
                present = [v for v in VERSIONS if (root / PACK_DIRS[MAIN_REPOS[v]]).is_dir()]
                if len(present) > 1:
                    raise ModelVersionError(
                        f"{root} holds both IndexTTS-2/ and IndexTTS-2.5/; say which one to use (version 2 or 2.5)")
                if present:
                    main = root / PACK_DIRS[MAIN_REPOS[present[0]]]
        if search is None:
            search = default_search(main)
        return cls.build(main, root=root, layout=layout, own=own, version=version, search=search)

    @classmethod
    def build(cls, main: Path, *, root: Path, layout: str, own: dict, version: str | None = None,
              search=(), revisions: dict | None = None) -> "ModelPaths":
        """Paths for the model folder `main`, its helpers at `own` (a `helper_places` dict) unless a
        complete copy is missing there and found in one of `search`."""
        detected = detect_version(main)
        if version is not None and detected is not None and detected != version:
            raise ModelVersionError(f"{main} holds IndexTTS-{detected}, not IndexTTS-{version}")
        version = detected or version or ("2.5" if main.name == PACK_DIRS[INDEXTTS25_REPO] else "2")
        names = file_names(main / "config.yaml")
        helpers = {}
        for key in HELPERS:
            helpers[key] = own[key]
            if not helper_complete(key, own[key]):
                for place in search:
                    if place.get(key) is not None and helper_complete(key, place[key]):
                        helpers[key] = place[key]
                        break
        v2 = version == "2"
        return cls(
            root=root, layout=layout, version=version, config=main / "config.yaml",
            gpt=prefer_safetensors(main / names["gpt_checkpoint"]),
            s2mel=prefer_safetensors(main / names["s2mel_checkpoint"]),
            bpe=main / names["bpe_model"] if v2 else None,
            w2v_stats=prefer_safetensors(main / names["w2v_stat"]),
            spk_matrix=prefer_safetensors(main / names["spk_matrix"]),
            emo_matrix=prefer_safetensors(main / names["emo_matrix"]),
            qwen_dir=main / names["qwen_emo_path"].rstrip("/\\"),
            w2v_bert_dir=helpers["w2v_bert_dir"], semantic_codec=helpers["semantic_codec"] if v2 else None,
            campplus=prefer_safetensors(helpers["campplus"]), bigvgan_dir=helpers["bigvgan_dir"],
            codec=None if v2 else prefer_safetensors(main / names["codec"]),
            tokenizer=None if v2 else main / names["tokenizer"],
            revisions=dict(revisions or {}),
        )

    def hub_files(self, include_t2e: bool = False) -> list[HubFile]:
        """Every file the pipeline reads, with its hub origin, where it is (or would go) locally."""
        main, repo = self.indextts2_dir, self.repo
        names = file_names(self.config)
        rev = self.revisions.get
        keys = ["gpt_checkpoint", "s2mel_checkpoint"]
        keys += ["bpe_model"] if self.version == "2" else ["codec", "tokenizer"]
        keys += ["w2v_stat", "spk_matrix", "emo_matrix"]
        out = [HubFile(repo, "config.yaml", self.config, revision=rev(repo, "main"))]
        out += [HubFile(repo, _posix(names[k]), main / names[k], revision=rev(repo, "main")) for k in keys]
        if include_t2e:
            sub = _posix(names["qwen_emo_path"]).strip("/")
            for f in QWEN_REQUIRED + QWEN_OPTIONAL:
                out.append(HubFile(repo, f"{sub}/{f}", self.qwen_dir / f, optional=f in QWEN_OPTIONAL, t2e=True,
                                   revision=rev(repo, "main")))
        out += [HubFile(W2V_BERT_REPO, f, self.w2v_bert_dir / f, revision=rev(W2V_BERT_REPO, "main"))
                for f in W2V_BERT_FILES]
        if self.semantic_codec is not None:
            out.append(HubFile(MASKGCT_REPO, MASKGCT_FILE, self.semantic_codec.with_suffix(".safetensors"),
                               revision=rev(MASKGCT_REPO, "main")))
        out.append(HubFile(CAMPPLUS_REPO, CAMPPLUS_FILE, self.campplus.with_suffix(".bin"),
                           revision=rev(CAMPPLUS_REPO, "main")))
        out += [HubFile(BIGVGAN_REPO, f, self.bigvgan_dir / f, revision=rev(BIGVGAN_REPO, "main"))
                for f in BIGVGAN_FILES]
        return out

    def missing(self, include_t2e: bool = False) -> list[str]:
        """Paths of required files that are absent (a `.safetensors` sibling counts as present)."""
        return [str(f.local) for f in self.missing_files(include_t2e)]

    def missing_files(self, include_t2e: bool = False) -> list[HubFile]:
        return [f for f in self.hub_files(include_t2e) if not f.optional and not prefer_safetensors(f.local).is_file()]

    def require(self, include_t2e: bool = False) -> "ModelPaths":
        """Raise one `ModelFilesError` listing every missing file and how to get it."""
        missing = self.missing(include_t2e)
        if missing:
            lines = "\n".join(f"  {m}" for m in missing)
            if self.layout == "hf-cache":
                how = ("Download them into that Hugging Face cache with huggingface_hub, or choose a models "
                       "folder and download the whole set with:\n  "
                       + download_command("models/indextts2", self.version, include_t2e))
            else:
                how = "Download them with:\n  " + download_command(self.root, self.version, include_t2e)
            raise ModelFilesError(
                f"{len(missing)} IndexTTS-{self.version} model file(s) missing under {self.root} "
                f"({self.layout} layout):\n{lines}\n{how}")
        return self

    def describe(self) -> str:
        return "\n".join(f"{f.name}: {getattr(self, f.name)}" for f in fields(self) if f.name != "revisions")


def pack_helpers(root: Path) -> dict:
    """Helper model places in the pack layout under `root`."""
    return {"w2v_bert_dir": root / PACK_DIRS[W2V_BERT_REPO],
            "semantic_codec": root / PACK_DIRS[MASKGCT_REPO] / MASKGCT_FILE,
            "campplus": root / PACK_DIRS[CAMPPLUS_REPO] / CAMPPLUS_FILE,
            "bigvgan_dir": root / PACK_DIRS[BIGVGAN_REPO]}


def official_helpers(root: Path) -> dict:
    """Helper model places of the official layout (`root/hf_cache/`, flat)."""
    ext = root / "hf_cache"
    return {"w2v_bert_dir": ext / "w2v-bert-2.0", "semantic_codec": ext / "semantic_codec_model.safetensors",
            "campplus": ext / CAMPPLUS_FILE, "bigvgan_dir": ext / "bigvgan"}


def cache_helpers(hub: Path) -> dict:
    """Helper model places in a hub cache (None where the repository has no snapshot)."""
    out = {}
    for key, repo in HELPER_REPOS.items():
        snap = snapshot_dir(hub, repo)
        out[key] = None if snap is None else {"w2v_bert_dir": snap, "semantic_codec": snap / MASKGCT_FILE,
                                              "campplus": snap / CAMPPLUS_FILE, "bigvgan_dir": snap}[key]
    return out


def helper_places(folder: Path) -> list[dict]:
    """Every way `folder` may hold helper models: pack layout, official `hf_cache/`, and `hf_cache/`
    used as a hub cache (the older official code passed it as cache_dir)."""
    return [pack_helpers(folder), official_helpers(folder), cache_helpers(folder / "hf_cache")]


def default_search(main: Path, hub: Path | None | bool = True) -> list[dict]:
    """Helpers next to the model folder (TTS-Audio-Suite: models/TTS/IndexTTS-2 beside
    models/TTS/w2v-bert-2.0, or under models/TTS/IndexTTS/), then `hub` (True: the HF cache)."""
    parent = main.parent
    places = [pack_helpers(parent), pack_helpers(parent / "IndexTTS"), cache_helpers(main / "hf_cache")]
    if hub is True:
        hub = hub_cache_dir()
    return places + ([cache_helpers(Path(hub))] if hub else [])


def helper_complete(key: str, path: Path | None) -> bool:
    """Whether the helper model `key` (a HELPERS name) is complete at `path`."""
    if path is None:
        return False
    if key == "w2v_bert_dir":
        return all((path / f).is_file() for f in W2V_BERT_FILES)
    if key == "bigvgan_dir":
        return (path / "config.json").is_file() and prefer_safetensors(path / "bigvgan_generator.pt").is_file()
    return prefer_safetensors(path).is_file()


def _posix(name: str) -> str:
    return name.replace("\\", "/")


def prefer_safetensors(path: Path) -> Path:
    """`x.safetensors` when it exists next to `x.pth/.pt/.bin`, else `path`."""
    if path.suffix in CONVERTIBLE:
        alt = path.with_suffix(".safetensors")
        if alt.is_file():
            return alt
    return path
