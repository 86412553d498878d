#!/usr/bin/python3
"""The reference points of tools/bench_cpu.sh: PCD-k training throughput of

  sklearn  scikit-learn's BernoulliRBM (PCD-1 only: that is what it implements), fit on
           float32 rows with n_iter=1, so each fit is one pass of PCD-1 minibatch steps;
  torch    the same algorithm in PyTorch on the CPU, written the way a competent user
           would: addmm + sigmoid + bernoulli under no_grad, in-place parameter updates.

Both on the same rows as rbm_bench (MNIST x/255 from data/mnist, or random rows of the
same shape and sparsity), the same batch, hidden units, learning rate and thread count
(OpenBLAS threads through threadpoolctl, and PyTorch's intra-op threads). Prints one
RESULT line per measurement, the medians over --repeats timings.

Run with Debian's interpreter (/usr/bin/python3), which has python3-sklearn and
python3-torch.
"""
import argparse
import gzip
import os
import statistics
import sys
import time

import numpy as np


def load_rows(path, limit):
    if path != "random" and os.path.exists(path):
        with open(path, "rb") as f:
            raw = f.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        magic, n = int.from_bytes(raw[0:4], "big"), int.from_bytes(raw[4:8], "big")
        if magic != 2051:
            sys.exit(f"{path}: not an IDX image file (magic {magic})")
        rows, cols = int.from_bytes(raw[8:12], "big"), int.from_bytes(raw[12:16], "big")
        n = min(n, limit)
        data = np.frombuffer(raw, dtype=np.uint8, count=n * rows * cols, offset=16)
        return data.reshape(n, rows * cols).astype(np.float32) / np.float32(255.0), f"{path} ({n} rows)"
    # As rbm_bench: random rows of 784 values, 80% zeros.
    rng = np.random.default_rng(7)
    x = rng.random((limit, 784), dtype=np.float32)
    x[rng.random((limit, 784)) < 0.8] = 0.0
    return x, f"random ({limit} rows of 784)"


def bench_sklearn(x, args):
    from sklearn.neural_network import BernoulliRBM

    n = min(len(x), args.sklearn_examples)
    rows = x[:n]
    times = []
    for r in range(args.repeats + 1):  # the first fit warms up
        rbm = BernoulliRBM(n_components=args.hidden, learning_rate=args.lr, batch_size=args.batch,
                           n_iter=1, random_state=r)
        t0 = time.perf_counter()
        rbm.fit(rows)
        times.append(time.perf_counter() - t0)
    assert rbm.components_.dtype == np.float32
    return [n / t for t in times[1:]]


def bench_torch(x, args):
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    nv, nh, b, k, lr = x.shape[1], args.hidden, args.batch, args.k, args.lr
    data = torch.from_numpy(x)
    n_batches = len(x) // b
    bound = 4.0 * (6.0 / (nv + nh)) ** 0.5
    W = torch.empty(nv, nh).uniform_(-bound, bound)
    vbias = torch.zeros(nv)
    hbias = torch.zeros(nh)
    chains = torch.zeros(b, nh)  # persistent chains, started at h = 0 as in the tutorial
    scale = lr / b

    def step(i):
        nonlocal chains
        v0 = data[(i % n_batches) * b:(i % n_batches + 1) * b]
        ph0 = torch.sigmoid(torch.addmm(hbias, v0, W))
        h = chains
        for _ in range(k):
            v = torch.bernoulli(torch.sigmoid(torch.addmm(vbias, h, W.t())))
            ph = torch.sigmoid(torch.addmm(hbias, v, W))
            h = torch.bernoulli(ph)
        chains = h
        # W += lr (v0' ph0 / B - v' ph / C), in place, C = B chains
        W.addmm_(v0.t(), ph0, alpha=scale)
        W.addmm_(v.t(), ph, alpha=-scale)
        vbias.add_(v0.sum(0) - v.sum(0), alpha=scale)
        hbias.add_(ph0.sum(0) - ph.sum(0), alpha=scale)

    steps = max(5, args.torch_examples // (b * k))
    rates = []
    with torch.no_grad():
        for i in range(5):
            step(i)
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            for i in range(steps):
                step(i)
            rates.append(steps * b / (time.perf_counter() - t0))
    assert torch.isfinite(W).all()
    return rates


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("which", choices=["sklearn", "torch"])
    p.add_argument("--data", default="data/mnist/train-images-idx3-ubyte")
    p.add_argument("--limit", type=int, default=10000)
    p.add_argument("--hidden", type=int, default=500)
    p.add_argument("--batch", type=int, default=20)
    p.add_argument("--k", type=int, default=1)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--sklearn-examples", type=int, default=4000, help="rows per timed fit")
    p.add_argument("--torch-examples", type=int, default=30000, help="examples x Gibbs steps per timing")
    args = p.parse_args()

    from threadpoolctl import threadpool_limits

    x, what = load_rows(args.data, args.limit)
    with threadpool_limits(limits=args.threads):
        if args.which == "sklearn":
            if args.k != 1:
                sys.exit("scikit-learn's BernoulliRBM does PCD-1 only")
            rates = bench_sklearn(x, args)
        else:
            rates = bench_torch(x, args)
    rate = statistics.median(rates)
    spread = (max(rates) - min(rates)) / rate
    print(f"# {args.which}: {what}, PCD-{args.k}, batch {args.batch}, {args.hidden} hidden, lr {args.lr}, "
          f"{args.threads} thread(s); examples/s per repeat: " + " ".join(f"{r:.0f}" for r in rates))
    print(f"RESULT engine={args.which} method=pcd k={args.k} batch={args.batch} hidden={args.hidden} "
          f"threads={args.threads} ex_per_s={rate:.1f} ex_gibbs_per_s={rate * args.k:.1f} spread={spread:.3f}")


if __name__ == "__main__":
    main()
