"""LoRA files: read any layout, describe, detect the base, convert, merge/unmerge, prompt syntax."""

from .describe import describe, detect_base, format_description
from .formats import (Lora, LoraModule, from_state_dict, kohya_metadata, kohya_to_path, path_to_kohya, read_lora,
                      save_diffusers, save_kohya, synthetic_lora, to_diffusers, to_kohya)
from .merge import MergeReport, merge, merged_state_dict, unmerge
from .prompt import LoraRef, available_loras, parse_prompt, resolve_prompt
from .svd import extract_lora, lora_delta_error, resize_lora

__all__ = ["Lora", "LoraModule", "LoraRef", "MergeReport", "available_loras", "describe", "detect_base", "extract_lora", "lora_delta_error", "resize_lora", "format_description",
           "from_state_dict", "kohya_metadata", "kohya_to_path", "merge", "merged_state_dict", "parse_prompt", "path_to_kohya",
           "read_lora", "resolve_prompt", "save_diffusers", "save_kohya", "synthetic_lora", "to_diffusers", "to_kohya", "unmerge"]
