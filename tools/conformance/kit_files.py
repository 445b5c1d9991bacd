"""Kit file repair: the e2e parity kits' `bpe.model` (whose training path was scrubbed after
saving) carries a TrainerSpec whose `model_prefix` string length was overwritten, so the string
swallows the fields after it (model_type, vocab_size, ...); it is then invalid UTF-8 and
sentencepiece refuses the whole file. Those fields are intact, only the length is wrong:
`repair_sentencepiece` re-splits the string at the last point after which the rest parses. The
TrainerSpec is the only record repaired (it holds no vocabulary). Real model files never need
this; the pack's tokenizer refuses such a file with a checkpoint error.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def _varint(b: bytes, i: int) -> tuple[int, int]:
    out = shift = 0
    while True:
        if i >= len(b):
            raise ValueError("truncated varint")
        c = b[i]
        i += 1
        out |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return out, i


def _enc_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _fields(b: bytes) -> list[tuple[int, int, bytes]]:
    """(field number, wire type, raw value bytes) of one protobuf message, or ValueError."""
    i, out = 0, []
    while i < len(b):
        key, i = _varint(b, i)
        num, wt = key >> 3, key & 7
        start = i
        if num == 0:
            raise ValueError("field number 0")
        if wt == 0:
            _, i = _varint(b, i)
        elif wt == 1:
            i += 8
        elif wt == 5:
            i += 4
        elif wt == 2:
            n, i = _varint(b, i)
            start, i = i, i + n
        else:
            raise ValueError(f"wire type {wt}")
        if i > len(b):
            raise ValueError("truncated field")
        out.append((num, wt, b[start:i]))
    return out


def _encode(fields: list[tuple[int, int, bytes]]) -> bytes:
    out = bytearray()
    for num, wt, raw in fields:
        out += _enc_varint(num << 3 | wt)
        out += _enc_varint(len(raw)) + raw if wt == 2 else raw
    return bytes(out)


def _split_string(raw: bytes) -> list[tuple[int, int, bytes]] | None:
    """A string that swallowed the fields after it -> [string, fields...], or None."""
    k = 0
    while k < len(raw) and 0x20 <= raw[k] < 0x7F:  # the printable stem of the (path-like) string
        k += 1
    for cut in range(k, -1, -1):
        try:
            rest = _fields(raw[cut:])
        except ValueError:
            continue
        return [(0, 2, raw[:cut])] + rest
    return None


def _lenient_fields(raw: bytes) -> tuple[list[tuple[int, int, bytes]], bool]:
    """Fields of a message whose first broken string (overrunning length or invalid UTF-8) is
    re-split with `_split_string`; (fields, whether something was fixed)."""
    i, out = 0, []
    while i < len(raw):
        key, j = _varint(raw, i)
        num, wt = key >> 3, key & 7
        if wt == 2:
            n, k = _varint(raw, j)
            payload = raw[k:k + n]
            valid = k + n <= len(raw)
            if valid:
                try:
                    payload.decode("utf-8")
                except UnicodeDecodeError:
                    valid = False
            if not valid:
                parts = _split_string(raw[k:])
                if parts is None:
                    raise ValueError("unrepairable string field")
                return out + [(num, 2, parts[0][2])] + parts[1:], True
        out += _fields(raw[i:_next(raw, i)])
        i = _next(raw, i)
    return out, False


def _next(raw: bytes, i: int) -> int:
    """Offset just after the field starting at i."""
    key, i = _varint(raw, i)
    wt = key & 7
    if wt == 0:
        return _varint(raw, i)[1]
    if wt == 2:
        n, i = _varint(raw, i)
        return i + n
    if wt in (1, 5):
        return i + (8 if wt == 1 else 4)
    raise ValueError(f"wire type {wt}")


def repair_sentencepiece(data: bytes) -> bytes | None:
    """The serialized ModelProto with its TrainerSpec re-split, or None if nothing to fix."""
    try:
        top = _fields(data)
        changed = False
        for t, (num, wt, raw) in enumerate(top):
            if num == 2 and wt == 2:  # ModelProto.trainer_spec
                spec, fixed = _lenient_fields(raw)
                if fixed:
                    top[t] = (num, wt, _encode(spec))
                    changed = True
    except ValueError:
        return None
    return _encode(top) if changed else None


def readable_bpe(path: str | Path, out_dir: str | Path) -> Path:
    """`path` if sentencepiece reads it, else a repaired copy written to `out_dir` (ValueError when
    the damage is not the known TrainerSpec one)."""
    import sentencepiece as spm

    path = Path(path)
    data = path.read_bytes()
    try:
        spm.SentencePieceProcessor(model_proto=data)
        return path
    except RuntimeError as e:
        fixed = repair_sentencepiece(data)
        if fixed is None:
            raise ValueError(f"{path}: not a readable SentencePiece model ({e})") from e
        spm.SentencePieceProcessor(model_proto=fixed)  # raises if the repair did not help
    log.info("%s: TrainerSpec string length repaired into a copy", path)
    out = Path(out_dir) / f"repaired_{path.name}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(fixed)
    return out


def repair_bpe_in_place(path: str | Path) -> None:
    """Rewrite a kit's damaged bpe.model with its repaired content (a materialised, writable kit)."""
    path = Path(path)
    fixed = readable_bpe(path, path.parent / ".repair")
    if fixed != path:
        fixed.replace(path)
        fixed.parent.rmdir()


def materialize_copy(kit_dir: Path, where: Path, script: Path | None = None) -> Path:
    """A writable copy of an e2e kit (without checkpoints) at where/kit with its checkpoints
    materialised by the kits' `materialize_kit.py` (`script`, default the one beside or in the kit),
    and its bpe.model repaired where it has one."""
    kit = where / "kit"
    shutil.copytree(kit_dir, kit, ignore=shutil.ignore_patterns("checkpoints"))
    for p in [kit, *kit.rglob("*")]:
        p.chmod(p.stat().st_mode | 0o200)  # the shared copy is read-only
    script = script or next(s for s in (kit_dir.parent / "materialize_kit.py", kit_dir / "materialize_kit.py")
                            if s.is_file())
    subprocess.run([sys.executable, str(script), str(kit)], check=True, capture_output=True, text=True)
    if (kit / "checkpoints" / "bpe.model").exists():  # IndexTTS-2 (2.5 has a .tiktoken vocabulary)
        repair_bpe_in_place(kit / "checkpoints" / "bpe.model")
    return kit
