"""scikit-learn baseline for `npm run bench:segment`: KMeans(n_clusters=k, n_init=1) on the
float64 row-major matrix that bench/segment.ts wrote, timed after one untimed warm-up fit on other
data. Prints one JSON line: fit time, the fitted centres (the benchmark recomputes both sides'
inertia itself, with the same code), numpy's inertia over all rows as a cross-check, and with
--reference the inertia of KMeans(n_init=10), untimed."""
import json
import sys
import time

import numpy as np
from sklearn.cluster import KMeans


def inertia(x: np.ndarray, centres: np.ndarray) -> float:
    best = np.full(x.shape[0], np.inf)
    for c in centres:
        best = np.minimum(best, ((x - c) ** 2).sum(axis=1))
    return float(best.sum())


def main() -> None:
    if len(sys.argv) not in (6, 7) or (len(sys.argv) == 7 and sys.argv[6] != "--reference"):
        raise SystemExit("usage: segment_sklearn.py <file.f64> <rows> <dim> <k> <seed> [--reference]")
    path, rows, dim, k, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    x = np.fromfile(path, dtype="<f8")
    if x.size != rows * dim:
        raise SystemExit(f"{path}: expected {rows * dim} float64 values, found {x.size}")
    x = x.reshape(rows, dim)
    # One untimed fit on other, small data first, as the segflow side warms up its JIT: neither
    # side's timer holds one-time start-up work (imports, thread pools, compilation).
    KMeans(n_clusters=k, n_init=1, random_state=seed).fit(np.random.default_rng(seed).random((max(2_000, k), dim)))
    model = KMeans(n_clusters=k, n_init=1, random_state=seed)
    t0 = time.perf_counter()
    model.fit(x)
    fit_s = time.perf_counter() - t0
    out = {
        "fit_s": fit_s,
        "inertia": inertia(x, model.cluster_centers_),
        "iterations": int(model.n_iter_),
        "centers": model.cluster_centers_.tolist(),
    }
    if len(sys.argv) == 7:
        out["reference_inertia"] = inertia(x, KMeans(n_clusters=k, n_init=10, random_state=seed).fit(x).cluster_centers_)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
