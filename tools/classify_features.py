#!/usr/bin/python3
"""How good an RBM's hidden units are as features: a logistic regression trained on
`rbm transform`'s features of the training set, scored on those of the test set, beside
the same classifier on the raw pixels (the baseline the features must beat).

    tools/classify_features.py TRAIN_FEATURES.h5 TEST_FEATURES.h5 [--C 1.0] [--max-iter 200] [--no-baseline] [--json]

Both files must hold /labels (rbm transform --labels) and come from one checkpoint read
the same way. The pixel baseline reads the data the features were made from (their
data_file attribute: an IDX file, or an HDF5 dataset FILE.h5:/path); without it it says why
it is skipped. Prints test accuracy (and with --json one JSON object).

Runs with Debian's python3-h5py, python3-numpy and python3-sklearn (/usr/bin/python3).
"""
import argparse
import gzip
import json
import sys
import time
import warnings
import zlib

import h5py
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler


def load_features(path):
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        sys.exit(f"classify_features.py: error: cannot open {path}: {e}")
    with f:
        kind = f.attrs.get("rbm_file_kind", b"")
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind != "features":
            sys.exit(f"classify_features.py: error: {path} is not an rbm features file (rbm transform writes them)")
        if "labels" not in f:
            sys.exit(f"classify_features.py: error: {path} has no /labels (run rbm transform with --labels)")
        made = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        return f["features"][:], f["labels"][:], made


def check_same_model(train, test, made_train, made_test):
    """Train and test features must come from one checkpoint, read the same way."""
    for key in ("checkpoint", "binarize"):
        if made_train.get(key) != made_test.get(key):
            sys.exit(f"classify_features.py: error: {train} and {test} differ in {key} "
                     f"({made_train.get(key)} against {made_test.get(key)}): transform both with one checkpoint and --binarize")


def read_hdf5_rows(spec, n):
    """The first n rows of a dataset named FILE.h5:/path, as rbm reads it (uint8 as x/255,
    floats as they are; an image dataset [n, h, w] flattened), or the reason there are none."""
    path, name = spec[:spec.rindex(":/")], spec[spec.rindex(":/") + 1:]
    try:
        with h5py.File(path, "r") as f:
            rows = f[name][:n]
    except (OSError, KeyError) as e:
        return f"cannot read {spec}: {e}"
    if len(rows) != n:
        return f"{spec} holds fewer than {n} rows"
    rows = rows.reshape(n, -1)
    return rows.astype(np.float32) / 255.0 if rows.dtype == np.uint8 else rows.astype(np.float32)


def read_idx_images(path, n):
    """The first n images of an IDX file (raw or .gz; 3-D or 2-D) as x/255, or of an HDF5
    dataset FILE.h5:/path, or the reason there are none."""
    if ":/" in path:
        return read_hdf5_rows(path, n)
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            magic = f.read(4)
            if magic not in (b"\x00\x00\x08\x03", b"\x00\x00\x08\x02"):
                return f"{path} is not an IDX image file (an HDF5 dataset?)"
            dims = [int.from_bytes(f.read(4), "big") for _ in range(magic[3])]
            width = int(np.prod(dims[1:]))
            pixels = np.frombuffer(f.read(n * width), dtype=np.uint8)
    except (OSError, EOFError, zlib.error) as e:
        return f"cannot read {path}: {e}"
    if pixels.size != n * width:
        return f"{path} holds fewer than {n} images"
    return pixels.reshape(n, width).astype(np.float32) / 255.0


def accuracy(train_x, train_y, test_x, test_y, c, max_iter):
    """Test accuracy, fit seconds and whether L-BFGS converged within max_iter."""
    scaler = StandardScaler().fit(train_x)
    model = LogisticRegression(C=c, max_iter=max_iter)
    start = time.perf_counter()
    if len(np.unique(train_y)) < 2:
        sys.exit("classify_features.py: error: the training features' labels hold one class: nothing to classify")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(scaler.transform(train_x), train_y)
    seconds = time.perf_counter() - start
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return float((model.predict(scaler.transform(test_x)) == test_y).mean()), seconds, converged


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("train")
    p.add_argument("test")
    p.add_argument("--C", type=float, default=1.0, help="inverse regularisation strength (default 1.0)")
    p.add_argument("--max-iter", type=int, default=200, help="L-BFGS iterations (default 200)")
    p.add_argument("--no-baseline", action="store_true", help="skip the raw-pixel classifier")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    a = p.parse_args()

    train_x, train_y, made_train = load_features(a.train)
    test_x, test_y, made_test = load_features(a.test)
    if train_x.shape[1] != test_x.shape[1]:
        sys.exit(f"classify_features.py: error: {a.train} has {train_x.shape[1]} features, {a.test} {test_x.shape[1]}")
    check_same_model(a.train, a.test, made_train, made_test)
    result = {"train_examples": len(train_y), "test_examples": len(test_y), "features": train_x.shape[1]}
    result["rbm_accuracy"], result["rbm_fit_s"], result["rbm_converged"] = accuracy(train_x, train_y, test_x, test_y, a.C, a.max_iter)
    if not a.no_baseline:
        px_train = read_idx_images(made_train.get("data_file", ""), len(train_y))
        px_test = read_idx_images(made_test.get("data_file", ""), len(test_y))
        why_not = [p for p in (px_train, px_test) if isinstance(p, str)]
        if why_not:
            result["no_baseline"] = "; ".join(why_not)
        else:
            result["pixel_accuracy"], result["pixel_fit_s"], result["pixel_converged"] = accuracy(px_train, train_y, px_test, test_y, a.C, a.max_iter)
    if a.json:
        print(json.dumps(result))
        return
    print(f"logistic regression, {result['train_examples']} training and {result['test_examples']} test examples")
    unfinished = f" (L-BFGS stopped at --max-iter {a.max_iter} before converging)"
    print(f"  on the RBM's {result['features']} features: test accuracy {100 * result['rbm_accuracy']:.2f}%"
          + ("" if result["rbm_converged"] else unfinished))
    if "pixel_accuracy" in result:
        print(f"  on the raw pixels:            test accuracy {100 * result['pixel_accuracy']:.2f}%"
              + ("" if result["pixel_converged"] else unfinished))
    elif not a.no_baseline:
        print(f"  (no pixel baseline: {result['no_baseline']})")


if __name__ == "__main__":
    main()
