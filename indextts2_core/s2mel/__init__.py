"""Semantic-to-mel (S2M): length regulator, DiT estimator, flow-matching sampler, loader."""

from .flow_matching import sample
from .model import S2Mel, load_s2mel

__all__ = ["S2Mel", "load_s2mel", "sample"]
