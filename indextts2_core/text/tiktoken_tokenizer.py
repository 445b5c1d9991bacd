"""The IndexTTS-2.5 tokenizer (spec 2.5 §1.7, §3.2): byte-level BPE over
`multilingual_zh_ja_yue_char_del.tiktoken` plus 1 673 special tokens, 60 509 ids in all.

Text is always encoded with every special token allowed: a literal `<|HAPPY|>` in the text is that
token. `LANGUAGES` lists the 106 language codes of the official code; the first 99 are also special
tokens (`<|en|>` = 58 838 + index).

tiktoken is imported when a tokenizer is built (pip install tiktoken).
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path

from ..checkpoints import CheckpointError

PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

LANGUAGES = (
    "en zh de es ru ko fr ja pt tr pl ca nl ar sv it id hi fi vi he uk el ms cs ro da hu ta no th ur hr bg "
    "lt la mi ml cy sk te fa lv bn sr az sl kn et mk br eu is hy ne mn bs kk sq sw gl mr pa si km sn yo so "
    "af oc ka be tg sd gu am yi lo uz fo ht ps tk nn mt sa lb my bo tl mg as tt haw ln ha ba jw su "
    "yue minnan wuyu dialect zh/en en/zh common"
).split()
_BASE64 = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
SPECIAL_LANGUAGES = 99  # the first 99 codes are special tokens
COMMON = LANGUAGES.index("common")  # 105: the index of any code not in LANGUAGES

SPECIAL_TOKEN_1 = "<|SPECIAL_TOKEN_1|>"  # wraps an ARPAbet annotation
SPECIAL_TOKEN_2 = "<|SPECIAL_TOKEN_2|>"  # wraps a pinyin annotation


def special_tokens() -> list[str]:
    """The special tokens in id order, starting right after the BPE ranks."""
    return [
        "<|endoftext|>", "<|startoftranscript|>",
        *(f"<|{code}|>" for code in LANGUAGES[:SPECIAL_LANGUAGES]),
        *(f"<|{name}|>" for name in ("ASR", "AED", "SER", "Speech", "/Speech", "BGM", "/BGM", "Laughter",
                                      "/Laughter", "Applause", "/Applause", "HAPPY", "SAD", "ANGRY", "NEUTRAL",
                                      "translate", "transcribe", "startoflm", "startofprev", "nospeech",
                                      "notimestamps")),
        *(f"<|SPECIAL_TOKEN_{i}|>" for i in range(1, 31)),
        *(f"<|TTS/{name}|>" for name in ("B", "O", "Q", "A", "CO", "CL", "H", *(f"SP{i:02d}" for i in range(1, 14)))),
        *(f"<|{i * 0.02:.2f}|>" for i in range(1501)),
    ]


def language_index(code: str) -> int:
    """The language embedding row of `code` (case-insensitive); unknown codes share `common`."""
    code = code.lower()
    return LANGUAGES.index(code) if code in LANGUAGES else COMMON


def read_ranks(path: Path) -> dict[bytes, int]:
    """`base64(token) rank` per line, ranks 0..N-1 each once; anything else is a CheckpointError."""
    if not path.is_file():
        raise FileNotFoundError(f"tiktoken vocabulary not found: {path}")
    ranks: dict[bytes, int] = {}
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.split()
            try:
                if len(parts) != 2 or not _BASE64.fullmatch(parts[0]):
                    raise ValueError("expected 'base64 rank'")
                token, rank = base64.b64decode(parts[0]), int(parts[1])  # "=" is the empty token
            except (IndexError, ValueError, binascii.Error) as e:
                raise CheckpointError(f"{path}: line {n} is not 'base64 rank': {line[:60]!r} ({e})") from e
            if token in ranks:
                raise CheckpointError(f"{path}: line {n}: token {token!r} listed twice")
            ranks[token] = rank
    if sorted(ranks.values()) != list(range(len(ranks))):
        raise CheckpointError(f"{path}: ranks are not 0..{len(ranks) - 1}, each once")
    if len(ranks) < 256:
        raise CheckpointError(f"{path}: only {len(ranks)} tokens (a byte-level vocabulary has at least 256)")
    return ranks


class TiktokenTokenizer:
    """`encode(text) -> ids` with all special tokens allowed; `decode(ids) -> str`."""

    def __init__(self, path: str | Path):
        try:
            import tiktoken
        except ImportError as e:
            raise ImportError("the IndexTTS-2.5 text front end needs tiktoken: pip install tiktoken") from e
        self.path = Path(path)
        ranks = read_ranks(self.path)
        specials = {tok: len(ranks) + i for i, tok in enumerate(special_tokens())}
        self.encoding = tiktoken.Encoding(self.path.stem, pat_str=PATTERN, mergeable_ranks=ranks,
                                          special_tokens=specials)
        self.vocab_size = self.encoding.n_vocab

    def encode(self, text: str) -> list[int]:
        return self.encoding.encode(text, allowed_special="all")

    def count(self, text: str) -> int:
        return len(self.encode(text))

    def decode(self, ids: list[int]) -> str:
        return self.encoding.decode(ids)

    def token_id(self, token: str) -> int:
        """The id of a special token such as `<|zh|>`."""
        return self.encoding.encode_single_token(token)
