"""scikit-learn baseline for `npm run bench:segment`: KMeans(n_clusters=k, n_init=1) on the
float64 row-major matrix that bench/segment.ts wrote, timed after one untimed warm-up fit on other
data. With --repeat N it fits N times in a row (same random_state, so the same model each time) and
reports every fit time; the benchmark compares medians. Prints one JSON line: the fit times, the
fitted centres (the benchmark recomputes both sides' inertia itself, with the same code), numpy's
inertia over all rows as a cross-check, and with --reference the inertia of KMeans(n_init=10),
untimed."""
import argparse
import json
import time

import numpy as np
from sklearn.cluster import KMeans


def inertia(x: np.ndarray, centres: np.ndarray) -> float:
    best = np.full(x.shape[0], np.inf)
    for c in centres:
        best = np.minimum(best, ((x - c) ** 2).sum(axis=1))
    return float(best.sum())


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description="scikit-learn KMeans(n_init=1) side of npm run bench:segment")
    parser.add_argument("file", help="float64 little-endian row-major matrix")
    parser.add_argument("rows", type=positive)
    parser.add_argument("dim", type=positive)
    parser.add_argument("k", type=positive)
    parser.add_argument("seed", type=int)
    parser.add_argument("--repeat", type=positive, default=1, help="timed fits in a row (default 1)")
    parser.add_argument("--reference", action="store_true", help="also fit KMeans(n_init=10), untimed")
    args = parser.parse_args()
    x = np.fromfile(args.file, dtype="<f8")
    if x.size != args.rows * args.dim:
        raise SystemExit(f"{args.file}: expected {args.rows * args.dim} float64 values, found {x.size}")
    x = x.reshape(args.rows, args.dim)
    k, seed = args.k, args.seed
    # One untimed fit on other, small data first, as the segflow side warms up its JIT: neither
    # side's timer holds one-time start-up work (imports, thread pools, compilation).
    KMeans(n_clusters=k, n_init=1, random_state=seed).fit(np.random.default_rng(seed).random((max(2_000, k), args.dim)))
    fit_times = []
    for _ in range(args.repeat):
        model = KMeans(n_clusters=k, n_init=1, random_state=seed)
        t0 = time.perf_counter()
        model.fit(x)
        fit_times.append(time.perf_counter() - t0)
    out = {
        "fit_s": fit_times,
        "inertia": inertia(x, model.cluster_centers_),
        "iterations": int(model.n_iter_),
        "centers": model.cluster_centers_.tolist(),
    }
    if args.reference:
        out["reference_inertia"] = inertia(x, KMeans(n_clusters=k, n_init=10, random_state=seed).fit(x).cluster_centers_)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
