#!/usr/bin/env python3
"""PCD-k for a Bernoulli RBM in PyTorch, written as a competent user would: the same
algorithm as rbm's engines (positive phase with hidden probabilities, k Gibbs sweeps of
persistent chains, one SGD update), in eager mode and captured as a CUDA graph. Prints
one line per (mode, batch): examples per second and microseconds per step.

    python3 torch_rbm.py [--device cuda] [--k 15] [--batches 20,1024] [--seconds 1]

On the GPU machine the `python3` on PATH is the one with PyTorch.
"""
import argparse
import time

import torch


def make_step(W, b, c, data, chains, k, lr, batch):
    """One PCD-k update on a random minibatch of `data`; returns nothing, updates in place."""
    n = data.shape[0]

    def step():
        idx = torch.randint(0, n, (batch,), device=data.device)
        v0 = data[idx]
        ph0 = torch.sigmoid(v0 @ W + c)
        h = chains
        for _ in range(k):
            pv = torch.sigmoid(h @ W.t() + b)
            v = torch.bernoulli(pv)
            ph = torch.sigmoid(v @ W + c)
            h = torch.bernoulli(ph)
        chains.copy_(h)
        # ph of the last visible sample is the negative statistic, as in rbm and the tutorial
        gW = v0.t() @ ph0 / batch - v.t() @ ph / batch
        W.add_(gW, alpha=lr)
        b.add_((v0.mean(0) - v.mean(0)), alpha=lr)
        c.add_((ph0.mean(0) - ph.mean(0)), alpha=lr)

    return step


def measure(step, seconds, sync):
    for _ in range(10):
        step()
    sync()
    n = 10
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        sync()
        dt = time.perf_counter() - t0
        if dt >= seconds:
            return dt / n
        n *= 2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--k", type=int, default=15)
    ap.add_argument("--batches", default="20,64,256,1024,4096")
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--modes", default="eager,graph")
    args = ap.parse_args()
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    torch.backends.cuda.matmul.allow_tf32 = False
    nv, nh = 784, 500
    print(f"# torch {torch.__version__} on {torch.cuda.get_device_name() if dev.type == 'cuda' else 'cpu'}, PCD-{args.k}")
    print(f"{'mode':>6} {'batch':>6} {'step_us':>10} {'examples/s':>12}")
    for batch in [int(x) for x in args.batches.split(",")]:
        for mode in args.modes.split(","):
            if mode == "graph" and dev.type != "cuda":
                continue
            g = torch.Generator(device="cpu").manual_seed(1)
            bound = 4 * (6 / (nv + nh)) ** 0.5
            W = ((torch.rand(nv, nh, generator=g) * 2 - 1) * bound).to(dev)
            b = torch.zeros(nv, device=dev)
            c = torch.zeros(nh, device=dev)
            data = torch.rand(max(8192, 4 * batch), nv, generator=g).to(dev)
            chains = torch.zeros(batch, nh, device=dev)
            step = make_step(W, b, c, data, chains, args.k, 0.1, batch)
            if mode == "graph":
                s = torch.cuda.Stream()
                s.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(s):
                    for _ in range(3):
                        step()
                torch.cuda.current_stream().wait_stream(s)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    step()
                run = graph.replay
            else:
                run = step
            t = measure(run, args.seconds, sync)
            print(f"{mode:>6} {batch:>6} {t * 1e6:>10.1f} {batch / t:>12.0f}", flush=True)


if __name__ == "__main__":
    main()
