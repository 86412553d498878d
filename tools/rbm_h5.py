"""Reading rbm's run directories and HDF5 files from the Python tools (plot_run.py,
compare_runs.py): a file still being written by rbm train opens as a SWMR reader, a missing
dataset is an error that names the file, and both tools find checkpoints and end-of-epoch
metrics rows alike."""
import glob
import os

import h5py
import numpy as np


def open_h5(path):
    """Opens read-only; SWMR first, so a file still being written by rbm is readable."""
    try:
        return h5py.File(path, "r", swmr=True)
    except OSError:
        try:
            return h5py.File(path, "r")
        except OSError as e:
            raise OSError(f"cannot open '{path}': {e}") from None


def read_dataset(f, path, name):
    """f[name][:], or an error naming the file and what it lacks."""
    if name not in f:
        raise KeyError(f"'{path}' has no dataset '{name}' (is it an rbm file of that kind?)")
    return f[name][:]


def checkpoints(run_dir):
    """RUN_DIR's checkpoints, oldest first (their names sort by step)."""
    return sorted(glob.glob(os.path.join(run_dir, "checkpoints", "step-*.h5")))


def epoch_end_rows(metrics):
    """Which rows of a metrics table end an epoch: their epoch is exactly a whole number
    (epoch + 0 / steps), which a mid-epoch row's never is. (np.isclose is not enough: at
    3,000 steps an epoch it takes epoch 100.001 for 100.)"""
    epoch = metrics["epoch"]
    return (epoch == np.round(epoch)) & (epoch > 0)
