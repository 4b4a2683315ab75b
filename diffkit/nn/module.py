"""``Module``: parameters and buffers as named IR variables, PyTorch-style.

A module holds numpy arrays (its parameters and buffers) and, when called on an
IR node, builds the IR of its computation, in which every parameter and buffer
is a variable named by its path (``conv1.weight``). ``inputs()`` gives the values
to evaluate such a graph with. Batch-normalization layers in training mode also
leave behind the batch statistics they used (``batch_statistics()``), so a
training step can update the running averages from one evaluation.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any, Iterator

import numpy as np

from ..ir.node import Node, variable

__all__ = ["Module", "manual_seed", "default_rng"]

_RNG = np.random.default_rng(0)


def manual_seed(seed: int) -> None:
    """Seed the generator that initialises parameters (like ``torch.manual_seed``).

    Args:
        seed: the seed.

    >>> import numpy as np
    >>> from diffkit import nn
    >>> nn.manual_seed(0); a = nn.Linear(3, 2).inputs()["weight"]
    >>> nn.manual_seed(0); b = nn.Linear(3, 2).inputs()["weight"]
    >>> bool(np.array_equal(a, b))
    True
    """
    global _RNG
    _RNG = np.random.default_rng(seed)


def default_rng() -> np.random.Generator:
    return _RNG


class Module:
    """Base class of layers and models.

    Subclasses call ``super().__init__(dtype)``, create parameters with
    ``self.add_parameter(name, array)`` and buffers with ``self.add_buffer``,
    assign sub-modules as attributes, and implement ``forward(x: Node) -> Node``.

    Args:
        dtype: the dtype of the module's parameters and buffers (float32 by default).

    >>> import diffkit as dk, numpy as np
    >>> from diffkit import nn
    >>> class Scale(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.add_parameter("s", np.array([2.0]))
    ...     def forward(self, x):
    ...         return x * self.param("s")
    >>> m = Scale()
    >>> x = dk.variable("x", (1,))
    >>> dk.evaluate(m(x), at={"x": np.array([3.0], np.float32), **m.inputs()}).tolist()
    [6.0]
    >>> m.num_parameters(), m.inputs()["s"].dtype
    (1, dtype('float32'))
    """

    def __init__(self, dtype=np.float32) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_path", "")
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "dtype", np.dtype(dtype))
        object.__setattr__(self, "_stats", [])

    # -- structure ----------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, Module):
            self._modules[name] = value
            value._set_path(self._child_path(name))
        object.__setattr__(self, name, value)

    def _child_path(self, name: str) -> str:
        return f"{self._path}.{name}" if self._path else name

    def _set_path(self, path: str) -> None:
        object.__setattr__(self, "_path", path)
        for name, child in self._modules.items():
            child._set_path(self._child_path(name))

    def add_parameter(self, name: str, value: np.ndarray) -> None:
        self._parameters[name] = np.asarray(value, dtype=self.dtype)

    def add_buffer(self, name: str, value: np.ndarray) -> None:
        self._buffers[name] = np.asarray(value, dtype=self.dtype)

    def named_modules(self) -> Iterator[tuple[str, "Module"]]:
        yield self._path, self
        for child in self._modules.values():
            yield from child.named_modules()

    def children(self) -> list["Module"]:
        return list(self._modules.values())

    def _named(self, table: str) -> dict[str, np.ndarray]:
        out = {}
        for path, mod in self.named_modules():
            for name, value in getattr(mod, table).items():
                out[f"{path}.{name}" if path else name] = value
        return out

    def named_parameters(self) -> Iterator[tuple[str, np.ndarray]]:
        """``(full name, array)`` of every parameter, as PyTorch's; the names are the IR
        variable names (``conv1.weight``) and ``dict(model.named_parameters())`` maps them.
        The arrays are the model's own: updating them in place updates the model."""
        yield from self._named("_parameters").items()

    def named_buffers(self) -> Iterator[tuple[str, np.ndarray]]:
        """``(full name, array)`` of every buffer (running statistics)."""
        yield from self._named("_buffers").items()

    def parameters(self) -> list[np.ndarray]:
        """Every parameter array, in the order of ``named_parameters()``."""
        return list(self._named("_parameters").values())

    def buffers(self) -> list[np.ndarray]:
        """Every buffer array, in the order of ``named_buffers()``."""
        return list(self._named("_buffers").values())

    def num_parameters(self) -> int:
        return int(sum(p.size for p in self.parameters()))

    # -- IR -------------------------------------------------------------------------
    def param(self, name: str) -> Node:
        """The IR variable of one of this module's parameters or buffers."""
        value = self._parameters.get(name)
        if value is None:
            value = self._buffers[name]
        return variable(f"{self._path}.{name}" if self._path else name, value.shape)

    def __call__(self, x: Node) -> Node:
        return self.forward(x)

    def forward(self, x: Node) -> Node:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def inputs(self) -> dict[str, np.ndarray]:
        """Values of every parameter and buffer, keyed by variable name (for ``at=``), and
        in training mode a fresh mask for every dropout layer."""
        values = {**self._named("_parameters"), **self._named("_buffers")}
        for _, mod in self.named_modules():
            values.update(mod._step_inputs())
        return values

    def _step_inputs(self) -> dict[str, np.ndarray]:
        """Values this module draws anew for each evaluation (dropout masks); none here."""
        return {}

    def batch_statistics(self) -> list:
        """``(module, mean_node, var_node, count)`` recorded by the batch-normalization
        layers during the last training-mode build of this model's graph. Evaluate the
        nodes with the graph and pass the values to ``module.update_running``."""
        out = []
        for _, mod in self.named_modules():
            out.extend(mod._stats)
        return out

    min_training_batch = 1

    def smallest_training_batch(self) -> int:
        """The smallest minibatch this model can train on (2 with batch normalization,
        whose statistics need two samples)."""
        return max(mod.min_training_batch for _, mod in self.named_modules())

    # -- modes and state ---------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        for _, mod in self.named_modules():
            object.__setattr__(mod, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Parameters and buffers by name (copies)."""
        return OrderedDict(
            (k, v.copy())
            for k, v in {**self._named("_parameters"), **self._named("_buffers")}.items()
        )

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Load parameters and buffers; unknown or missing keys and shape mismatches raise."""
        own = {}
        for path, mod in self.named_modules():
            for table in (mod._parameters, mod._buffers):
                for name, value in table.items():
                    own[f"{path}.{name}" if path else name] = (table, name, value)
        if strict:
            missing = [k for k in own if k not in state]
            unexpected = [k for k in state if k not in own]
            if missing or unexpected:
                raise KeyError(
                    f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}"
                )
        for key, value in state.items():
            if key not in own:
                continue
            table, name, current = own[key]
            value = np.asarray(value)
            if value.shape != current.shape:
                raise ValueError(
                    f"load_state_dict: {key!r} has shape {current.shape} in the "
                    f"model but {value.shape} in the state dict"
                )
        for key, value in state.items():
            if key in own:
                # in place, so that optimizers holding these arrays keep updating the model
                own[key][2][...] = np.asarray(value, dtype=own[key][2].dtype)

    def to(self, dtype) -> "Module":
        """Convert every parameter and buffer to ``dtype`` (float32 or float64)."""
        for _, mod in self.named_modules():
            object.__setattr__(mod, "dtype", np.dtype(dtype))
            for table in (mod._parameters, mod._buffers):
                for k in table:
                    if table[k].dtype.kind == "f":
                        table[k] = table[k].astype(dtype)
        return self

    def copy(self) -> "Module":
        return copy.deepcopy(self)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in self._modules.items():
            sub = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {sub}")
        return "\n".join(lines) + (")" if len(lines) == 1 else "\n)")
