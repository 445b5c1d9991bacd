"""Command line: `python -m indextts2_core {speak,dub,download} ...`.

    speak     text (+ speaker voice, optional emotion) -> 16-bit PCM WAV at 22.05 kHz
    dub       subtitles or a script + named voices -> one track, every line in its slot
    download  fetch the model files into a models folder (huggingface_hub; only when run)

Progress goes to stderr; the output file is written to a temporary name and renamed at the end.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import torch

from .audio import check_prompt_audio, load_audio
from .checkpoints import CheckpointError
from .config import ConfigError
from .config25 import load_config
from .dubbing import DubSettings, FitSettings, dub, parse_script, voice_set
from .dubbing.script import FORMATS as SCRIPT_FORMATS
from .dubbing.timeline import OVERFLOW, OVERLAP, POLICIES
from .emotion import validate_weights
from .gpt import DecodingSettings
from .gpt.generate import DECODE_STEPS
from .model_files import ModelFilesError, ModelPaths
from .pipeline import (DEFAULT_INTERVAL_SILENCE_MS, DEFAULT_MAX_TEXT_TOKENS, MAX_INTERVAL_SILENCE_MS, NonFiniteError,
                       NoSpeechError, S2MSettings, SynthesisResult, check_output_path, choose_emotion_mode,
                       encode_speaker, load_models, plan_durations, prepare, resolve_device, resolve_dtype, stream,
                       text_segments, write_wav)
from .pipeline.models import load_text_front_end
from .text import SUPPORTED_LANGUAGES

log = logging.getLogger("indextts2_core")


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    d, s2m = DecodingSettings(), S2MSettings()  # the one place for defaults
    ap = argparse.ArgumentParser(prog="python -m indextts2_core", description=__doc__.splitlines()[0])
    ap.add_argument("-v", "--verbose", action="store_true", help="log every step")
    sub = ap.add_subparsers(dest="cmd", required=True)

    sp = sub.add_parser("speak", help="synthesise speech to a WAV file")
    sp.add_argument("--models", required=True, type=Path,
                    help="models folder: an IndexTTS-2 or IndexTTS-2.5 download with hf_cache/ (official) or "
                         "models/indextts2 (pack; --version picks when it holds both)")
    sp.add_argument("--version", choices=["2", "2.5"], default=None,
                    help="IndexTTS-2 or IndexTTS-2.5 (default: what the folder holds)")
    txt = sp.add_mutually_exclusive_group(required=True)
    txt.add_argument("--text")
    txt.add_argument("--text-file", type=Path, help="UTF-8 text file")
    sp.add_argument("--speaker", required=True, type=Path, help="voice to clone (WAV/FLAC/OGG; first 15 s used)")
    emo = sp.add_mutually_exclusive_group()
    emo.add_argument("--emotion-audio", type=Path, help="emotion reference audio")
    emo.add_argument("--emotion-vector", type=_floats, metavar="V1,...,V8",
                     help="8 weights: happy, angry, sad, afraid, disgusted, melancholic, surprised, calm")
    emo.add_argument("--emotion-text", nargs="?", const=True, metavar="TEXT",
                     help="emotion from text by the Qwen model (without TEXT: the text itself)")
    sp.add_argument("--emotion-alpha", type=float, default=1.0,
                    help="emotion strength (audio blend, or vector/text scale; default 1.0)")
    sp.add_argument("--normalize-emotion", action="store_true", help="web-UI normalisation of --emotion-vector")
    sp.add_argument("--random-emotion", action="store_true", help="random emotion prototypes (vector/text)")
    dur = sp.add_mutually_exclusive_group()
    dur.add_argument("--seconds", type=float,
                     help="exact length of the output in seconds, silences between text segments included")
    dur.add_argument("--tokens", type=int,
                     help="semantic codes of the whole text (speech only), shared among its segments")
    sp.add_argument("--lang", default="auto", choices=["auto", *SUPPORTED_LANGUAGES],
                    help="IndexTTS-2.5: the text's language (default: detected from the script)")
    sp.add_argument("--duration-factor", type=float, default=s2m.duration_factor,
                    help="natural lengths x this (the official 2.5 duration_factor; ignored with --seconds)")
    sp.add_argument("--glossary", type=Path, help="glossary.yaml for the normaliser (default: the model folder's)")
    sp.add_argument("--seed", type=int, default=None)
    sp.add_argument("--device", default=None, help="cpu, cuda, cuda:N, mps (default: cuda if available)")
    sp.add_argument("--dtype", default="fp32", choices=["fp32", "fp16", "bf16"], help="GPT precision")
    sp.add_argument("--steps", type=int, default=s2m.steps, help=f"flow-matching steps (default {s2m.steps})")
    sp.add_argument("--cfg-rate", type=float, default=s2m.cfg_rate,
                    help=f"classifier-free guidance (default {s2m.cfg_rate})")
    sp.add_argument("--max-segment-tokens", type=int, default=DEFAULT_MAX_TEXT_TOKENS,
                    help=f"text tokens per segment (default {DEFAULT_MAX_TEXT_TOKENS})")
    sp.add_argument("--silence-ms", type=float, default=DEFAULT_INTERVAL_SILENCE_MS,
                    help=f"silence between segments (default {DEFAULT_INTERVAL_SILENCE_MS}, at most "
                         f"{MAX_INTERVAL_SILENCE_MS})")
    g = sp.add_argument_group("decoding (official defaults)")
    g.add_argument("--num-beams", type=int, default=d.num_beams)
    g.add_argument("--temperature", type=float, default=d.temperature)
    g.add_argument("--top-k", type=int, default=d.top_k)
    g.add_argument("--top-p", type=float, default=d.top_p)
    g.add_argument("--repetition-penalty", type=float, default=d.repetition_penalty)
    g.add_argument("--length-penalty", type=float, default=d.length_penalty)
    g.add_argument("--max-mel-tokens", type=int, default=d.max_mel_tokens,
                   help="codes per segment at most (capped at the model's table)")
    g.add_argument("--greedy", action="store_true", help="no sampling (deterministic)")
    g.add_argument("--decode-step", choices=list(DECODE_STEPS), default=d.decode_step,
                   help="how each token's forward runs: eager (default), static, compile, cuda_graph (same codes)")
    sp.add_argument("--out", required=True, type=Path, help="output .wav")

    fit, dub_defaults = FitSettings(), DubSettings()
    db = sub.add_parser("dub", help="speak subtitles or a script with several voices, every line in its slot",
                        description="Subtitles (SRT, WebVTT) or a script ([Speaker] lines, [pause:0.8s], {happy: 0.6}) "
                                    "-> one WAV track; every timed line is fitted to its slot and starts at its "
                                    "exact sample.")
    db.add_argument("--models", required=True, type=Path, help="models folder (as for speak)")
    db.add_argument("--version", choices=["2", "2.5"], default=None,
                    help="IndexTTS-2 or IndexTTS-2.5 (default: what the folder holds)")
    db.add_argument("--script", required=True, type=Path, help=".srt, .vtt or a text script (UTF-8)")
    db.add_argument("--format", choices=list(SCRIPT_FORMATS), default="auto")
    db.add_argument("--voices", type=Path, help="folder of voice clips: Alice.wav speaks [Alice]")
    db.add_argument("--voice", action="append", default=[], metavar="NAME=FILE", help="one voice (repeatable)")
    db.add_argument("--default-voice", help="voice of lines without [Name] (default: the only voice)")
    db.add_argument("--fit", choices=list(POLICIES), default=fit.policy, help="tokens, s2m or auto (default)")
    db.add_argument("--bounds", type=_floats, default=list(fit.bounds), metavar="MIN,MAX",
                    help=f"accepted speed change (slot / natural), default {fit.bounds[0]},{fit.bounds[1]}")
    db.add_argument("--overflow", choices=list(OVERFLOW), default=fit.overflow,
                    help="a line outside the bounds: extend (default), squeeze or fail")
    db.add_argument("--overlap", choices=list(OVERLAP), default=dub_defaults.overlap,
                    help="overlapping lines: error (default), overlay or shift")
    db.add_argument("--total-seconds", type=float, help="length of the track (default: until the last line ends)")
    db.add_argument("--line-gap-ms", type=float, default=dub_defaults.line_gap_ms, help="between script lines")
    db.add_argument("--lang", default="auto", choices=["auto", *SUPPORTED_LANGUAGES],
                    help="IndexTTS-2.5: the script's language (default: detected per line)")
    db.add_argument("--glossary", type=Path, help="glossary.yaml for the normaliser (default: the model folder's)")
    db.add_argument("--seed", type=int, default=0)
    db.add_argument("--device", default=None, help="cpu, cuda, cuda:N, mps (default: cuda if available)")
    db.add_argument("--dtype", default="fp32", choices=["fp32", "fp16", "bf16"], help="GPT precision")
    db.add_argument("--report", type=Path, help="also write the per-line report here")
    db.add_argument("--srt-out", type=Path, help="also write the placed times as SRT here")
    db.add_argument("--out", required=True, type=Path, help="output .wav")

    dl = sub.add_parser("download", help="download the model files (IndexTeam/IndexTTS-2 or -2.5 and their helpers)",
                        description="Download what is missing of one model set into a models folder; files already "
                                    "there, or found complete in the Hugging Face cache, are not downloaded again.")
    dl.add_argument("--models", required=True, type=Path,
                    help="target folder: pack layout (e.g. ComfyUI/models/indextts2), or an official folder "
                         "(config.yaml + hf_cache/) which is completed as it is")
    dl.add_argument("--version", choices=["2", "2.5"], default=None,
                    help="IndexTTS-2 (default for a new folder) or IndexTTS-2.5 (pack folder IndexTTS-2.5/)")
    dl.add_argument("--t2e", action="store_true",
                    help="also the Qwen emotion-from-text model (1.2 GB; needed only for --emotion-text)")
    dl.add_argument("--no-t2e", action="store_true", help=argparse.SUPPRESS)  # the default now; kept for old scripts
    dl.add_argument("--convert-safetensors", action="store_true",
                    help="also write .safetensors copies of the pickled checkpoints (originals kept)")
    return ap


class _Bars:
    """tqdm progress bars on stderr for one kind of step (tokens, CFM steps)."""

    def __init__(self, desc: str):
        self.desc, self.bar = desc, None

    def __call__(self, i: int, total: int) -> None:
        from tqdm import tqdm

        if self.bar is None or i == 1:
            self.close()
            self.bar = tqdm(total=total, desc=self.desc, file=sys.stderr, leave=False, dynamic_ncols=True)
        self.bar.update(i - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def speak(args) -> int:
    """Every input is checked (text, audio, options, output file, lengths against the model's
    limits) before any model is loaded; the audio is written to the file as segments finish."""
    text = args.text if args.text is not None else _read_text(args.text_file)
    out = check_output_path(args.out, create_folder=True)
    device = resolve_device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = resolve_dtype(args.dtype)
    decoding = DecodingSettings(do_sample=not args.greedy, num_beams=args.num_beams, temperature=args.temperature,
                                top_k=args.top_k, top_p=args.top_p, repetition_penalty=args.repetition_penalty,
                                length_penalty=args.length_penalty, max_mel_tokens=args.max_mel_tokens,
                                decode_step=args.decode_step)
    s2m = S2MSettings(steps=args.steps, cfg_rate=args.cfg_rate, duration_factor=args.duration_factor)
    speaker, speaker_rate = load_audio(args.speaker)
    check_prompt_audio(speaker, speaker_rate, f"speaker audio {args.speaker}")
    request = {}
    if args.emotion_audio is not None:
        emo, emo_rate = load_audio(args.emotion_audio)
        check_prompt_audio(emo, emo_rate, f"emotion audio {args.emotion_audio}")
        request.update(emotion_audio=emo, emotion_rate=emo_rate)
    elif args.emotion_vector is not None:
        validate_weights(args.emotion_vector)
        request.update(emotion_vector=args.emotion_vector, normalize_emotion_vector=args.normalize_emotion)
    elif args.emotion_text is not None:
        request.update(emotion_text=text if args.emotion_text is True else args.emotion_text)
    if args.normalize_emotion and args.emotion_vector is None:
        raise ValueError("--normalize-emotion applies to --emotion-vector only")
    choose_emotion_mode(request.get("emotion_audio"), request.get("emotion_vector"), request.get("emotion_text"),
                        args.random_emotion, args.emotion_alpha, args.normalize_emotion)
    paths = ModelPaths.locate(args.models, args.version).require(include_t2e=args.emotion_text is not None)
    config = load_config(paths.config, paths.version)
    decoding.validate(target_tokens=args.tokens)
    # refuse bad text and impossible lengths now (the config knows the model's limits)
    front_end = load_text_front_end(paths, config, args.glossary)
    segments = text_segments(front_end, text, args.max_segment_tokens, args.lang)
    plan_durations(segments, config.timing,
                   seconds=args.seconds, target_tokens=args.tokens, interval_silence_ms=args.silence_ms,
                   max_codes=config.gpt.max_mel_tokens)

    t0 = time.perf_counter()
    models = load_models(paths, device, dtype, load_t2e=args.emotion_text is not None, text_front_end=front_end)
    load_s = time.perf_counter() - t0
    tokens, cfm = _Bars("semantic tokens"), _Bars("flow matching")
    try:
        prepared = prepare(models, text, speaker, speaker_rate, emotion_alpha=args.emotion_alpha,
                           use_random=args.random_emotion, seconds=args.seconds, target_tokens=args.tokens,
                           max_text_tokens_per_segment=args.max_segment_tokens, interval_silence_ms=args.silence_ms,
                           seed=args.seed, language=args.lang, segments=segments, **request)
        pieces = stream(models, prepared, decoding=decoding, s2m=s2m, seed=args.seed, token_progress=tokens,
                        cfm_progress=cfm)
        t1 = time.perf_counter()
        samples = write_wav(out, pieces, models.timing.sample_rate, prepared.plan.total_samples)
    finally:
        tokens.close()
        cfm.close()
    print(f"wrote {out}: {models.timing.seconds(samples):.2f} s, {len(prepared.plan)} segment(s); models loaded in "
          f"{load_s:.1f} s, synthesis {time.perf_counter() - t1:.1f} s", file=sys.stderr)
    return 0


def dub_command(args) -> int:
    """Every line and voice is checked before the models run; the track is written at the end."""
    out = check_output_path(args.out, create_folder=True)
    if len(args.bounds) != 2:
        raise ValueError("--bounds takes two numbers: MIN,MAX")
    settings = DubSettings(fit=FitSettings(policy=args.fit, bounds=tuple(args.bounds), overflow=args.overflow),
                           overlap=args.overlap, total_seconds=args.total_seconds, line_gap_ms=args.line_gap_ms,
                           seed=args.seed, language=args.lang)
    script = parse_script(_read_text(args.script), args.format)
    clips = _voice_files(args.voices, args.voice)
    for name, (wav, rate) in clips.items():
        check_prompt_audio(wav, rate, f"voice {name}")
    known = {n.casefold() for n in clips}
    for cue in script.cues:
        who = cue.speaker or args.default_voice or (next(iter(clips)) if len(clips) == 1 else None)
        if cue.has_speech and (who is None or who.casefold() not in known):
            raise ValueError(f"cue {cue.number} (line {cue.line}): no voice for [{who or 'no name'}]; the voices are "
                             f"{sorted(clips)}")
    paths = ModelPaths.locate(args.models, args.version).require()
    device = resolve_device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    models = load_models(paths, device, resolve_dtype(args.dtype), glossary=args.glossary)
    voices = voice_set([(name, encode_speaker(models.semantic, models.codec, models.campplus, models.s2mel, wav, rate,
                                              mel_config=models.config.s2mel.mel, w2v_features=models.w2v_features),
                         (wav, rate)) for name, (wav, rate) in clips.items()], args.default_voice)
    lines = _Bars("lines")
    try:
        result = dub(models, script, voices, settings, line_progress=lines)
    finally:
        lines.close()
    write_wav(out, SynthesisResult(result.waveform, result.sample_rate, ()))
    if args.report:
        args.report.write_text(result.report() + "\n", encoding="utf-8")
    if args.srt_out and result.srt:
        args.srt_out.write_text(result.srt, encoding="utf-8")
    print(result.report(), file=sys.stderr)
    return 0


def _voice_files(folder: Path | None, pairs: list[str]) -> dict[str, tuple[torch.Tensor, int]]:
    clips = {}
    if folder is not None:
        if not folder.is_dir():
            raise ValueError(f"--voices {folder}: not a folder")
        for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in (".wav", ".flac", ".ogg", ".mp3")):
            clips[path.stem] = load_audio(path)
    for pair in pairs:
        name, sep, file = pair.partition("=")
        if not sep or not name.strip() or not file.strip():
            raise ValueError(f"--voice {pair!r}: write NAME=FILE")
        clips[name.strip()] = load_audio(Path(file.strip()))
    if not clips:
        raise ValueError("no voices: give --voices FOLDER and/or --voice NAME=FILE")
    return clips


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise ValueError(f"text file not found: {path}")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"text file {path} is not UTF-8 ({e.reason} at byte {e.start})") from None


def download(args) -> int:
    from tqdm import tqdm

    from .download import download_models

    if args.t2e and args.no_t2e:
        raise ValueError("--t2e and --no-t2e contradict each other")
    bars = []

    def show(done: int, total: int) -> None:  # one byte bar per batch (config.yaml, then the rest)
        if not bars or bars[-1].total != total:
            bars.append(tqdm(total=total, unit="B", unit_scale=True, desc="download", file=sys.stderr,
                             dynamic_ncols=True))
        bars[-1].update(done - bars[-1].n)

    try:
        paths = download_models(args.models, include_t2e=args.t2e, version=args.version, progress=show,
                                convert_safetensors=args.convert_safetensors)
    finally:
        for bar in bars:
            bar.close()
    print(f"IndexTTS-{paths.version} model files ready in {paths.root} ({paths.layout} layout)", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return {"speak": speak, "dub": dub_command, "download": download}[args.cmd](args)
    except (ValueError, FileNotFoundError, ModelFilesError, CheckpointError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (NoSpeechError, NonFiniteError) as e:  # the models ran but gave nothing usable: nothing written
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
