"""ComfyUI entry point of the IndexTTS2 node pack.

The core library (`indextts2_core`) never imports ComfyUI. The node modules are imported only when
this package is loaded by ComfyUI (a relative import with a parent package), so `import
indextts2_core` and pytest work without ComfyUI.
"""

WEB_DIRECTORY = "./web"

if __package__:  # imported as a package (by ComfyUI); plain `python __init__.py` or pytest rootdir imports skip this
    try:
        import comfy_api  # noqa: F401  (present only inside ComfyUI)
    except ImportError:
        comfy_api = None
    if comfy_api is not None:
        from .nodes import comfy_entrypoint  # noqa: F401

__all__ = ["WEB_DIRECTORY", "comfy_entrypoint"] if "comfy_entrypoint" in globals() else ["WEB_DIRECTORY"]
