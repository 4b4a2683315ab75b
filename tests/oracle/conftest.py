"""Oracle tests compare diffkit with PyTorch (the ``oracle`` extra, torch==2.13.0)."""

import pytest

torch = pytest.importorskip("torch")
torch.set_default_dtype(torch.float64)
