"""ComfyUI adapters (V3 schema). Imported only inside ComfyUI; see the root __init__.py."""

from comfy_api.latest import ComfyExtension


class IndexTTS2Extension(ComfyExtension):
    async def get_node_list(self):
        return []


async def comfy_entrypoint() -> ComfyExtension:
    return IndexTTS2Extension()
