"""Conformance tooling: run the parity kits' stages through the pack's own loaders, and check
the pack's modules against the official checkpoint manifests. CLI: `python -m tools.conformance`."""
