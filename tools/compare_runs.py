#!/usr/bin/python3
"""Compares rbm run directories side by side, such as the tasks of a sweep.

    tools/compare_runs.py RUN_DIR... [--sort pl|ll|recon|gap|name] [--csv] [--plot FILE]

Prints one row per run: the `rbm train` settings that differ between the runs (read from
each RUN/config.ini, else from the newest checkpoint's stored configuration; where and how
often a run writes, and how many threads or which device it used, are left out: they do
not change the model), the rank count where runs differ in it, how far the run got (its
status: training while a process holds RUN/.rbm-lock; finished when the last metrics row
reaches the configured epochs; stopped; not started, with no metrics row or checkpoint
yet; unreadable metrics), its step and how many processes (the first and each resume)
trained it, and its newest end-of-epoch metrics: the pseudo-likelihood cost (higher is
better), the reconstruction cross-entropy, the free-energy gap (validation - training;
rising: over-fitting), and the median examples/s of its end-of-epoch rows.
Where RUN/eval.json holds `rbm eval --json`'s output for one of
the run's checkpoints (tools/quality_row.sh writes it), the row also gives the mean test
log-likelihood it measured (nats; ! when rbm eval warned) and the step it measured at.
A directory holding run directories, such as a sweep's runs/NAME-JOBID
(jobs/rbm_sweep.sbatch), stands for them. --csv prints the table as CSV; --plot draws every
run's pseudo-likelihood and reconstruction curves (end-of-epoch rows) into one PNG.

Runs with Debian's python3-h5py, python3-numpy and python3-matplotlib (/usr/bin/python3),
without a display. Reads metrics.h5 as a SWMR reader, so runs still training compare too.
"""
import argparse
import csv
import fcntl
import json
import math
import os
import re
import struct
import sys

import numpy as np

from rbm_h5 import checkpoints, epoch_end_rows, open_h5, read_dataset  # tools/rbm_h5.py, beside this script

# Settings that say where and how often a run writes or what it ran on, not what it
# trains: they differ between any two runs (out) or change nothing being compared.
# (epochs has a column of its own.)
NOT_COMPARED = {"out", "progress-every", "threads", "device", "comm", "checkpoint-every",
                "keep-checkpoints", "sample-every", "filters", "monitor-every", "max-hours", "epochs"}

# --sort: the metric's column and whether higher is better.
SORTS = {"pl": ("pseudo_likelihood", True), "ll": ("log_likelihood", True), "recon": ("reconstruction_xent", False),
         "gap": ("free_energy_gap", False)}


def natural_key(text):
    """'10' after '9': a sweep's task directories are numbers."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def is_run(path):
    """What rbm train leaves in a run directory from its first moments (.rbm-lock) on."""
    return any(os.path.exists(os.path.join(path, name))
               for name in (".rbm-lock", "config.ini", "metrics.h5", "checkpoints"))


def expand(paths):
    """The run directories the arguments name: each a run, or a directory of runs."""
    runs = []
    for p in paths:
        if not os.path.isdir(p):
            raise SystemExit(f"compare_runs: '{p}' is not a directory")
        if is_run(p):
            runs.append(p)
            continue
        inside = sorted((d for d in os.listdir(p) if is_run(os.path.join(p, d))), key=natural_key)
        if not inside:
            raise SystemExit(f"compare_runs: '{p}' is not an rbm run directory (no .rbm-lock, config.ini, "
                             "metrics.h5 or checkpoints/) and holds none")
        runs += [os.path.join(p, d) for d in inside]
    return runs


def parse_ini(text):
    """rbm's configuration text as an ordered dict of key -> value text."""
    config = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "=" in line:
            key, value = line.split("=", 1)
            config[key.strip()] = value.strip()
    return config


def read_config(run):
    """RUN/config.ini, or where it is missing the newest checkpoint's stored configuration
    (/config, attribute ini); {} when there is neither."""
    path = os.path.join(run, "config.ini")
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            return parse_ini(f.read())
    for ckpt in reversed(checkpoints(run)):
        try:
            with open_h5(ckpt) as f:
                ini = f["config"].attrs["ini"]
            return parse_ini(ini.decode() if isinstance(ini, bytes) else str(ini))
        except (OSError, KeyError):
            continue
    return {}


def lock_holder(run):
    """Who holds RUN/.rbm-lock (rbm train's fcntl lock) now, or None. F_GETLK only asks:
    taking the lock, even for a moment, could make an rbm train starting then refuse."""
    path = os.path.join(run, ".rbm-lock")
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        layout = "hhqqi4x"   # struct flock on Linux x86-64 and arm64
        probe = struct.pack(layout, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        if struct.unpack(layout, fcntl.fcntl(fd, fcntl.F_GETLK, probe))[0] == fcntl.F_UNLCK:
            return None
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().strip() or "another process"
    except OSError:
        return None
    finally:
        os.close(fd)


def read_eval(run):
    """What RUN/eval.json (rbm eval --json) measured: its log-likelihood, method, step and
    whether it warned; NaN and None where there is no such file."""
    found = {"log_likelihood": math.nan, "eval_method": None, "eval_step": None, "eval_warnings": None}
    path = os.path.join(run, "eval.json")
    if not os.path.isfile(path):
        return found
    try:
        with open(path, encoding="utf-8") as f:
            j = json.load(f)
        ll = j["mean_log_likelihood"]
        found.update(log_likelihood=math.nan if ll is None else float(ll), eval_method=j["method"],
                     eval_step=int(j["checkpoint_step"]), eval_warnings=len(j.get("warnings", [])))
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"compare_runs: '{path}' is not rbm eval --json's output ({e}); its log-likelihood is left out",
              file=sys.stderr)
    return found


def read_metrics(metrics, row):
    """Fills `row` from metrics.h5: how far the run got, its newest end-of-epoch row (an end
    row's epoch is an exact whole number; a mid-epoch row's never is), the median rate."""
    try:
        with open_h5(metrics) as f:
            m = read_dataset(f, metrics, "metrics")
    except (OSError, KeyError) as e:
        print(f"compare_runs: {e.args[0] if e.args else e}", file=sys.stderr)
        row["status"] = "unreadable metrics"
        return
    if not len(m):
        return
    epoch = m["epoch"]
    ends = np.flatnonzero(epoch_end_rows(m))
    row["epochs_done"] = float(epoch[-1])
    row["step"] = int(m["step"][-1])
    for column in ("process", "ranks"):   # columns rbm added later: NaN in older rows
        if column in m.dtype.names and np.isfinite(m[column][-1]):
            row["processes" if column == "process" else column] = int(m[column][-1])
    if len(ends):
        last = m[ends[-1]]
        for field in ("pseudo_likelihood", "reconstruction_xent", "free_energy_gap"):
            row[field] = float(last[field])
        rates = m["examples_per_s"][ends]
        rates = rates[np.isfinite(rates) & (rates > 0)]
        row["examples_per_s"] = float(np.median(rates)) if len(rates) else math.nan
        row["curve"] = (epoch[ends], m["pseudo_likelihood"][ends], m["reconstruction_xent"][ends])


def summarise(run, name, config):
    """One table row: the run's status and its newest end-of-epoch metrics."""
    row = {"run": name, "path": run, "status": "not started", "epochs_done": math.nan,
           "step": None, "processes": None, "ranks": None, "pseudo_likelihood": math.nan,
           "reconstruction_xent": math.nan, "free_energy_gap": math.nan, "examples_per_s": math.nan,
           "curve": None}
    row.update(read_eval(run))
    metrics = os.path.join(run, "metrics.h5")
    if os.path.isfile(metrics):
        read_metrics(metrics, row)
    # A checkpoint past the last metrics row (a stop mid-epoch): the step the run stands at.
    newest = checkpoints(run)
    if newest:
        step = int(re.search(r"step-(\d+)\.h5$", newest[-1]).group(1))
        row["step"] = max(step, row["step"] or 0)
    if row["status"] == "not started" and (math.isfinite(row["epochs_done"]) or newest):
        epochs = float(config.get("epochs", "nan"))
        row["status"] = "finished" if row["epochs_done"] >= epochs else "stopped"
    holder = lock_holder(run)
    if holder:
        row["status"] = "training"
        print(f"compare_runs: {name}: in use by {holder}", file=sys.stderr)
    return row


def differing_keys(configs):
    """The settings whose values differ between the runs whose configuration has them, in
    config.ini's order (a key an older rbm did not write is not a difference)."""
    keys = []
    for c in configs:
        keys += [k for k in c if k not in keys]
    return [k for k in keys if k not in NOT_COMPARED and len({c[k] for c in configs if k in c}) > 1]


def run_names(runs):
    """Each run's path below the runs' common directory (its own name when alone)."""
    full = [os.path.abspath(r) for r in runs]
    if len(full) == 1:
        return [os.path.basename(full[0])]
    common = os.path.commonpath(full)
    return [os.path.relpath(r, common) if r != common else os.path.basename(r) for r in full]


def text(value, decimals=3):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{decimals}f}" if isinstance(value, float) else str(value)


def log_likelihood_text(r):
    if r["eval_method"] is None:
        return "-"
    return f"{text(r['log_likelihood'], 2)} ({r['eval_method']}{', !' if r['eval_warnings'] else ''})"


def epochs_text(r, c):
    done = text(r["epochs_done"], 3)
    return f"{done.rstrip('0').rstrip('.') if '.' in done else done}/{c.get('epochs', '-')}"


def columns(keys, rows):
    """(header, cell of a row and its config) for each column of the table; the rank count
    only where runs differ in it, the eval columns only where some run was evaluated."""
    cols = [("run", lambda r, c: r["run"])]
    cols += [(k, lambda r, c, k=k: c.get(k, "-")) for k in keys]
    if len({r["ranks"] for r in rows if r["ranks"] is not None}) > 1:
        cols.append(("ranks", lambda r, c: text(r["ranks"])))
    cols += [
        ("status", lambda r, c: r["status"]),
        ("epochs", epochs_text),
        ("step", lambda r, c: text(r["step"])),
        ("processes", lambda r, c: text(r["processes"])),
        ("PL cost", lambda r, c: text(r["pseudo_likelihood"])),
        ("recon xent", lambda r, c: text(r["reconstruction_xent"])),
        ("FE gap", lambda r, c: text(r["free_energy_gap"])),
        ("ex/s", lambda r, c: text(r["examples_per_s"], 0)),
    ]
    if any(r["eval_method"] for r in rows):
        cols += [("test log-lik", lambda r, c: log_likelihood_text(r)),
                 ("at step", lambda r, c: text(r["eval_step"]))]
    return cols


def print_table(rows, configs, keys):
    cols = columns(keys, rows)
    left = 1 + len(keys) + (cols[1 + len(keys)][0] == "ranks") + 1   # run, settings, ranks, status
    cells = [[h for h, _ in cols]] + [[cell(r, c) for _, cell in cols] for r, c in zip(rows, configs)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(cols))]
    for line in cells:
        print("  ".join(v.ljust(w) if i < left else v.rjust(w)
                        for i, (v, w) in enumerate(zip(line, widths))).rstrip())


def print_csv(rows, configs, keys):
    out = csv.writer(sys.stdout)
    numbers = ["epochs_done", "step", "processes", "ranks", "pseudo_likelihood", "reconstruction_xent",
               "free_energy_gap", "examples_per_s", "log_likelihood", "eval_method", "eval_step", "eval_warnings"]
    out.writerow(["run", "path"] + keys + ["status", "epochs"] + numbers)
    for r, c in zip(rows, configs):
        out.writerow([r["run"], os.path.abspath(r["path"])] + [c.get(k, "") for k in keys] +
                     [r["status"], c.get("epochs", "")] + ["" if r[n] is None else r[n] for n in numbers])


def plot(rows, configs, keys, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(13, 5), constrained_layout=True)
    drawn = 0
    for r, c in zip(rows, configs):
        if r["curve"] is None:
            continue
        label = r["run"] + (": " + ", ".join(f"{k}={c.get(k, '-')}" for k in keys) if keys else "")
        epoch, pl, recon = r["curve"]
        line, = axes[0].plot(epoch, pl, "o-", ms=3, lw=0.9, label=label)
        axes[1].plot(epoch, recon, "o-", ms=3, lw=0.9, color=line.get_color())
        drawn += 1
    if not drawn:
        raise SystemExit("compare_runs: no run has an end-of-epoch metrics row yet: nothing to plot")
    for ax, title in zip(axes, ("pseudo-likelihood cost (higher is better)", "reconstruction cross-entropy")):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{drawn} runs" + (f"; settings that differ: {', '.join(keys)}" if keys else ""))
    try:
        fig.savefig(path, dpi=100)
    except OSError as e:
        raise SystemExit(f"compare_runs: cannot write --plot '{path}': {e.strerror or e}")
    plt.close(fig)
    print(f"compare_runs: wrote {path}", file=sys.stderr)


def sorted_rows(rows, configs, sort):
    pairs = list(zip(rows, configs))
    if sort == "name":
        pairs.sort(key=lambda p: natural_key(p[0]["run"]))
    else:
        field, higher_better = SORTS[sort]
        # runs without the metric last, in name order
        pairs.sort(key=lambda p: (not math.isfinite(p[0][field]),
                                  (-p[0][field] if higher_better else p[0][field]) if math.isfinite(p[0][field]) else 0,
                                  natural_key(p[0]["run"])))
    return [p[0] for p in pairs], [p[1] for p in pairs]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="rbm run directories (rbm train --out), or directories of them")
    p.add_argument("--sort", choices=["pl", "ll", "recon", "gap", "name"], default="pl",
                   help="order: pseudo-likelihood cost or eval.json's test log-likelihood (best first; "
                        "pl is the default), reconstruction cross-entropy or free-energy gap (lowest "
                        "first), or the runs' names")
    p.add_argument("--csv", action="store_true", help="print CSV (every number in full) instead of a table")
    p.add_argument("--plot", metavar="FILE", help="also draw the runs' learning curves into this PNG")
    a = p.parse_args()
    if a.plot and not os.path.isdir(os.path.dirname(os.path.abspath(a.plot))):
        raise SystemExit(f"compare_runs: cannot write --plot '{a.plot}': no directory "
                         f"'{os.path.dirname(os.path.abspath(a.plot))}'")

    runs = expand(a.runs)
    configs = [read_config(r) for r in runs]
    for r, c in zip(runs, configs):
        if not c:
            print(f"compare_runs: '{r}' has no config.ini nor a readable checkpoint: its settings show as '-'",
                  file=sys.stderr)
    keys = differing_keys(configs)
    rows = [summarise(r, n, c) for r, n, c in zip(runs, run_names(runs), configs)]
    rows, configs = sorted_rows(rows, configs, a.sort)
    if a.csv:
        print_csv(rows, configs, keys)
    else:
        print_table(rows, configs, keys)
    if a.plot:
        plot(rows, configs, keys, a.plot)


if __name__ == "__main__":
    main()
