"""One module per parity-kit stage (named after the stage id, or its `kind` for e2e stages).

Each module defines `run(ctx: StageContext) -> dict[str, torch.Tensor]` returning the stage's output
tensors by name. Stage modules load checkpoints only through the pack's public loaders, exactly as
real model files are loaded; they never read the kit's `expected/` folder (the context refuses).
"""
