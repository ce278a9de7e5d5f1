"""Where this process stands among those `accelerate launch` started, and the little they must share.

A re-training run under `accelerate launch` (or torchrun) is several copies of the same program, one per
GPU. They must train on identical rows, write one adapter, and register it once. So the main process
alone reads the feedback and the registry and broadcasts what it read; every process trains (the
Trainer handles gradients across them); the main process alone saves, evaluates, publishes and writes to
the database. A plain single process is the degenerate case and needs none of it: `SINGLE`.

How the processes shard the model (DDP replicates it, FSDP and DeepSpeed ZeRO split it) is chosen by
the accelerate config file; the variables `accelerate launch` sets from it are read through accelerate,
not as tanya settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

SHARDING = ("none", "fsdp", "deepspeed")


@dataclass(frozen=True)
class Processes:
    """
    This process's place in the run.

    :param count: processes in the run (1 when not launched).
    :param index: this process's global rank; 0 is the main process.
    :param local_index: its rank on this machine, which is also its GPU.
    :param sharding: "none" (one process, or DDP), "fsdp" or "deepspeed".
    """

    count: int = 1
    index: int = 0
    local_index: int = 0
    sharding: str = "none"
    _state: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.sharding not in SHARDING:
            raise ValueError(f"sharding must be one of {', '.join(SHARDING)}, not {self.sharding!r}")
        if not 0 <= self.index < self.count:
            raise ValueError("index must be between 0 and count - 1")

    @property
    def is_main(self) -> bool:
        return self.index == 0

    @property
    def launched(self) -> bool:
        return self.count > 1

    def wait(self) -> None:
        """Blocks until every process gets here (a no-op for one process)."""
        if self.launched and self._state is not None:
            self._state.wait_for_everyone()

    def share(self, value: T) -> T:
        """The main process's `value`, in every process (the others pass anything, usually None)."""
        if not self.launched:
            return value
        from accelerate.utils import broadcast_object_list  # heavy

        box = [value if self.is_main else None]
        broadcast_object_list(box, from_process=0)
        return box[0]  # type: ignore[return-value]

    def cuda_device_map(self) -> dict[str, int] | None:
        """
        Where `from_pretrained` puts a model on CUDA: the whole model on this process's own GPU, or
        nowhere in particular under FSDP/DeepSpeed, which place (and shard) it themselves.
        """
        if self.sharding != "none":
            return None
        return {"": self.local_index}

    def describe(self) -> dict[str, Any]:
        return {"processes": self.count, "index": self.index, "sharding": self.sharding}


SINGLE = Processes()


def current_processes() -> Processes:
    """The `Processes` of this program: from accelerate's state when launched, `SINGLE` otherwise."""
    import torch  # heavy
    from accelerate import PartialState  # heavy
    from accelerate.utils import DistributedType, parse_flag_from_env  # heavy

    # Without CUDA the processes talk over gloo; accelerate only sets that up when told it runs on CPU.
    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU") or not torch.cuda.is_available())
    if state.num_processes <= 1:
        return SINGLE
    if state.distributed_type == DistributedType.DEEPSPEED:
        sharding = "deepspeed"
    elif parse_flag_from_env("ACCELERATE_USE_FSDP"):
        sharding = "fsdp"
    else:
        sharding = "none"
    return Processes(
        count=state.num_processes,
        index=state.process_index,
        local_index=state.local_process_index,
        sharding=sharding,
        _state=state,
    )
