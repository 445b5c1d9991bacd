"""The normaliser's glossary (spec §1.1, §3.2): `glossary.yaml` of a model folder, when present.

Format: a YAML mapping of term → reading, the reading either a string (both languages) or a mapping
of language → string (`zh` is used on the Chinese path, `en` on the English path; a term without a
reading for the path's language stays as written). Terms are replaced case-insensitively, longest
first, after the contraction rewrite and before the TN engine (normalizer.py).

The file is read with `yaml.safe_load` (no Python tags) and checked strictly: anything else than
that format, and duplicate terms (YAML would silently keep the last), is refused with a ValueError
naming the file and the entry.
"""

from __future__ import annotations

from pathlib import Path

import yaml

GLOSSARY_FILE = "glossary.yaml"


class _StrictLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, str) and key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate term {key!r}", key_node.start_mark)
            if isinstance(key, str):
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_glossary(path: str | Path) -> dict[str, str | dict[str, str]]:
    """Read and check a glossary file; an empty file is an empty glossary."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"glossary {path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    try:
        data = yaml.load(raw, Loader=_StrictLoader)
    except yaml.YAMLError as e:
        raise ValueError(f"glossary {path}: malformed YAML: {e}") from e
    except RecursionError as e:
        raise ValueError(f"glossary {path}: nested too deeply") from e
    try:
        return check_glossary({} if data is None else data)
    except ValueError as e:
        raise ValueError(f"glossary {path}: {e}") from e


def check_glossary(glossary) -> dict[str, str | dict[str, str]]:
    """`glossary` if it has the format above (a copy), else a ValueError naming the bad entry."""
    if not isinstance(glossary, dict):
        raise ValueError(f"expected a mapping of term -> reading, got {type(glossary).__name__}")
    for term, value in glossary.items():
        if not isinstance(term, str) or not term:
            raise ValueError(f"term {term!r} must be a non-empty string (quote it in YAML)")
        if isinstance(value, dict):
            for lang, reading in value.items():
                if not isinstance(lang, str) or not isinstance(reading, str):
                    raise ValueError(f"term {term!r}: language readings must be strings, got {lang!r}: {reading!r} "
                                     "(quote it in YAML)")
        elif not isinstance(value, str):
            raise ValueError(f"term {term!r}: the reading must be a string or a mapping like "
                             f"{{zh: ..., en: ...}}, got {type(value).__name__} {value!r} (quote it in YAML)")
    return {term: dict(value) if isinstance(value, dict) else value for term, value in glossary.items()}
