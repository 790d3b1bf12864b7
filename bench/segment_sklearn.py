"""scikit-learn baseline for `npm run bench:segment`: KMeans(n_clusters=k, n_init=1) on the
float64 row-major matrix that bench/segment.ts wrote. Prints one JSON line."""
import json
import sys
import time

import numpy as np
from sklearn.cluster import KMeans


def main() -> None:
    path, rows, dim, k, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    x = np.fromfile(path, dtype="<f8")
    if x.size != rows * dim:
        raise SystemExit(f"{path}: expected {rows * dim} float64 values, found {x.size}")
    x = x.reshape(rows, dim)
    model = KMeans(n_clusters=k, n_init=1, random_state=seed)
    t0 = time.perf_counter()
    model.fit(x)
    fit_s = time.perf_counter() - t0
    # Inertia over all rows with the fitted centres, computed the same way on both sides.
    d = ((x[:, None, :] - model.cluster_centers_[None, :, :]) ** 2).sum(axis=2) if rows <= 200_000 else None
    if d is None:
        best = np.full(rows, np.inf)
        for c in model.cluster_centers_:
            best = np.minimum(best, ((x - c) ** 2).sum(axis=1))
        inertia = float(best.sum())
    else:
        inertia = float(d.min(axis=1).sum())
    print(json.dumps({"fit_s": fit_s, "inertia": inertia, "sklearn_inertia": float(model.inertia_), "iterations": int(model.n_iter_)}))


if __name__ == "__main__":
    main()
