"""Speed of the reference CNN layers against a baseline (run by hand, not in CI).

Times forward + backward of ``reference.cnn.conv2d_*`` on three workloads and of
``reference.cnn.maxpool_*`` on one, and prints a table of the median times over
several repeats (in alternating blocks, each after a warm-up), next to a baseline
measured in the same run:

- torch (when installed): ``torch.nn.functional.conv2d`` / ``max_pool2d`` forward
  plus ``torch.autograd.grad`` on the CPU, ``torch.set_num_threads(2)``, in
  float64 like the reference, inputs converted to NCHW and (C_out, C_in, f_h, f_w);
- otherwise a naive version that loops in Python over output pixels.

The goal is a ratio (reference / baseline) of at most 1.3 on every workload.

Some machines set OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, which slow NumPy's matrix
products down; run it without them:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/reference_speed.py

Options: ``--repeats N`` (default 7), ``--baseline naive`` to skip torch.

Timings on a shared or virtual machine are noisy: run it a few times. Small
workloads are sensitive to page faults when glibc hands freed memory back to the
OS; MALLOC_MMAP_THRESHOLD_=67108864 MALLOC_TRIM_THRESHOLD_=268435456 in the
environment avoids that (for both libraries; torch gains more from it).
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from reference import cnn  # noqa: E402

# (name, x shape (N, H, W, C_in), w shape (f_h, f_w, C_in, C_out), stride, pad)
CONV_WORKLOADS = [
    ("conv x(64,32,32,3) w(5,5,3,16) pad 2", (64, 32, 32, 3), (5, 5, 3, 16), 1, 2),
    ("conv x(64,16,16,16) w(3,3,16,32) pad 1", (64, 16, 16, 16), (3, 3, 16, 32), 1, 1),
    ("conv x(32,28,28,1) w(5,5,1,8) stride 2 pad 2", (32, 28, 28, 1), (5, 5, 1, 8), 2, 2),
]
# (name, x shape (N, H, W, C), size, stride)
POOL_WORKLOADS = [
    ("maxpool x(64,32,32,16) size 2 stride 2", (64, 32, 32, 16), 2, 2),
]


# --------------------------------------------------------------------------
# Baselines: each returns a zero-argument callable doing forward + backward.
# --------------------------------------------------------------------------

def torch_conv(x, w, b, dy, stride, pad):
    import torch

    tx = torch.tensor(x.transpose(0, 3, 1, 2).copy(), requires_grad=True)
    tw = torch.tensor(w.transpose(3, 2, 0, 1).copy(), requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)
    tdy = torch.tensor(dy.transpose(0, 3, 1, 2).copy())

    def run():
        y = torch.nn.functional.conv2d(tx, tw, tb, stride=stride, padding=pad)
        return torch.autograd.grad(y, (tx, tw, tb), tdy)

    return run


def torch_pool(x, dy, size, stride):
    import torch

    tx = torch.tensor(x.transpose(0, 3, 1, 2).copy(), requires_grad=True)
    tdy = torch.tensor(dy.transpose(0, 3, 1, 2).copy())

    def run():
        y = torch.nn.functional.max_pool2d(tx, size, stride)
        return torch.autograd.grad(y, tx, tdy)

    return run


def naive_conv(x, w, b, dy, stride, pad):
    """Loop over output pixels; each step is one vectorised window product."""
    f_h, f_w = w.shape[:2]

    def run():
        xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
        n, h_out, w_out, _ = dy.shape
        y = np.empty(dy.shape)
        dxp, dw = np.zeros_like(xp), np.zeros_like(w)
        for p in range(h_out):
            for q in range(w_out):
                rows = slice(p * stride, p * stride + f_h)
                cols = slice(q * stride, q * stride + f_w)
                patch = xp[:, rows, cols, :]
                y[:, p, q, :] = np.tensordot(patch, w, axes=3) + b
                dw += np.tensordot(patch, dy[:, p, q, :], axes=([0], [0]))
                dxp[:, rows, cols, :] += np.tensordot(dy[:, p, q, :], w, axes=([1], [3]))
        return y, dxp, dw, dy.sum(axis=(0, 1, 2))

    return run


def naive_pool(x, dy, size, stride):
    def run():
        n, h_out, w_out, c = dy.shape
        y = np.empty(dy.shape)
        dx = np.zeros_like(x)
        for p in range(h_out):
            for q in range(w_out):
                win = x[:, p * stride:p * stride + size, q * stride:q * stride + size, :]
                flat = win.reshape(n, size * size, c)
                y[:, p, q, :] = flat.max(axis=1)
                first = flat.argmax(axis=1)
                onehot = np.arange(size * size)[None, :, None] == first[:, None, :]
                dwin = dx[:, p * stride:p * stride + size, q * stride:q * stride + size, :]
                dwin += (onehot * dy[:, p, q, None, :]).reshape(win.shape)
        return y, dx

    return run


# --------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------

def median_ms(reference, baseline, repeats, rounds=3):
    """Median wall time in ms of each callable over rounds * repeats calls.

    Each library runs in blocks of `repeats` calls, alternating between the two
    for `rounds` rounds: within a block only one thread pool (OpenBLAS or torch's
    OpenMP) is busy, so neither pays for the other's spinning threads, while
    alternating spreads changes in machine load over both.
    """
    times = {reference: [], baseline: []}
    for _ in range(rounds):
        for fn in (reference, baseline):
            fn()  # warm-up: caches, thread pools, lazy imports
            for _ in range(repeats):
                start = time.perf_counter()
                fn()
                times[fn].append(time.perf_counter() - start)
    return 1e3 * np.median(times[reference]), 1e3 * np.median(times[baseline])


def workloads(rng, use_torch):
    """Yield (name, reference callable, baseline callable)."""
    make_conv = torch_conv if use_torch else naive_conv
    make_pool = torch_pool if use_torch else naive_pool
    for name, x_shape, w_shape, stride, pad in CONV_WORKLOADS:
        x = rng.standard_normal(x_shape)
        w = rng.standard_normal(w_shape)
        b = rng.standard_normal(w_shape[3])
        dy = rng.standard_normal(cnn.conv2d_forward(x, w, b, stride, pad).shape)

        def reference(x=x, w=w, b=b, dy=dy, stride=stride, pad=pad):
            cnn.conv2d_forward(x, w, b, stride, pad)
            return cnn.conv2d_backward(dy, x, w, b, stride, pad)

        yield name, reference, make_conv(x, w, b, dy, stride, pad)
    for name, x_shape, size, stride in POOL_WORKLOADS:
        x = rng.standard_normal(x_shape)
        dy = rng.standard_normal(cnn.maxpool_forward(x, size, stride).shape)

        def reference(x=x, dy=dy, size=size, stride=stride):
            cnn.maxpool_forward(x, size, stride)
            return cnn.maxpool_backward(dy, x, size, stride)

        yield name, reference, make_pool(x, dy, size, stride)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--baseline", choices=["auto", "torch", "naive"], default="auto")
    args = parser.parse_args(argv)

    use_torch, why = args.baseline != "naive", "as asked"
    if use_torch:
        try:
            import torch
        except ImportError:
            if args.baseline == "torch":
                raise
            use_torch, why = False, "torch not installed"
    if use_torch:
        torch.set_num_threads(2)
        label = f"torch {torch.__version__} CPU, float64, 2 threads"
    else:
        label = f"naive NumPy loop over output pixels ({why})"
    print(f"baseline: {label}; forward + backward, median of 3 x {args.repeats} "
          f"repeats, each block after a warm-up")

    rng = np.random.default_rng(0)
    header = f"| {'workload':<46} | {'reference ms':>12} | {'baseline ms':>11} | {'ratio':>5} |"
    print(header)
    print("|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|")
    for name, reference, baseline in workloads(rng, use_torch):
        ref_ms, base_ms = median_ms(reference, baseline, args.repeats)
        print(f"| {name:<46} | {ref_ms:>12.2f} | {base_ms:>11.2f} | {ref_ms / base_ms:>5.2f} |")


if __name__ == "__main__":
    main()
