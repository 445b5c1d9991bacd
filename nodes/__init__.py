"""ComfyUI adapters (V3 schema). Imported only inside ComfyUI (or with a stand-in `comfy_api` in
tests); see the root __init__.py. Each node checks its inputs, calls the model wrapper (model.py)
and wraps the result; the networks and the pipeline live in `indextts2_core`."""

from comfy_api.latest import ComfyExtension

from .comfy_models import register_model_folder
from .conditioning import EmotionFromAudio, EmotionFromText, EmotionFromVector, EmotionRandom, EncodeSpeaker
from .dubbing import DubTimeline, LoadScript, VoiceSetNode
from .generate import T2SGenerate, T2SSettingsNode
from .loaders import LoadIndexTTS2
from .synthesize import BigVGANVocoder, S2MGenerate, Speak
from .video import AudioToFrameCount, DurationFromVideo, FitAudioToDuration

NODE_LIST = [
    LoadIndexTTS2, EncodeSpeaker, EmotionFromAudio, EmotionFromVector, EmotionFromText, EmotionRandom,
    T2SGenerate, T2SSettingsNode, S2MGenerate, BigVGANVocoder, Speak, LoadScript, VoiceSetNode, DubTimeline,
    DurationFromVideo, FitAudioToDuration, AudioToFrameCount,
]


class IndexTTS2Extension(ComfyExtension):
    async def get_node_list(self):
        return list(NODE_LIST)


async def comfy_entrypoint() -> ComfyExtension:
    register_model_folder()  # models/indextts2, merged with extra_model_paths.yaml
    return IndexTTS2Extension()
