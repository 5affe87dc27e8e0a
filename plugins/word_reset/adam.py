"""Adam and AdamW, without torch.optim.

Every torch.optim optimizer imports ``torch._dynamo`` the first time it runs, to keep
torch.compile out of its bookkeeping: 70 MiB and a second for a compiler letras never
calls, a sixth of what training names.txt took with it. This is the same update through
the same fused kernel torch.optim runs with ``fused=True``, and it reads the ``state_dict``
torch.optim writes, so the checkpoints of earlier letras resume. The kernel is private to
torch: ``make_adam`` probes it, and where it is missing or has changed, hands back
torch.optim's own Adam instead.
"""

from __future__ import annotations

import functools
from typing import Any, Iterable

import torch


class Adam:
    """Adam (Kingma and Ba, 2015); ``decoupled=True`` makes it AdamW (Loshchilov and Hutter,
    2019), whose weight decay shrinks the weights directly instead of joining the gradient.

    ``params`` is a list of tensors, or of parameter groups (dicts with ``params`` and any
    option to override), as torch.optim takes them. Each group's ``lr`` may change between
    steps: that is how the trainer schedules it. Build it with ``make_adam``, which checks
    that torch has the fused kernel for the parameters' devices.
    """

    def __init__(self, params: Iterable[Any], *, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, decoupled: bool = False):
        groups = list(params)
        if groups and not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}
        self.param_groups = [{**defaults, **group, "params": list(group["params"])} for group in groups]
        self.decoupled = decoupled
        self.state: dict[torch.Tensor, dict[str, torch.Tensor]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            # the kernel takes one device and dtype at a time
            parts: dict[tuple[torch.device, torch.dtype], list[list[torch.Tensor]]] = {}
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state.get(p)
                if state is None:  # torch.optim's layout: a float step count on the parameter's device
                    state = self.state[p] = {"step": torch.zeros((), dtype=torch.float32, device=p.device),
                                             "exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}
                lists = parts.setdefault((p.device, p.dtype), [[], [], [], [], []])
                for row, tensor in zip(lists, (p, p.grad, state["exp_avg"], state["exp_avg_sq"], state["step"])):
                    row.append(tensor)
            for params, grads, exp_avgs, exp_avg_sqs, steps in parts.values():
                _fused_update(params, grads, exp_avgs, exp_avg_sqs, steps, group, self.decoupled)

    def state_dict(self) -> dict[str, Any]:
        """torch.optim's layout: the state by the parameter's position over all groups."""
        index = {p: i for i, p in enumerate(p for group in self.param_groups for p in group["params"])}
        return {"state": {index[p]: dict(state) for p, state in self.state.items()},
                "param_groups": [{**{k: v for k, v in group.items() if k != "params"},
                                  "params": [index[p] for p in group["params"]]} for group in self.param_groups]}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        """What ``state_dict`` (or a torch.optim Adam or AdamW) saved. A ValueError, and this
        optimizer unchanged, when it does not fit these parameters or is no such state."""
        try:
            groups, states = saved["param_groups"], saved["state"]
            sizes, saved_sizes = [len(g["params"]) for g in self.param_groups], [len(g["params"]) for g in groups]
            if sizes != saved_sizes:
                raise ValueError(f"the saved state has parameter groups of sizes {saved_sizes}, "
                                 f"this optimizer {sizes}")
            params = [p for group in self.param_groups for p in group["params"]]
            loaded = {}
            for p, i in zip(params, [i for g in groups for i in g["params"]]):
                if i not in states:  # a parameter that had no gradient yet
                    continue
                state = states[i]
                if state["exp_avg"].shape != p.shape or state["exp_avg_sq"].shape != p.shape:
                    raise ValueError(f"the saved state of parameter {i} has shape {tuple(state['exp_avg'].shape)}, "
                                     f"the parameter {tuple(p.shape)}")
                # copies, as torch.optim makes: the saved tensors may still be in use
                loaded[p] = {"step": torch.tensor(float(state["step"]), device=p.device),
                             "exp_avg": state["exp_avg"].to(p, copy=True),
                             "exp_avg_sq": state["exp_avg_sq"].to(p, copy=True)}
        except KeyError as error:
            raise ValueError(f"not an Adam state: it has no {error}") from None
        except (TypeError, AttributeError) as error:
            raise ValueError(f"not an Adam state: {error}") from None
        for group, saved_group in zip(self.param_groups, groups):
            group.update({k: saved_group[k] for k in ("lr", "betas", "eps", "weight_decay") if k in saved_group})
        self.state = loaded


def make_adam(params: Iterable[Any], *, lr: float, weight_decay: float = 0.0, decoupled: bool = False) -> Any:
    """Adam (AdamW with ``decoupled``) for ``params``: this module's where torch has the fused
    kernel for every parameter's device, torch.optim's own otherwise. torch.optim computes the
    same update; it only costs the import of torch._dynamo."""
    groups = list(params)
    tensors = [p for g in groups for p in (g["params"] if isinstance(g, dict) else [g])]
    if all(has_fused_kernel(p.device.type, decoupled) for p in tensors):
        return Adam(groups, lr=lr, weight_decay=weight_decay, decoupled=decoupled)
    reference = torch.optim.AdamW if decoupled else torch.optim.Adam
    return reference(groups, lr=lr, weight_decay=weight_decay)


@functools.cache
def has_fused_kernel(device_type: str, decoupled: bool = False) -> bool:
    """Whether this torch runs the fused Adam (or AdamW) kernel on this kind of device (CUDA
    since torch 2.0, CPU since 2.4). The kernels are private, so one tiny step through the very
    calls a step makes tells, and any exception (no such kernel, a changed signature) means no."""
    try:
        p = torch.zeros(1, device=device_type)
        _fused_update([p], [p.clone()], [p.clone()], [p.clone()], [torch.zeros((), device=device_type)],
                      {"lr": 0.0, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}, decoupled)
    except Exception:
        return False
    return True


def _fused_update(params: list[torch.Tensor], grads: list[torch.Tensor], exp_avgs: list[torch.Tensor],
                  exp_avg_sqs: list[torch.Tensor], steps: list[torch.Tensor], group: dict[str, Any],
                  decoupled: bool) -> None:
    torch._foreach_add_(steps, 1)
    kernel = torch._fused_adamw_ if decoupled else torch._fused_adam_
    beta1, beta2 = group["betas"]
    kernel(params, grads, exp_avgs, exp_avg_sqs, [], steps, lr=group["lr"], beta1=beta1, beta2=beta2,
           weight_decay=group["weight_decay"], eps=group["eps"], amsgrad=False, maximize=False)
