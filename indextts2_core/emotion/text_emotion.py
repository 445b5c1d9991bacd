"""Emotion from text (spec §1.7, §5.3): the Qwen3-0.6B fine-tune `qwen0.6bemo4-merge/` reads a text
and answers with scores for the 8 emotion labels of `EMOTIONS_ZH`, normally as JSON.

Prompt (official): system message `文本情感分类`, user message = the text, rendered with the model's
own chat template with `add_generation_prompt=True, enable_thinking=False`. The generated ids
after the prompt are cut after the last `</think>` token (id looked up in the tokenizer: 151668 for
the real model) and decoded with special tokens skipped; `parse_emotion_output` turns the text into
the 8-vector in `EMOTIONS` order.

Decoding: by default as the official call, with the settings of the folder's generation_config.json
(Qwen3's own samples: temperature 0.6, top-p 0.95, top-k 20), seeded by `seed` so that a seed gives
the same emotion every time (the global RNG is left as it was); `decoding="greedy"` always takes the
most likely token instead.

Deviations from the official code, on purpose:
* at most `max_new_tokens` (default 256) tokens are generated instead of 32768 — a full answer is
  under 100 tokens; a truncated answer is still read by the fallback pattern;
* malformed output never raises: values that are not numbers count as 0 and the all-zero result
  falls back to calm, each with a log line (the official code raises on a non-numeric value).

transformers is imported only when the model is loaded. Works with transformers 4.5x and 5.x.
"""

from __future__ import annotations

import gc
import json
import logging
import math
import re
from pathlib import Path

import torch

from ..checkpoints import CheckpointError
from .vectors import EMOTIONS, EMOTIONS_ZH

log = logging.getLogger(__name__)

SYSTEM_PROMPT = "文本情感分类"
THINK_END = "</think>"
DEFAULT_MAX_NEW_TOKENS = 256
DECODINGS = ("official", "greedy")  # generation_config.json (may sample) / argmax
MAX_SCORE = 1.2  # the official clamp of each parsed score

_SCORE_PATTERN = re.compile(r'([^\s":.,]+?)"?\s*:\s*([\d.]+)')  # official fallback when not JSON
_MELANCHOLY_WORDS = ("低落", "melancholy", "melancholic", "depression", "depressed", "gloomy")
_LABEL_FIELDS = ("emotion", "emotion_label", "label", "情感", "情绪")
_SAD, _MELANCHOLIC, _CALM = EMOTIONS_ZH[2], EMOTIONS_ZH[5], EMOTIONS.index("calm")


# ---- parsing (§5.3 steps 4–8) ------------------------------------------------------------------

def _label(value) -> str | None:
    """The Chinese key of an emotion named by `value` (Chinese label or English name, any case)."""
    if not isinstance(value, str):
        return None
    v = value.strip().lower()
    for zh, en in zip(EMOTIONS_ZH, EMOTIONS):
        if v == zh or v == en:
            return zh
    return None


def _decode(text: str):
    """Step 4: JSON, else every `key: number` match of the official pattern (later keys win)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass
    pairs = {}
    for key, value in _SCORE_PATTERN.findall(text):
        try:
            pairs[key] = float(value)
        except ValueError:  # e.g. "0.5." at the end of a sentence
            log.warning("text emotion: ignored unreadable score %r for %r", value, key)
    log.warning("text emotion: model output is not JSON, read %d score(s) with the fallback pattern: %r",
                len(pairs), text[:200])
    return pairs


def _swap_melancholy(content, input_text: str):
    """Step 5: the fine-tune confuses sad and melancholic; swap them when the input names melancholy.
    A dict with neither key is left as it is (swapping two missing zeros changes nothing)."""
    if not isinstance(content, dict) or not any(w in input_text.lower() for w in _MELANCHOLY_WORDS):
        return content
    if _SAD not in content and _MELANCHOLIC not in content:
        return content
    content = dict(content)
    content[_SAD], content[_MELANCHOLIC] = content.get(_MELANCHOLIC, 0.0), content.get(_SAD, 0.0)
    return content


def _repair_labels(content) -> dict:
    """Step 6: outputs that name an emotion instead of scoring it."""
    named = _label(content)
    if named is not None:  # "高兴" / "Happy" as the whole answer
        return {named: 1.0}
    if not isinstance(content, dict):
        if content not in ({}, None):
            log.warning("text emotion: model output is neither scores nor a label: %r", str(content)[:200])
        return {}
    out = dict(content)
    if not any(zh in out for zh in EMOTIONS_ZH):  # {"emotion": "sad", ...}
        for field in _LABEL_FIELDS:
            named = _label(out.get(field))
            if named is not None:
                out[named] = 1.0
                break
        return out
    named_set = []
    for zh in EMOTIONS_ZH:  # {"悲伤": "低落"}: the key loses, the named emotion gets 1.0
        named = _label(out.get(zh))
        if named is not None:
            out[zh] = 1.0 if named == zh else 0.0
            named_set.append(named)
    for zh in named_set:
        out[zh] = 1.0
    return out


def _score(content: dict, key: str) -> float:
    """Step 7 for one key: clamp(float(v), 0, 1.2), missing → 0."""
    v = content.get(key, 0.0)
    try:
        f = float(v)
    except (TypeError, ValueError):
        log.warning("text emotion: score for %s is not a number (%r); using 0", key, v)
        return 0.0
    if math.isnan(f):
        log.warning("text emotion: score for %s is NaN; using 0", key)
        return 0.0
    return min(max(f, 0.0), MAX_SCORE)


def parse_emotion_output(raw: str, input_text: str) -> list[float]:
    """The model's answer → 8 scores in `EMOTIONS` order (§5.3 steps 4–8). Never raises on malformed
    output: what cannot be read counts as 0, and an answer without any positive score means calm."""
    if not isinstance(raw, str) or not isinstance(input_text, str):
        raise ValueError(f"parse_emotion_output needs two strings, got {type(raw).__name__} "
                         f"and {type(input_text).__name__}")
    text = raw.rsplit(THINK_END, 1)[-1]  # mirrors the id-level cut of step 3 for text that kept it
    content = _repair_labels(_swap_melancholy(_decode(text), input_text))
    scores = [_score(content, zh) for zh in EMOTIONS_ZH]
    if all(s <= 0 for s in scores):
        log.warning("text emotion: no positive score in the model output %r; using calm", raw[:200])
        scores[_CALM] = 1.0
    return scores


def cut_after_think(ids: list[int], think_end_id: int | None) -> list[int]:
    """Step 3: keep only the ids after the last `</think>` (all of them when there is none)."""
    if think_end_id is None or think_end_id not in ids:
        return list(ids)
    last = len(ids) - 1 - ids[::-1].index(think_end_id)
    return list(ids[last + 1:])


# ---- model -----------------------------------------------------------------------------------

def _dtype_kwarg(transformers_module) -> str:
    """`from_pretrained` took `torch_dtype` before transformers 4.56 and `dtype` since."""
    parts = re.findall(r"\d+", transformers_module.__version__)[:2]
    major, minor = (int(p) for p in parts) if len(parts) == 2 else (0, 0)
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


class TextEmotionModel:
    """The Qwen text → emotion classifier, loaded from a local folder on first use (or by `load`),
    released by `unload()` (a later call loads it again)."""

    def __init__(self, folder: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
                 max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, decoding: str = "official"):
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens <= 0:
            raise ValueError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
        if decoding not in DECODINGS:
            raise ValueError(f"unknown text-emotion decoding {decoding!r}; choose one of {DECODINGS}")
        self.decoding = decoding
        self.folder = Path(folder)
        self.device = torch.device(device)
        # the official code runs it in float16; fp16 matmuls on CPU are slow, so fp32 there by default
        self.dtype = dtype if dtype is not None else (torch.float16 if self.device.type == "cuda" else torch.float32)
        self.max_new_tokens = max_new_tokens
        self.model = None
        self.tokenizer = None
        self.think_end_id: int | None = None

    @classmethod
    def load(cls, folder: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
             max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, decoding: str = "official") -> "TextEmotionModel":
        m = cls(folder, device, dtype, max_new_tokens, decoding)
        m.ensure_loaded()
        return m

    @property
    def is_loaded(self) -> bool:
        return self.model is not None

    def ensure_loaded(self) -> None:
        if self.is_loaded:
            return
        if not (self.folder / "config.json").is_file():
            raise FileNotFoundError(f"text-emotion model folder {self.folder} has no config.json "
                                    "(expected the official qwen0.6bemo4-merge/ folder)")
        import transformers

        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(str(self.folder), local_files_only=True)
            model, info = transformers.AutoModelForCausalLM.from_pretrained(
                str(self.folder), local_files_only=True, output_loading_info=True,
                **{_dtype_kwarg(transformers): self.dtype})
        except OSError as e:
            raise FileNotFoundError(f"text-emotion model in {self.folder} could not be read: {e}") from e
        problems = {k: list(info.get(k) or []) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
        if any(problems.values()):
            raise CheckpointError(f"{self.folder}: text-emotion weights do not match the model: "
                                  + "; ".join(f"{k} {v[:10]}" for k, v in problems.items() if v))
        if not getattr(tokenizer, "chat_template", None):
            raise CheckpointError(f"{self.folder}: tokenizer has no chat template")
        self.think_end_id = tokenizer.get_vocab().get(THINK_END)
        if self.think_end_id is None:
            log.warning("text emotion: tokenizer has no %s token; the whole answer is parsed", THINK_END)
        self.tokenizer = tokenizer
        self.model = model.to(self.device, self.dtype).eval()
        log.info("text emotion model loaded from %s on %s (%s)", self.folder, self.device, self.dtype)

    def unload(self) -> None:
        """Drop the model and tokenizer and release their memory."""
        if self.model is None:
            return
        self.model = None
        self.tokenizer = None
        gc.collect()
        if self.device.type == "cuda" and torch.cuda.is_available():
            torch.cuda.empty_cache()

    def build_prompt(self, text: str) -> str:
        """The official chat: system `文本情感分类`, user = text, generation prompt, thinking off."""
        self.ensure_loaded()
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": text}]
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                                  enable_thinking=False)

    def generate_raw(self, text: str, seed: int | None = None) -> str:
        """The model's decoded answer for `text` (after `</think>`, special tokens skipped). `seed`
        makes sampling reproducible without touching the global RNG; None draws from the global RNG
        (as the official code does). Greedy decoding ignores it."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError("emotion text is empty")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
        prompt = self.build_prompt(text)
        enc = self.tokenizer([prompt], return_tensors="pt")
        input_ids = enc["input_ids"].to(self.device)
        attention_mask = enc["attention_mask"].to(self.device)
        pad_id = self.tokenizer.eos_token_id  # official: pad_token_id=eos_token_id
        if pad_id is None:
            eos = self.model.generation_config.eos_token_id
            pad_id = eos[0] if isinstance(eos, (list, tuple)) else eos
        settings = dict(max_new_tokens=self.max_new_tokens, pad_token_id=pad_id)
        if self.decoding == "greedy":
            # keyword arguments override generation_config.json in transformers 4.5x and 5.x alike;
            # None clears its sampling-only settings
            settings.update(do_sample=False, num_beams=1, temperature=None, top_p=None, top_k=None)
        cuda = self.device.type == "cuda"
        with torch.inference_mode(), torch.random.fork_rng(devices=[self.device] if cuda else [],
                                                           enabled=seed is not None):
            if seed is not None:  # only the generators fork_rng restores (not every GPU's)
                torch.random.default_generator.manual_seed(seed)
                if cuda:
                    with torch.cuda.device(self.device):
                        torch.cuda.manual_seed(seed)
            out = self.model.generate(input_ids=input_ids, attention_mask=attention_mask, **settings)
        new_ids = out[0, input_ids.shape[1]:].tolist()
        eos = self.model.generation_config.eos_token_id
        eos = set(eos if isinstance(eos, (list, tuple)) else [eos]) | {self.tokenizer.eos_token_id}
        if len(new_ids) >= self.max_new_tokens and new_ids[-1] not in eos:
            log.warning("text emotion: answer cut at max_new_tokens=%d", self.max_new_tokens)
        return self.tokenizer.decode(cut_after_think(new_ids, self.think_end_id), skip_special_tokens=True)

    def scores(self, text: str, seed: int | None = None) -> list[float]:
        """8 emotion scores in `EMOTIONS` order, each in [0, 1.2] (feed them to `scale_vector`);
        `seed` as in `generate_raw`."""
        raw = self.generate_raw(text, seed)
        scores = parse_emotion_output(raw, text)
        log.info("text emotion: %r -> %s", raw[:200], dict(zip(EMOTIONS, scores)))
        return scores
