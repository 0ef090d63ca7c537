"""device="auto" | "cuda" | "cpu": CUDA when present, the CPU always."""

from typing import Literal

from mcp_trader.errors import InputError

Device = Literal["auto", "cuda", "cpu"]


def cuda_available() -> bool:
    import torch  # loaded on first use: the server starts without it

    return torch.cuda.is_available()


def resolve_device(device: str) -> str:
    if device == "cpu":
        return "cpu"
    if device not in ("auto", "cuda"):
        raise InputError("device", f"{device!r} is not a device", "auto, cuda or cpu")
    if cuda_available():
        return "cuda"
    if device == "cuda":
        raise InputError("device", "cuda was asked for but this machine has no CUDA device", "auto or cpu")
    return "cpu"
