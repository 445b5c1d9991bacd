"""IndexTTS2 implemented natively in PyTorch: every stage of the official inference pipeline,
loading the official checkpoint files unchanged. Importing this package has no side effects."""

__version__ = "0.1.0"
