"""Loading the base model for training: fp32 LoRA on CPU, QLoRA (4-bit NF4, bf16 compute) on CUDA.

bitsandbytes' 4-bit layers do load on CPU but generate at well under a token per second there, so
quantisation is a CUDA-only path; on CPU the 135M bundled model is small enough to train in fp32.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignment.config import AlignmentConfig
from alignment.distributed import SINGLE, Processes
from alignment.gpu_plan import GIB, plan_qlora

log = logging.getLogger(__name__)


def cuda_available() -> bool:
    import torch  # heavy

    return bool(torch.cuda.is_available())


def resolve_config(config: AlignmentConfig, model_path: Path) -> AlignmentConfig:
    """Fill the per-size defaults from the checkpoint's own config, without loading any weights."""
    from transformers import AutoConfig  # heavy

    model_config = AutoConfig.from_pretrained(model_path)
    cuda = config.device == "cuda" or (config.device == "auto" and cuda_available())
    if config.device == "cuda" and not cuda_available():
        raise RuntimeError("device=cuda was asked for, but torch sees no CUDA device")
    parameters = estimate_parameters(model_config)
    installed = installed_extras()
    plan = None
    if cuda:
        quantized = config.quantize_4bit if config.quantize_4bit is not None else True
        plan = plan_qlora(
            getattr(model_config, "text_config", model_config),
            config.gpu_memory_gib or free_gpu_gib(),
            rank=config.default_rank(parameters),
            fused_head=True,  # TRL 1.16 fuses the LM head with the loss on CUDA (trl.trainer.utils)
            quantized=quantized,
        )
        log.info("GPU plan: %s", plan.describe())
    return config.resolved(num_parameters=parameters, cuda=cuda, gpu_plan=plan, installed=installed)


def installed_extras() -> frozenset[str]:
    """The optional GPU packages importable here (``tanya[gpu]``), found without importing them."""
    import importlib.util  # heavy

    names = ("bitsandbytes", "liger_kernel", "flash_attn")
    return frozenset(name for name in names if importlib.util.find_spec(name) is not None)


def free_gpu_gib() -> float:
    """Free memory on the current CUDA device, in GiB: what is left beside a server already on the card."""
    import torch  # heavy

    free, _ = torch.cuda.mem_get_info()
    return free / GIB


def estimate_parameters(model_config: Any) -> int:
    """Parameter count of a decoder-only transformer from its config (embeddings + layers)."""
    hidden = int(getattr(model_config, "hidden_size", 0))
    layers = int(getattr(model_config, "num_hidden_layers", 0))
    inter = int(getattr(model_config, "intermediate_size", 4 * hidden))
    vocab = int(getattr(model_config, "vocab_size", 0))
    heads = int(getattr(model_config, "num_attention_heads", 1)) or 1
    kv_heads = int(getattr(model_config, "num_key_value_heads", heads) or heads)
    head_dim = int(getattr(model_config, "head_dim", None) or hidden // heads)
    attention = hidden * head_dim * (2 * heads + 2 * kv_heads)
    mlp = 3 * hidden * inter
    return vocab * hidden + layers * (attention + mlp)


@dataclass
class LoadedModel:
    """A base model ready to train: the (possibly quantised) model, its tokenizer and its device."""

    model: Any
    tokenizer: Any
    device: str


def load_tokenizer(model_path: Path) -> Any:
    from transformers import AutoTokenizer  # heavy

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_base_model(model_path: Path, config: AlignmentConfig, processes: Processes = SINGLE) -> LoadedModel:
    """
    The base model ready for LoRA: fp32 on CPU, or 4-bit NF4 with bf16 compute on CUDA.

    Launched on several GPUs, each DDP process puts its copy on its own GPU. Under FSDP (or DeepSpeed)
    the sharding engine places the weights, and the 4-bit weights are stored as bf16
    (`bnb_4bit_quant_storage`) because FSDP can only shard floating-point tensors of one dtype; for the
    same reason peft's k-bit preparation, which upcasts norms to fp32, is skipped there (TRL casts the
    adapter to bf16 itself).
    """
    import torch  # heavy
    from transformers import AutoModelForCausalLM  # heavy

    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    tokenizer = load_tokenizer(model_path)
    if config.device == "cuda":
        if config.gpu_memory_gib:  # past this the run fails, not the server sharing the card
            total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
            torch.cuda.set_per_process_memory_fraction(min(1.0, config.gpu_memory_gib * GIB / total))
        sharded = processes.sharding != "none"
        kwargs: dict[str, Any] = {"dtype": torch.bfloat16, "device_map": processes.cuda_device_map()}
        if config.sft_packing:  # packed rows stay apart only with FlashAttention's variable-length kernels
            kwargs["attn_implementation"] = "flash_attention_2"
        if config.quantize_4bit:
            from transformers import BitsAndBytesConfig  # heavy

            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_compute_dtype=torch.bfloat16,
                bnb_4bit_use_double_quant=True,
                **({"bnb_4bit_quant_storage": torch.bfloat16} if sharded else {}),
            )
        model = AutoModelForCausalLM.from_pretrained(model_path, **kwargs)
        if config.quantize_4bit and not sharded:
            from peft import prepare_model_for_kbit_training  # heavy

            # Non-reentrant checkpointing: the reentrant kind breaks DDP's gradient bookkeeping.
            model = prepare_model_for_kbit_training(
                model,
                use_gradient_checkpointing=bool(config.gradient_checkpointing),
                gradient_checkpointing_kwargs={"use_reentrant": False},
            )
    else:
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    model.config.use_cache = False
    return LoadedModel(model=model, tokenizer=tokenizer, device=config.device)


def lora_config(config: AlignmentConfig) -> Any:
    from peft import LoraConfig  # heavy

    targets: str | list[str] = config.target_modules
    if targets != "all-linear":
        targets = [name.strip() for name in targets.split(",") if name.strip()]
    return LoraConfig(
        r=int(config.lora_r or 16),
        lora_alpha=int(config.lora_alpha or 32),
        lora_dropout=config.lora_dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
        bias="none",
    )
