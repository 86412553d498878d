"""Reading rbm's HDF5 files from the Python tools (plot_run.py, compare_runs.py): a file
still being written by rbm train opens as a SWMR reader, and a missing dataset is an error
that names the file."""
import h5py


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
