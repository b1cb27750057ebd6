"""PyTorch U-Net of the same depth, width and structure as ``mrirecon.models.unet.build_image_unet``,
timed like ``train_throughput.py`` times the Keras model; prints one JSON object.

Runs in the separate benchmark venv (``make bench-torch-venv`` -> ``.venv-bench``, torch CPU
build); PyTorch is *not* a dependency of the project and this file imports nothing from it.

Architecture (mirrors ``build_image_unet(size, levels, base_filters)`` without data
consistency): ``levels`` resolution scales; per encoder level two 3x3 conv (padding 1, bias)
+ ReLU with ``base_filters * 2**level`` channels, then 2x2 max-pool; a bottom block of two
3x3 conv + ReLU; per decoder level a 2x2 stride-2 transposed conv to the level's width,
concatenation with the encoder skip, two 3x3 conv + ReLU; a zero-initialised 1x1 conv head
whose output is added to the input (residual). ``levels=5, base_filters=32`` = 4 poolings and
32 channels at the top, the width/depth of the fastMRI U-Net baseline (without its instance
norm, leaky ReLU and dropout). The parameter count equals Keras's ``count_params()``.

Timing: Adam (lr 1e-3), MSE loss, float32, batch ``--batch`` of random ``(1, size, size)``
images, NCHW; ``--warmup`` steps not timed, then the median wall time of ``--steps`` steps
(forward, backward, optimiser update). Threads: ``--threads`` (default: all CPUs).

Usage:
    .venv-bench/bin/python benchmarks/torch_unet.py --size 256 --levels 5 --base-filters 32 --batch 8
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch
from torch import nn


def conv_block(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_ch, out_ch, 3, padding=1),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """Residual U-Net; see the module docstring."""

    def __init__(self, levels: int = 5, base_filters: int = 32, channels: int = 1):
        super().__init__()
        widths = [base_filters * 2**level for level in range(levels)]
        self.down = nn.ModuleList()
        in_ch = channels
        for width in widths[:-1]:
            self.down.append(conv_block(in_ch, width))
            in_ch = width
        self.pool = nn.MaxPool2d(2)
        self.bottom = conv_block(in_ch, widths[-1])
        self.upsample = nn.ModuleList()
        self.up = nn.ModuleList()
        for level in reversed(range(levels - 1)):
            self.upsample.append(nn.ConvTranspose2d(widths[level + 1], widths[level], 2, stride=2))
            self.up.append(conv_block(2 * widths[level], widths[level]))
        self.head = nn.Conv2d(widths[0], channels, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        h = x
        for block in self.down:
            h = block(h)
            skips.append(h)
            h = self.pool(h)
        h = self.bottom(h)
        for upsample, block, skip in zip(self.upsample, self.up, reversed(skips)):
            h = block(torch.cat([upsample(h), skip], dim=1))
        return x + self.head(h)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--size", type=int, default=256, help="image side (default 256)")
    parser.add_argument("--levels", type=int, default=5, help="U-Net levels (default 5 = 4 poolings)")
    parser.add_argument("--base-filters", type=int, default=32, help="channels at the first level (default 32)")
    parser.add_argument("--batch", type=int, default=8, help="batch size (default 8)")
    parser.add_argument("--steps", type=int, default=8, help="timed steps (default 8)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="intra-op threads (default: all CPUs)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.size % 2 ** (args.levels - 1):
        parser.error(f"--size {args.size} is not divisible by 2**(levels-1) = {2 ** (args.levels - 1)}")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = UNet(args.levels, args.base_filters)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.MSELoss()
    n_batches = args.warmup + args.steps
    x = torch.rand(n_batches, args.batch, 1, args.size, args.size)
    y = x + 0.05 * torch.randn_like(x)
    model.train()
    times = []
    for i in range(n_batches):
        start = time.perf_counter()
        optimiser.zero_grad(set_to_none=True)
        loss = loss_fn(model(x[i]), y[i])
        loss.backward()
        optimiser.step()
        loss_value = loss.detach().item()  # synchronises (a no-op on CPU, kept for symmetry)
        times.append(time.perf_counter() - start)
    timed = times[args.warmup :]
    median = statistics.median(timed)
    print(
        json.dumps(
            {
                "framework": "pytorch",
                "version": torch.__version__,
                "device": "cpu",
                "threads": torch.get_num_threads(),
                "python": platform.python_version(),
                "size": args.size,
                "levels": args.levels,
                "base_filters": args.base_filters,
                "batch": args.batch,
                "params": sum(p.numel() for p in model.parameters()),
                "warmup": args.warmup,
                "steps": args.steps,
                "step_times_s": timed,
                "median_step_s": median,
                "slices_per_s": args.batch / median,
                "final_loss": loss_value,
            }
        )
    )


if __name__ == "__main__":
    main()
