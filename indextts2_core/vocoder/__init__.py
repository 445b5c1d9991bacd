"""BigVGAN v2 vocoder: mel (22.05 kHz, 80 bins) -> waveform."""

from .bigvgan import BigVGAN, load_bigvgan, to_int16

__all__ = ["BigVGAN", "load_bigvgan", "to_int16"]
