"""Training throughput (slices/s) of the project's Keras models, with and without XLA, numpy vs tf.data,
and of the same U-Net in PyTorch.

What is measured
    One training step = forward + backward + Adam update on a batch (``--batch``, default 8) with
    MSE loss, i.e. what ``mrirecon.models.training.train_point`` does per batch. Each variant is trained
    with ``model.fit`` for ``--warmup`` + ``--steps`` batches of random float32 data of the
    model's input shapes (content does not change the cost); a callback takes a timestamp after
    every batch (after the loss is fetched, so the step has finished), the first ``--warmup``
    steps (tracing, XLA compilation) are dropped, and the **median** of the remaining step times
    gives ``slices/s = batch / median step``. The first step's time (mostly compilation) is
    reported separately.

    Models (``mrirecon.models.unet``, ``mrirecon.models.kspace_cnn``):
    * ``unet-L5F32``: ``build_image_unet(size, levels=5, base_filters=32)`` = 4 poolings, 32
      channels at the top, as the fastMRI U-Net (7.76 M parameters), at every ``--sizes`` (default
      128 and 256);
    * ``unet-params``: the image U-Net of ``params.yaml`` (largest ``train.grid.layers``,
      ``train.base_filters``, ``train.image_data_consistency``/``cascades``) at every ``--sizes``;
    * ``kspace-params``: ``build_kspace_cnn`` of ``params.yaml`` (largest ``layers``,
      ``kspace_filters``, ``data_consistency``) at ``--kspace-size`` (default 128).

    Variants of each: ``model.compile(jit_compile=False | True)`` (XLA) x inputs given as numpy
    arrays (``fit(x, y, batch_size, shuffle=True)``, what training.py does) or as a
    ``tf.data.Dataset.from_tensor_slices(...).shuffle().batch().prefetch(tf.data.AUTOTUNE)``.
    The project itself compiles with Keras's default ``jit_compile="auto"``, which is XLA *off*
    on a CPU-only machine and *on* when TensorFlow sees a GPU; its variant is marked ``*``.

    PyTorch: ``benchmarks/torch_unet.py`` (same U-Net depth/width/structure and parameter count,
    Adam, MSE, batch 8, CPU, same thread count and step counts) runs with ``.venv-bench/bin/python``
    (``make bench-torch-venv``) if that exists, for ``unet-L5F32`` at every size; the ratio
    TF step time / PyTorch step time is printed for the project's variant and for TF's fastest.

    Epoch time at full IXI size: ``--epoch-slices`` (default 2905 = 581 subjects x 5 slices)
    divided by the measured slices/s, for every row (at that row's image size; the 256 x 256
    rows are the full-resolution figure). About 70 % of those slices are training slices.

Threads: TensorFlow uses ``TF_NUM_INTRAOP_THREADS`` / ``TF_NUM_INTEROP_THREADS`` if set (else all
CPUs); PyTorch gets the same intra-op count. The same script runs unchanged on a GPU build of
TensorFlow (``make install EXTRAS=test,gpu``); the PyTorch comparison then stays on CPU and its
ratio is not reported.

Output: tables on stdout and the key ``"train_throughput"`` of ``reports/bench.json`` (merged).

Usage:
    .venv/bin/python benchmarks/train_throughput.py                       # defaults above
    .venv/bin/python benchmarks/train_throughput.py --sizes 64 --kspace-size 64 --steps 2 --warmup 1   # tiny
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT, add_output_options, doc_parser, environment, print_table, publish

TORCH_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
TORCH_SCRIPT = Path(__file__).resolve().parent / "torch_unet.py"
NO_TORCH = "torch not installed: make bench-torch-venv"


def intra_op_threads() -> int:
    for key in ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(key, "").isdigit() and int(os.environ[key]) > 0:
            return int(os.environ[key])
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def model_configs(args, params) -> list[dict]:
    """The models to time: name, kind, size and builder arguments."""
    train = params.train
    configs = [
        {
            "name": "unet-L5F32",
            "kind": "image",
            "size": s,
            "levels": 5,
            "filters": 32,
            "data_consistency": False,
            "cascades": 1,
            "torch": True,
        }
        for s in args.sizes
    ]
    if train is not None and not args.no_params_models:
        image_levels = max(train.grid["layers"])
        dc = train.image_data_consistency
        configs += [
            {
                "name": "unet-params",
                "kind": "image",
                "size": s,
                "levels": image_levels,
                "filters": train.base_filters,
                "data_consistency": dc,
                "cascades": train.cascades if dc else 1,
                "torch": False,
            }
            for s in args.sizes
        ]
        configs.append(
            {
                "name": "kspace-params",
                "kind": "kspace",
                "size": args.kspace_size,
                "layers": max(2, max(train.grid["layers"])),
                "filters": train.kspace_filters,
                "data_consistency": train.data_consistency,
                "torch": False,
            }
        )
    return configs


def describe(config: dict) -> str:
    if config["kind"] == "kspace":
        return f"kspace {config['layers']}x{config['filters']}{' DC' if config['data_consistency'] else ''}"
    dc = f" DC x{config['cascades']}" if config["data_consistency"] else ""
    return f"unet L{config['levels']} F{config['filters']}{dc}"


def build(config: dict):
    from mrirecon.models.kspace_cnn import build_kspace_cnn
    from mrirecon.models.unet import build_image_unet

    if config["kind"] == "image":
        return build_image_unet(
            config["size"], config["levels"], config["filters"], config["data_consistency"], config["cascades"]
        )
    return build_kspace_cnn(config["size"], config["layers"], config["filters"], config["data_consistency"])


def random_data(config: dict, n: int, seed: int = 0):
    """Random inputs/targets of the model's shapes (float32)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    s = config["size"]

    def arr(*shape):
        return rng.standard_normal((n, *shape), dtype=np.float32)

    mask = (rng.random((n, s)) < 0.3).astype(np.float32)
    if config["kind"] == "kspace":
        return {"kspace": arr(s, s, 2), "mask": mask}, arr(s, s, 2)
    if config["data_consistency"]:
        return {"zero_filled": arr(s, s, 2), "kspace": arr(s, s, 2), "mask": mask}, arr(s, s, 2)
    return arr(s, s, 1), arr(s, s, 1)


def time_variant(config: dict, xla: bool, inputs: str, args) -> dict:
    """Train one variant for warmup + steps batches; return step timings."""
    import keras
    import tensorflow as tf

    class StepTimer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.ends = [time.perf_counter()]

        def on_train_batch_end(self, batch, logs=None):
            if logs and "loss" in logs:
                float(logs["loss"])  # the step's result is available: the step is finished
            self.ends.append(time.perf_counter())

    keras.utils.set_random_seed(args.seed)
    n_batches = args.warmup + args.steps
    x, y = random_data(config, n_batches * args.batch, args.seed)
    model = build(config)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", jit_compile=xla)
    timer = StepTimer()
    if inputs == "numpy":
        model.fit(x, y, batch_size=args.batch, epochs=1, shuffle=True, verbose=0, callbacks=[timer])
    else:
        data = (
            tf.data.Dataset.from_tensor_slices((x, y))
            .shuffle(n_batches * args.batch, seed=args.seed)
            .batch(args.batch, drop_remainder=True)
            .prefetch(tf.data.AUTOTUNE)
        )
        model.fit(data, epochs=1, shuffle=False, verbose=0, callbacks=[timer])  # the dataset shuffles
    steps = [b - a for a, b in zip(timer.ends, timer.ends[1:])]
    if len(steps) != n_batches:
        raise RuntimeError(f"expected {n_batches} steps, timed {len(steps)}")
    timed = steps[args.warmup :]
    median = statistics.median(timed)
    params = model.count_params()
    del model, x, y
    keras.backend.clear_session()
    gc.collect()
    return {
        "first_step_s": steps[0],
        "step_times_s": timed,
        "median_step_s": median,
        "slices_per_s": args.batch / median,
        "params": params,
        "epoch_s": args.epoch_slices / (args.batch / median),
    }


def run_torch(config: dict, args) -> dict:
    """Time the PyTorch U-Net in .venv-bench; {'error': ...} if not available or failing."""
    python = args.torch_python
    if not python.exists():
        return {"error": NO_TORCH}
    cmd = [
        str(python),
        str(TORCH_SCRIPT),
        "--size",
        str(config["size"]),
        "--levels",
        str(config["levels"]),
        "--base-filters",
        str(config["filters"]),
        "--batch",
        str(args.batch),
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        "--threads",
        str(intra_op_threads()),
        "--seed",
        str(args.seed),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        return {"error": f"torch_unet.py failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}"}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["epoch_s"] = args.epoch_slices / result["slices_per_s"]
    return result


def main() -> None:
    parser = doc_parser(__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256], help="U-Net image sizes (default 128 256)")
    parser.add_argument("--kspace-size", type=int, default=128, help="k-space CNN size (default 128)")
    parser.add_argument("--batch", type=int, default=8, help="batch size (default 8)")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per variant, median taken (default 8)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    parser.add_argument("--xla", nargs="+", choices=["off", "on"], default=["off", "on"], help="default: off on")
    parser.add_argument(
        "--inputs", nargs="+", choices=["numpy", "dataset"], default=["numpy", "dataset"], help="default: numpy dataset"
    )
    parser.add_argument(
        "--no-params-models",
        action="store_true",
        help="only the L5/F32 U-Net (skip params.yaml's U-Net and k-space CNN)",
    )
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml", help="params file (default params.yaml)")
    parser.add_argument(
        "--epoch-slices",
        type=int,
        default=2905,
        help="slices per epoch for the epoch-time column (default 2905 = 581 x 5)",
    )
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    parser.add_argument(
        "--torch-python",
        type=Path,
        default=TORCH_PYTHON,
        help="python of the PyTorch venv (default .venv-bench/bin/python)",
    )
    parser.add_argument("--seed", type=int, default=0)
    add_output_options(parser)
    args = parser.parse_args()
    if args.steps < 1 or args.warmup < 1:
        parser.error("--steps and --warmup must be >= 1 (the first step compiles)")

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: no C++ info lines
    import keras
    import tensorflow as tf

    from mrirecon.config import load_params

    tf.get_logger().setLevel("ERROR")  # silence "retracing" warnings: every variant builds a new model

    params = load_params(args.params)
    gpus = tf.config.list_physical_devices("GPU")
    device = f"GPU x{len(gpus)} ({', '.join(g.name for g in gpus)})" if gpus else "CPU"
    print(
        f"TensorFlow {tf.__version__} (CUDA build: {tf.test.is_built_with_cuda()}), Keras {keras.__version__}, "
        f"device {device}, intra-op threads {intra_op_threads()}",
        flush=True,
    )
    configs = model_configs(args, params)
    variants = [(xla == "on", inputs) for xla in args.xla for inputs in args.inputs]
    default_variant = (bool(gpus), "numpy")  # training.py: numpy arrays, jit_compile="auto"

    results = []
    for config in configs:
        for xla, inputs in variants:
            label = f"{config['name']} {config['size']} xla={'on' if xla else 'off'} {inputs}"
            print(f"  {label} ...", end=" ", flush=True)
            entry = {
                **{k: v for k, v in config.items() if k != "torch"},
                "model": describe(config),
                "xla": xla,
                "inputs": inputs,
                "project_default": (xla, inputs) == default_variant,
            }
            try:
                entry.update(time_variant(config, xla, inputs, args))
                print(f"{entry['slices_per_s']:.1f} slices/s", flush=True)
            except Exception as exc:  # noqa: BLE001 - one failing variant (e.g. an op XLA lacks) must not stop the rest
                entry["error"] = " ".join(str(exc).split())[:500]
                print(f"failed: {entry['error'][:200]}", flush=True)
            results.append(entry)

    torch_results = []
    if not args.no_torch:
        for config in (c for c in configs if c["torch"]):
            print(f"  pytorch {config['name']} {config['size']} ...", end=" ", flush=True)
            result = {"size": config["size"], **run_torch(config, args)}
            print(result.get("error") or f"{result['slices_per_s']:.1f} slices/s", flush=True)
            torch_results.append(result)

    ok = [r for r in results if "error" not in r]
    print_table(
        [
            "model",
            "size",
            "params",
            "XLA",
            "input",
            "first step s",
            "median step s",
            "slices/s",
            f"epoch {args.epoch_slices} sl. min",
        ],
        [
            [
                r["model"] + (" *" if r["project_default"] else ""),
                r["size"],
                r.get("params"),
                "on" if r["xla"] else "off",
                r["inputs"],
                r.get("first_step_s"),
                r.get("median_step_s"),
                r.get("slices_per_s"),
                r["epoch_s"] / 60 if "epoch_s" in r else r.get("error", "")[:40],
            ]
            for r in results
        ],
        title=f"Training step, batch {args.batch}, median of {args.steps} steps after {args.warmup} warm-up "
        f"({device}; * = the project's setting)",
    )

    summary = []
    for config in configs:
        rows = [r for r in ok if r["name"] == config["name"] and r["size"] == config["size"]]
        if not rows:
            continue
        best = max(rows, key=lambda r: r["slices_per_s"])
        lookup = {(r["xla"], r["inputs"]): r["slices_per_s"] for r in rows}
        xla_gain = [
            lookup[(True, i)] / lookup[(False, i)] for i in args.inputs if (True, i) in lookup and (False, i) in lookup
        ]
        data_gain = [
            lookup[(x, "dataset")] / lookup[(x, "numpy")]
            for x in (False, True)
            if (x, "dataset") in lookup and (x, "numpy") in lookup
        ]
        summary.append(
            {
                "model": config["name"],
                "size": config["size"],
                "fastest": f"xla={'on' if best['xla'] else 'off'} {best['inputs']}",
                "fastest_slices_per_s": best["slices_per_s"],
                "xla_speedup": statistics.mean(xla_gain) if xla_gain else None,
                "dataset_speedup": statistics.mean(data_gain) if data_gain else None,
            }
        )
    print_table(
        ["model", "size", "fastest variant", "slices/s", "XLA on/off", "tf.data/numpy"],
        [
            [s["model"], s["size"], s["fastest"], s["fastest_slices_per_s"], s["xla_speedup"], s["dataset_speedup"]]
            for s in summary
        ],
        title="Which is faster (speed-up factors > 1 favour XLA on / tf.data; mean over the other axis)",
    )

    comparisons = []
    if torch_results:
        rows = []
        for t in torch_results:
            tf_rows = [r for r in ok if r["name"] == "unet-L5F32" and r["size"] == t["size"]]
            project = next((r for r in tf_rows if r["project_default"]), None)
            best = max(tf_rows, key=lambda r: r["slices_per_s"]) if tf_rows else None
            if "error" in t:
                rows.append(
                    [
                        t["size"],
                        project and project["slices_per_s"],
                        best and best["slices_per_s"],
                        t["error"],
                        None,
                        None,
                    ]
                )
                continue
            comparable = not gpus
            cmp = {
                "size": t["size"],
                "torch_slices_per_s": t["slices_per_s"],
                "comparable": comparable,
                "tf_project_slices_per_s": project and project["slices_per_s"],
                "tf_best_slices_per_s": best and best["slices_per_s"],
                "tf_over_torch_time_project": (t["slices_per_s"] / project["slices_per_s"])
                if project and comparable
                else None,
                "tf_over_torch_time_best": (t["slices_per_s"] / best["slices_per_s"]) if best and comparable else None,
                "params_equal": bool(best and best["params"] == t["params"]),
            }
            comparisons.append(cmp)
            rows.append(
                [
                    t["size"],
                    cmp["tf_project_slices_per_s"],
                    cmp["tf_best_slices_per_s"],
                    t["slices_per_s"],
                    cmp["tf_over_torch_time_project"],
                    cmp["tf_over_torch_time_best"],
                ]
            )
        print_table(
            ["size", "TF * slices/s", "TF best slices/s", "PyTorch slices/s", "TF*/PT time", "TFbest/PT time"],
            rows,
            title=f"U-Net L5 F32 (fastMRI size), TensorFlow vs PyTorch {torch_results[0].get('version', '(not run)')} "
            f"on CPU (time ratio > 1: TensorFlow slower)"
            + ("" if not gpus else " -- TF ran on GPU, PyTorch on CPU: ratios not comparable"),
        )
    else:
        print(f"\nPyTorch comparison skipped ({'--no-torch' if args.no_torch else NO_TORCH})")

    full = [r for r in ok if r["size"] == 256 and r["kind"] == "image"]
    if full:
        print(
            f"\nEpoch of {args.epoch_slices} slices at 256x256 (full IXI, 581 subjects x 5 slices), batch {args.batch}:"
        )
        for name in dict.fromkeys(r["name"] for r in full):
            rows = [r for r in full if r["name"] == name]
            project = next((r for r in rows if r["project_default"]), None)
            best = max(rows, key=lambda r: r["slices_per_s"])
            text = f"  {rows[0]['model']}: {best['epoch_s'] / 60:.1f} min fastest ({best['slices_per_s']:.1f} slices/s)"
            if project:
                text += f", {project['epoch_s'] / 60:.1f} min as the project runs it"
            print(text)
        for t in torch_results:
            if t["size"] == 256 and "error" not in t:
                print(f"  PyTorch U-Net L5 F32: {t['epoch_s'] / 60:.1f} min ({t['slices_per_s']:.1f} slices/s)")

    figures = {
        "environment": environment(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "device": device,
        "intra_op_threads": intra_op_threads(),
        "batch": args.batch,
        "steps": args.steps,
        "warmup": args.warmup,
        "epoch_slices": args.epoch_slices,
        "results": results,
        "summary": summary,
        "torch": (torch_results or NO_TORCH) if not args.no_torch else "skipped",
        "tf_vs_torch": comparisons,
    }
    publish(args, "train_throughput", figures)


if __name__ == "__main__":
    sys.exit(main())
