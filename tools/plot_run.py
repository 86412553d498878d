#!/usr/bin/python3
"""Turns an rbm run directory into PNGs: learning curves, a filter grid, sample grids.

    tools/plot_run.py RUN_DIR [--out DIR] [--checkpoint FILE] [--samples FILE ...] [--filters N]

Writes into DIR (default RUN_DIR/plots):
  learning_curves.png  every row of metrics.h5 against epochs: pseudo-likelihood cost,
                       reconstruction cross-entropy, free energies (train, validation),
                       their gap, throughput, learning rate and, for parallel tempering, the
                       lowest neighbouring pair's swap acceptance (the end-of-epoch rows are dots;
                       dashed lines mark where each resumed process began, and the title gives
                       the ranks where they changed)
  filters.png          the first N hidden units' weights (columns of W) of the newest
                       checkpoint (or --checkpoint), each tile scaled to its own range, in the
                       image shape the checkpoint keeps (rows of values where its data were
                       not images, such as rbm transform's features)
  chains.png           p(v | h) of the checkpoint's persistent chains: what PCD samples look like
  samples-NAME.png     for each samples file (RUN_DIR/samples/*.h5, or --samples: rbm sample's
                       output): rows are recorded samples, columns chains (mean-field images)

Runs with Debian's python3-h5py, python3-numpy and python3-matplotlib (/usr/bin/python3),
without a display. Reads metrics.h5 as a SWMR reader, so it can plot a run in progress.
"""
import argparse
import glob
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rbm_h5 import checkpoints, epoch_end_rows, open_h5, read_dataset  # noqa: E402  (tools/rbm_h5.py, beside this script)


def image_shape(n_visible, hint=None):
    """(height, width) of one image: what a file's attributes say (0 x 0: not images, drawn
    as a strip of values); without them, square where n_visible is a square, else a strip."""
    if hint is not None:
        h, w = int(hint[0]), int(hint[1])
        return (h, w) if h > 0 and w > 0 and h * w == n_visible else (1, n_visible)
    side = math.isqrt(n_visible)
    return (side, side) if side * side == n_visible else (1, n_visible)


def tile(images, shape, columns):
    """[n, h*w] -> one grey image, each tile scaled to its own min..max, 1-pixel black spacing."""
    h, w = shape
    n = len(images)
    rows = max(1, math.ceil(n / columns))
    out = np.zeros((rows * (h + 1) - 1, columns * (w + 1) - 1), dtype=np.float32)
    for i, x in enumerate(images):
        x = np.asarray(x, dtype=np.float64).reshape(h, w)
        lo, hi = x.min(), x.max()
        x = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
        r, c = divmod(i, columns)
        out[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = x
    return out


def save_grid(grid, title, path):
    """Saves a tiled grey image with a title, about 3 screen pixels per image pixel."""
    height, width = grid.shape
    scale = max(0.03, 6.0 / max(height, width))   # inches per pixel: the longer side >= 6 in
    title_in = 0.4
    fig_h = height * scale + title_in
    fig = plt.figure(figsize=(width * scale, fig_h))
    ax = fig.add_axes([0, 0, 1, height * scale / fig_h])
    ax.imshow(grid, cmap="gray", interpolation="nearest", vmin=0, vmax=1, aspect="auto")
    ax.set_axis_off()
    fig.text(0.5, 1 - 0.5 * title_in / fig_h, title, ha="center", va="center", fontsize=9)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_metrics(metrics_path, out_dir, run_name):
    with open_h5(metrics_path) as f:
        m = read_dataset(f, metrics_path, "metrics")
    if len(m) == 0:
        print(f"plot_run: {metrics_path} has no rows yet; no learning curves", file=sys.stderr)
        return None
    epoch = m["epoch"]
    at_epoch_end = epoch_end_rows(m)
    panels = [
        ("pseudo_likelihood", ["pseudo_likelihood"], "PL cost (higher is better)"),
        ("reconstruction_xent", ["reconstruction_xent"], "reconstruction cross-entropy"),
        ("free energy", ["free_energy_train", "free_energy_valid"], "mean free energy"),
        ("free_energy_gap", ["free_energy_gap"], "valid - train (rising: over-fitting)"),
        ("examples_per_s", ["examples_per_s"], "examples / s, all ranks"),
        ("learning_rate", ["learning_rate"], "learning rate"),
    ]
    # Parallel tempering's runs (a column older files lack): the lowest neighbouring pair's
    # swap acceptance, where a ladder that is cut shows as a curve near 0.
    tempered = "swap_acceptance_min" in m.dtype.names and np.any(np.isfinite(m["swap_acceptance_min"]))
    if tempered:
        panels.append(("swap_acceptance_min", ["swap_acceptance_min"], "lowest pair's swap acceptance"))
    # Where each resumed process began: its number in the `process` column goes up (files of
    # before that column: where wall_s, which each process starts again, drops).
    if "process" in m.dtype.names and np.all(np.isfinite(m["process"])):
        resumed = [i for i in range(1, len(m)) if m["process"][i] != m["process"][i - 1]]
    else:
        resumed = [i for i in range(1, len(m)) if m["wall_s"][i] < m["wall_s"][i - 1]]
    ranks = m["ranks"] if "ranks" in m.dtype.names else np.full(len(m), np.nan)
    rank_counts = [int(r) for i, r in enumerate(ranks) if np.isfinite(r) and (i == 0 or r != ranks[i - 1])]
    # A job requeued many times would overflow the title: past three, only how many.
    resumes = (f"; resumed before step {', '.join(str(int(m['step'][i])) for i in resumed)}" if len(resumed) <= 3
               else f"; resumed {len(resumed)} times")
    changes = rank_counts if len(rank_counts) <= 4 else rank_counts[:2] + ["..."] + rank_counts[-1:]
    history = (resumes if resumed else "") + (f"; ranks {' -> '.join(map(str, changes))}" if rank_counts else "")
    print(f"plot_run: {metrics_path}: {len(m)} rows, {len(resumed) + 1} process(es){history}", file=sys.stderr)
    fig, axes = plt.subplots(2, 4 if tempered else 3, figsize=(17 if tempered else 13, 7), constrained_layout=True)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, (title, fields, ylabel) in zip(axes.flat, panels):
        for name in fields:
            y = m[name]
            if not np.any(np.isfinite(y)):
                continue
            line, = ax.plot(epoch, y, lw=0.8, label=name.replace("free_energy_", ""))
            ax.plot(epoch[at_epoch_end], y[at_epoch_end], "o", ms=3, color=line.get_color())
        if len(fields) > 1 and ax.lines:
            ax.legend(fontsize=8)
        if not ax.lines:
            ax.text(0.5, 0.5, "no data (no validation set?)", ha="center", va="center",
                    transform=ax.transAxes, fontsize=9, color="grey")
        for i in resumed:
            ax.axvline(epoch[i], color="grey", ls="--", lw=0.6)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel, fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{run_name}: {len(m)} rows, step {int(m['step'][-1])}, epoch {epoch[-1]:.2f}{history}")
    path = os.path.join(out_dir, "learning_curves.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def newest_checkpoint(run_dir):
    found = checkpoints(run_dir)
    return found[-1] if found else None


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def plot_checkpoint(ckpt_path, out_dir, n_filters, shape_hint):
    with open_h5(ckpt_path) as f:
        W = read_dataset(f, ckpt_path, "model/W")   # [n_visible, n_hidden]
        vbias = read_dataset(f, ckpt_path, "model/vbias")
        chains = f["chains/hidden"][:] if "chains/hidden" in f else None
        step = int(f["state"].attrs["step"]) if "state" in f else -1
        model = f["model"].attrs
        if "image_height" in model and "image_width" in model:   # checkpoints since 2026-11-28
            shape_hint = (model["image_height"], model["image_width"])
    n_visible, n_hidden = W.shape
    shape = image_shape(n_visible, shape_hint)
    n = min(n_filters, n_hidden)
    columns = math.ceil(math.sqrt(n))
    written = [save_grid(tile(W[:, :n].T, shape, columns),
                         f"first {n} of {n_hidden} filters, step {step}",
                         os.path.join(out_dir, "filters.png"))]
    if chains is not None and len(chains):
        k = min(len(chains), 100)
        means = sigmoid(chains[:k].astype(np.float64) @ W.T.astype(np.float64) + vbias)
        written.append(save_grid(tile(means, shape, min(k, 10)),
                                 f"p(v | h) of {k} of {len(chains)} persistent chains, step {step}",
                                 os.path.join(out_dir, "chains.png")))
    return written


def plot_samples(samples_path, out_dir):
    try:
        f = open_h5(samples_path)
    except OSError as e:
        print(f"plot_run: skipping {e.args[0]}", file=sys.stderr)
        return None, None
    with f:
        kind = f.attrs.get("rbm_file_kind", b"")
        if (kind.decode() if isinstance(kind, bytes) else str(kind)) != "samples":
            print(f"plot_run: skipping '{samples_path}': not an rbm samples file", file=sys.stderr)
            return None, None
        mean_field = read_dataset(f, samples_path, "mean_field")   # [n_samples, n_chains, n_visible]
        hint = (int(f.attrs.get("image_height", 0)), int(f.attrs.get("image_width", 0)))
    n_samples, n_chains, n_visible = mean_field.shape
    shape = image_shape(n_visible, hint)
    name = os.path.splitext(os.path.basename(samples_path))[0]
    # rbm sample's files: one row per recorded sample; training's (one sample): 10 chains a row
    columns = n_chains if n_samples > 1 else min(n_chains, 10)
    grid = tile(mean_field.reshape(n_samples * n_chains, n_visible), shape, columns)
    what = f"{n_samples} samples (rows) x {n_chains} chains" if n_samples > 1 else f"{n_chains} chains"
    return save_grid(grid, f"{name}: {what}",
                     os.path.join(out_dir, f"samples-{name}.png")), hint


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", help="an rbm run directory (rbm train --out)")
    p.add_argument("--out", help="where the PNGs go (default RUN_DIR/plots)")
    p.add_argument("--checkpoint", help="checkpoint to draw filters and chains from (default: the newest)")
    p.add_argument("--samples", nargs="*", help="samples files (default RUN_DIR/samples/*.h5)")
    p.add_argument("--filters", type=int, default=100, help="how many filters to draw (default 100)")
    a = p.parse_args()
    if a.filters < 1:
        p.error(f"--filters must be at least 1, got {a.filters}")

    if not os.path.isdir(a.run_dir):
        sys.exit(f"plot_run: '{a.run_dir}' is not a directory")
    out_dir = a.out or os.path.join(a.run_dir, "plots")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        sys.exit(f"plot_run: --out '{out_dir}' exists and is not a directory")
    os.makedirs(out_dir, exist_ok=True)
    run_name = os.path.basename(os.path.normpath(a.run_dir))
    written = []
    try:
        metrics = os.path.join(a.run_dir, "metrics.h5")
        if os.path.exists(metrics):
            written.append(plot_metrics(metrics, out_dir, run_name))
        else:
            print(f"plot_run: no {metrics}; no learning curves", file=sys.stderr)

        samples = a.samples if a.samples is not None else sorted(
            glob.glob(os.path.join(a.run_dir, "samples", "*.h5")))
        hint = None
        for s in samples:
            path, shape_hint = plot_samples(s, out_dir)
            if path:
                written.append(path)
                hint = shape_hint

        ckpt = a.checkpoint or newest_checkpoint(a.run_dir)
        if ckpt:
            written += plot_checkpoint(ckpt, out_dir, a.filters, hint)
        else:
            print(f"plot_run: no checkpoint in {a.run_dir}/checkpoints; no filters", file=sys.stderr)
    except (OSError, KeyError) as e:
        sys.exit(f"plot_run: {e.args[0] if e.args else e}")

    written = [w for w in written if w]
    if not written:
        sys.exit(f"plot_run: nothing to plot in '{a.run_dir}'")
    for w in written:
        print(w)


if __name__ == "__main__":
    main()
