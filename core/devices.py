"""Where and in what precision letras computes: the device, bfloat16 support, autocast.

One module for every choice that depends on the machine, so that training, sampling and
evaluation all pick alike, and a machine without a feature falls back the same way
everywhere. Private torch calls stay behind probes: any exception from a probe means the
documented fallback (fp32), never a crash.
"""

from __future__ import annotations

import functools
import re
from importlib import metadata
from typing import Any

from .errors import LetrasError, UsageError

# The oldest torch letras is tested with (pyproject.toml says the same; a test keeps them equal).
MIN_TORCH = (2, 13)


def _release(version: str) -> tuple[int, ...]:
    """(2, 13, 0) from "2.13.0+cpu"; the parts that are numbers."""
    parts = []
    for part in version.split("+")[0].split("."):
        digits = re.match(r"\d+", part)
        if not digits:
            break
        parts.append(int(digits.group()))
    return tuple(parts)


@functools.cache
def check_torch() -> None:
    """A clear error when the installed torch is older than letras supports (pip with
    --no-deps, or a torch built by hand): otherwise an API it lacks fails deep inside."""
    try:
        version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        import torch  # a torch built from source may have no metadata: trust its own word

        version = torch.__version__
    if _release(version) < MIN_TORCH:
        floor = ".".join(map(str, MIN_TORCH))
        raise LetrasError(f"letras needs torch {floor} or newer; this is torch {version}",
                          hint=f"pip install 'torch>={floor},<3'")


def resolve_device(spec: str = "auto") -> Any:
    """``auto`` is CUDA when there is one, else the CPU; ``cpu``, ``cuda`` and ``cuda:N`` as given."""
    check_torch()
    import torch

    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise UsageError(f"unknown device '{spec}' (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"device '{spec}' asked for, but torch finds no CUDA GPU "
                             "(use device=auto or device=cpu)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"device '{spec}' asked for, but there are only "
                             f"{torch.cuda.device_count()} CUDA devices")
    elif device.type != "cpu":
        raise UsageError(f"unsupported device '{spec}' (use auto, cpu, cuda or cuda:N)")
    return device


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), as oneDNN sees it.

    torch has no public call for this; its private one sits behind this probe, and any
    exception (a torch without it, a changed signature) means no. oneDNN's own cap on the
    instructions it may use (``ONEDNN_MAX_CPU_ISA=AVX2``) makes it say no as well."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:
        return False


def device_has_bf16(device: Any) -> bool:
    """Whether ``device`` computes bfloat16 natively: a GPU from Ampere on, or ``cpu_has_bf16``."""
    import torch

    if device.type == "cuda":
        try:
            return torch.cuda.get_device_capability(device)[0] >= 8
        except Exception:
            return False
    return cpu_has_bf16()


def resolve_precision(precision: str, device: Any, *, setting: str = "precision {}") -> str:
    """The precision to compute in on ``device``: ``auto`` is bf16 where the device computes it
    natively (``device_has_bf16``), else fp32. A choice the device cannot honour is a
    UsageError whose hint writes the choice as ``setting`` does: ``"--precision {}"`` for a
    command's flag, ``"trainer.precision={}"`` for a trainer's option. fp32 probes nothing."""
    if precision == "fp32":
        return precision
    hint = f"use {setting.format('auto')} (bf16 where the device has it) or {setting.format('fp32')}"
    if precision == "fp16":
        if device.type != "cuda":
            raise UsageError(f"precision fp16 needs a CUDA device, not {device}", hint=hint)
        return precision
    bf16 = device_has_bf16(device)
    if precision == "auto":
        return "bf16" if bf16 else "fp32"
    # Without bfloat16 instructions oneDNN emulates them, more slowly than fp32, or (with its
    # instructions capped below AVX-512) cannot build an LSTM in bfloat16 at all.
    if precision == "bf16" and not bf16:
        raise UsageError(f"precision bf16 needs a device that computes in bfloat16 ({device} does not: "
                         "a CPU needs AVX512-BF16 or AMX, a GPU Ampere or newer)", hint=hint)
    return precision


def autocast(device: Any, precision: str) -> Any:
    """The context that computes in ``precision`` (fp32, bf16 or fp16, as resolved by
    ``resolve_precision``): torch's autocast, off for fp32."""
    import torch

    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    return torch.autocast(device.type, dtype=dtype, enabled=precision != "fp32")
