"""Run every benchmark and print its numbers: `make bench` (installs the oracle extra first)."""

from __future__ import annotations

import autodiff_overhead
import jacobians
import lenet_step
import normalization_records
import sweep_wall_time
import train_wall_time
import transform_overhead

if __name__ == "__main__":
    print("== interpreter overhead and the cheap-gradient ratio ==")
    autodiff_overhead.chain_overhead(2000)
    autodiff_overhead.mlp_ratio()
    autodiff_overhead.graph_scaling()
    print("\n== Jacobians and Hessians: batched passes, per direction, torch.func ==")
    jacobians.main()
    print("\n== tracing: dk.grad(f), first call against later calls ==")
    transform_overhead.main()
    print("\n== one LeNet-5 training step, diffkit against PyTorch ==")
    lenet_step.main()
    print("\n== the deeper models' step: normalization as separate ops against its records ==")
    normalization_records.main()
    print("\n== the normalization study, serial against 2 worker processes ==")
    sweep_wall_time.main()
    print("\n== diffkit train against the same training in PyTorch ==")
    train_wall_time.main()
