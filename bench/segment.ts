/**
 * npm run bench:segment — segflow's k-means job against scikit-learn's KMeans(n_init=1), side
 * by side on the same seeded data (Gaussian groups of unequal size and spread, plus uniform
 * noise rows) written once as a float64 file both sides read. segflow does what the nightly job
 * does: train on a sample, then assign every row, and its time includes both. Both inertias are
 * computed here by the same code from the centroids each side returned, so they compare.
 *
 * Each side makes an untimed warm-up fit first (V8 compiles on first use; Python starts anew per
 * fit), and fits the same data --repeat times; the ratio is between medians, because one busy
 * moment on a shared machine can double a short fit. There are more groups than k, so k-means
 * has several local optima and where an initialisation lands varies by seed: the bench runs
 * several seeds and reports the spread; --reference adds an untimed KMeans(n_init=10) to show
 * how good an inertia the data allows. An inertia below scikit-learn's meets the quality target.
 */
import { Command, InvalidArgumentError } from 'commander';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { PROJECT_ROOT } from '../core/config.js';
import { assignAll } from '../core/segmentation/assign.js';
import { DEMOGRAPHIC_FEATURES } from '../core/segmentation/features.js';
import { JOB_DEFAULTS, runSegmentationJob } from '../core/segmentation/job.js';
import { DEFAULT_TOP_CATEGORIES } from '../core/segmentation/prepare.js';
import { TRAIN_DEFAULTS } from '../core/segmentation/train.js';
import { createRng } from '../core/random.js';
import { benchPythonEnv, ensureBenchPython } from '../scripts/bench-python.js';
import { wholeNumber } from '../scripts/lib/cli.js';
import { printTable } from '../scripts/lib/table.js';

function positiveInts(what: string) {
  return (value: string): number[] => {
    const list = value.split(',').map((v) => Number(v.trim()));
    if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < 0)) {
      throw new InvalidArgumentError(`${what}: expected comma-separated non-negative integers, got ${JSON.stringify(value)}`);
    }
    return list;
  };
}

const program = new Command('bench:segment')
  .description('segflow sample-train + assign-all vs scikit-learn KMeans(n_clusters=8, n_init=1), same data, same run.')
  .option('--sizes <list>', 'row counts, comma-separated', positiveInts('--sizes'), [100_000, 1_000_000])
  .option('--seeds <list>', 'seeds of the data and of both sides; one run per seed and size', positiveInts('--seeds'), [42, 1, 2, 3, 4])
  .option('--dim <n>', 'behavioural (numeric) features', wholeNumber(1), 16)
  .option(
    '--no-demographics',
    'leave out the dimensions of the default demographic features (age, gender and country one-hot, income band)',
  )
  .option('--k <n>', 'clusters', wholeNumber(1), 8)
  .option('--sample <n>', 'segflow training sample size (default: 5% of the rows, 5,000 to 50,000)', wholeNumber(1))
  .option('--n-init <n>', 'segflow k-means++ restarts', wholeNumber(1), JOB_DEFAULTS.nInit)
  .option('--restart-rows <n>', 'rows of the sample the restarts run on (default: a tenth of the sample, 500 to 2,000)', wholeNumber(1))
  .option(
    '--single-thread',
    'run all of segflow on the calling thread (by default half the restarts and half the assignment pass go to a helper thread)',
  )
  .option('--repeat <n>', 'timed fits per side, size and seed; the ratio compares medians', wholeNumber(1), 3)
  .option('--reference', 'also fit KMeans(n_init=10), untimed, as a reference inertia for each dataset')
  .option(
    '--sklearn-threads <n>',
    'OpenMP threads for scikit-learn (default: its own choice, every core); segflow uses two at most (--single-thread: one)',
    wholeNumber(1),
  )
  .showHelpAfterError();
program.parse();
const opts = program.opts<{
  sizes: number[];
  seeds: number[];
  dim: number;
  demographics: boolean;
  k: number;
  sample?: number;
  nInit: number;
  restartRows?: number;
  repeat: number;
  reference?: boolean;
  singleThread?: boolean;
  sklearnThreads?: number;
}>();
const { k } = opts;

/**
 * The prepared dimensions of the default demographic features, laid out as prepare.ts lays them
 * out: one per numeric or ordinal feature, one per kept value plus `other` per categorical one.
 */
const DEMOGRAPHIC_DIMS = opts.demographics
  ? DEMOGRAPHIC_FEATURES.map((f) =>
      f.kind === 'categorical'
        ? { buckets: (f.categories?.length ?? f.top ?? DEFAULT_TOP_CATEGORIES) + 1, levels: 0, weight: f.weight * Math.SQRT1_2 }
        : { buckets: 0, levels: f.levels?.length ?? 0, weight: f.weight },
    )
  : [];
const behaviourDim = opts.dim;
const dim = behaviourDim + DEMOGRAPHIC_DIMS.reduce((s, d) => s + Math.max(d.buckets, 1), 0);

/** A group's demographics: a distribution over each categorical feature's buckets, a centre for the others. */
function groupDemographics(rng: ReturnType<typeof createRng>) {
  return DEMOGRAPHIC_DIMS.map((d) =>
    d.buckets > 0 ? Array.from({ length: d.buckets }, () => rng.next() ** 2) : [0.15 + 0.7 * rng.next()],
  );
}

/** Writes one row's demographic dimensions after its behavioural ones; `group` null: a noise row. */
function fillDemographics(m: Float64Array, base: number, rng: ReturnType<typeof createRng>, group: number[][] | null): void {
  let j = base + behaviourDim;
  DEMOGRAPHIC_DIMS.forEach((d, i) => {
    if (d.buckets > 0) {
      const w = group?.[i] ?? Array.from({ length: d.buckets }, () => 1);
      let u = rng.next() * w.reduce((a, b) => a + b, 0);
      let pick = w.findIndex((x) => (u -= x) < 0);
      if (pick < 0) pick = d.buckets - 1;
      for (let b = 0; b < d.buckets; b++) m[j + b] = b === pick ? d.weight : 0;
      j += d.buckets;
      return;
    }
    let x = Math.min(1, Math.max(0, group ? group[i]![0]! + 0.15 * rng.normal(0, 1) : rng.next()));
    if (d.levels > 1) x = Math.round(x * (d.levels - 1)) / (d.levels - 1);
    m[j] = x * d.weight;
    j += 1;
  });
}

/** Clustered rows plus uniform noise, row-major (demographic dimensions too, unless --no-demographics). */
function makeData(n: number, seed: number): Float64Array {
  const rng = createRng(seed);
  const groups = 12;
  const centres = Array.from({ length: groups }, () => Array.from({ length: behaviourDim }, () => 0.15 + 0.7 * rng.next()));
  const demographics = Array.from({ length: groups }, () => groupDemographics(rng));
  const spread = Array.from({ length: groups }, () => 0.03 + 0.07 * rng.next());
  const weights = Array.from({ length: groups }, () => 0.5 + rng.next());
  const total = weights.reduce((a, b) => a + b, 0);
  let acc = 0;
  const cumulative = weights.map((w) => (acc += w / total));
  const m = new Float64Array(n * dim);
  for (let r = 0; r < n; r++) {
    const base = r * dim;
    if (rng.next() < 0.05) {
      for (let j = 0; j < behaviourDim; j++) m[base + j] = rng.next();
      fillDemographics(m, base, rng, null);
      continue;
    }
    const u = rng.next();
    let g = cumulative.findIndex((c) => u < c);
    if (g < 0) g = groups - 1;
    for (let j = 0; j < behaviourDim; j++) m[base + j] = centres[g]![j]! + spread[g]! * rng.normal(0, 1);
    fillDemographics(m, base, rng, demographics[g]!);
  }
  return m;
}

interface SklearnResult {
  fit_s: number[];
  inertia: number;
  iterations: number;
  centers: number[][];
  reference_inertia?: number;
}

interface Run {
  n: number;
  seed: number;
  /** Median of the timed fits. */
  skS: number;
  skInertia: number;
  /** Median of the timed jobs. */
  segS: number;
  segInertia: number;
  refInertia?: number;
}

const pct = (x: number) => `${(Math.abs(x) * 100).toFixed(2)}%`;
const signedPct = (x: number) => `${x >= 0 ? '+' : '-'}${pct(x)}`;
/** segflow's inertia against scikit-learn's, in words: lower is better. */
function inertiaVerdict(seg: number, sk: number): string {
  const gap = (seg - sk) / sk;
  if (gap < -0.0005) return `segflow inertia ${pct(gap)} lower (better)`;
  if (gap > 0.0005) return `segflow inertia ${pct(gap)} higher (worse)`;
  return 'same inertia (within 0.05%)';
}
const meets = (r: Run) => r.segS <= r.skS && r.segInertia <= r.skInertia * 1.02;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

// patches/ml-kmeans+*.patch (applied by patch-package on npm install) speeds up ml-kmeans' k-means++
// with the same results; say so when it is missing, since times depend on it.
const kmeansPatched = readFileSync(new URL('./initialization.js', import.meta.resolve('ml-kmeans')), 'utf8').includes('segflow patch');

const python = ensureBenchPython();
const dir = path.join(PROJECT_ROOT, '.stack', 'bench-segment');
mkdirSync(dir, { recursive: true });

console.log(
  `bench:segment  k=${k}  dim=${dim} (${behaviourDim} behavioural${DEMOGRAPHIC_DIMS.length > 0 ? `, ${dim - behaviourDim} of the default demographic features` : ''})  segflow: sample ${opts.sample ?? `${JOB_DEFAULTS.sampleShare * 100}% of the rows (${JOB_DEFAULTS.minSample} to ${JOB_DEFAULTS.maxSample})`}, ` +
    `${opts.nInit} k-means++ restarts on ${opts.restartRows ?? `${JOB_DEFAULTS.restartShare * 100}% of the sample (${JOB_DEFAULTS.minRestartRows} to ${TRAIN_DEFAULTS.restartRows})`} ranked on up to ${TRAIN_DEFAULTS.rankRows} rows of the sample, ` +
    `Lloyd on the sample from the best, then one assignment pass over all rows (half on a helper thread)` +
    `; ml-kmeans k-means++ patch ${kmeansPatched ? 'applied' : 'NOT applied (run npm install)'}` +
    `; sklearn threads: ${opts.sklearnThreads ?? 'default'}  (${process.arch}, ${cpus().length} cores, node ${process.version}, load average ${load()})`,
);
// The warm-up: the same job on other data, big enough to take every path the timed runs take.
{
  const warmRows = 20_000;
  const t0 = performance.now();
  runSegmentationJob(makeData(warmRows, 0x5eed), warmRows, dim, { k, seed: 0x5eed, nInit: opts.nInit, parallel: !opts.singleThread });
  console.log(`segflow warm-up (untimed, other data, ${warmRows} rows): ${(performance.now() - t0).toFixed(0)} ms`);
}
console.log(
  `times: median of ${opts.repeat} timed fit${opts.repeat === 1 ? '' : 's'} per side on the same data (every time is listed as each run ends; the table follows)`,
);
const runs: Run[] = [];
for (const n of opts.sizes) {
  for (const seed of opts.seeds) {
    const data = makeData(n, seed);
    const file = path.join(dir, `data-${n}x${dim}-${seed}-${process.pid}.f64`);
    writeFileSync(file, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    const args = [path.join(PROJECT_ROOT, 'bench', 'segment_sklearn.py'), file, String(n), String(dim), String(k), String(seed)];
    const env = { ...benchPythonEnv(), ...(opts.sklearnThreads ? { OMP_NUM_THREADS: String(opts.sklearnThreads) } : {}) };
    args.push('--repeat', String(opts.repeat));
    if (opts.reference) args.push('--reference');
    const py = spawnSync(python, args, { env, encoding: 'utf8', maxBuffer: 1 << 24 });
    if (py.status !== 0) throw new Error(`scikit-learn side failed: ${py.stderr}`);
    const sk = JSON.parse(py.stdout.trim().split('\n').pop()!) as SklearnResult;

    // Read back what Python read, so both sides work on the very same doubles.
    const buf = readFileSync(file);
    rmSync(file, { force: true });
    // In shared memory, so the job can hand half the assignment pass to its helper thread (the copy is not timed).
    const matrix = new Float64Array(new SharedArrayBuffer(buf.byteLength));
    matrix.set(new Float64Array(buf.buffer, buf.byteOffset, buf.byteLength / 8));
    const segTimes: number[] = [];
    let job: ReturnType<typeof runSegmentationJob> | undefined;
    for (let i = 0; i < opts.repeat; i++) {
      const t0 = performance.now();
      const again = runSegmentationJob(matrix, n, dim, {
        k,
        seed,
        nInit: opts.nInit,
        parallel: !opts.singleThread,
        ...(opts.sample !== undefined ? { sampleSize: opts.sample } : {}),
        ...(opts.restartRows !== undefined ? { restartRows: opts.restartRows } : {}),
      });
      segTimes.push((performance.now() - t0) / 1000);
      if (job && again.inertia !== job.inertia)
        throw new Error(
          `segflow gave inertia ${again.inertia} on repeat ${i + 1}, ${job.inertia} before: the same seed must give the same model`,
        );
      job ??= again;
    }
    if (!job) throw new Error('no segflow run');
    const segS = median(segTimes);
    const skS = median(sk.fit_s);
    // Both inertias by the same code over all rows.
    const skInertia = assignAll(matrix, n, dim, sk.centers).inertia;
    const segInertia = assignAll(matrix, n, dim, job.centroids).inertia;
    if (Math.abs(skInertia - sk.inertia) > 1e-9 * sk.inertia || Math.abs(segInertia - job.inertia) > 1e-9 * segInertia) {
      throw new Error(`inertia cross-check failed: numpy ${sk.inertia} vs ${skInertia}, job ${job.inertia} vs ${segInertia}`);
    }
    const run: Run = {
      n,
      seed,
      skS,
      skInertia,
      segS,
      segInertia,
      ...(sk.reference_inertia !== undefined ? { refInertia: sk.reference_inertia } : {}),
    };
    runs.push(run);
    console.log(
      `rows ${n}, seed ${seed}: segflow (first of the timed runs): sample of ${job.sampleSize} rows ${job.timingsMs.sample.toFixed(1)} ms, train ${job.timingsMs.train.toFixed(1)} ms ` +
        `(restarts on ${job.restartRows} rows, ${job.restartsOnHelper} of them on the helper thread, their inertias on ${job.rankRows} rows of the sample ${job.restartInertias.map((x) => x.toFixed(1)).join(', ')}), assign ${job.timingsMs.assign.toFixed(1)} ms (${job.rowsAssignedOnHelper} rows on the helper thread); ` +
        `sklearn: ${sk.iterations} iterations; times (s) sklearn ${sk.fit_s.map((t) => t.toFixed(3)).join(' ')}, segflow ${segTimes.map((t) => t.toFixed(3)).join(' ')}`,
    );
  }
}

console.log('');
printTable(
  [
    'rows',
    'seed',
    'sklearn fit s',
    'segflow s',
    'time ratio',
    'sklearn inertia',
    'segflow inertia',
    'quality',
    ...(opts.reference ? ['sklearn n_init=10 (untimed reference)'] : []),
  ],
  runs.map((r) => {
    const ref = r.refInertia;
    return [
      r.n,
      r.seed,
      r.skS.toFixed(3),
      r.segS.toFixed(3),
      `${(r.segS / r.skS).toFixed(2)}x`,
      r.skInertia.toFixed(1),
      r.segInertia.toFixed(1),
      inertiaVerdict(r.segInertia, r.skInertia),
      ...(ref !== undefined
        ? [`${ref.toFixed(1)} (sklearn ${signedPct((r.skInertia - ref) / ref)}, segflow ${signedPct((r.segInertia - ref) / ref)})`]
        : []),
    ];
  }),
  { align: ['left', 'right', 'right', 'right', 'right', 'right', 'right'] },
);
console.log(`\nsummary (load average now ${load()}; the machine is shared, so times are noisy)`);
const range = (xs: number[], f: (x: number) => string) => `${f(median(xs))} (${f(Math.min(...xs))} to ${f(Math.max(...xs))})`;
printTable(
  ['rows', 'time ratio: median (min to max)', 'segflow inertia vs sklearn: median (min to max)', 'target met'],
  opts.sizes.map((n) => {
    const rs = runs.filter((r) => r.n === n);
    return [
      n,
      range(
        rs.map((r) => r.segS / r.skS),
        (x) => `${x.toFixed(2)}x`,
      ),
      range(
        rs.map((r) => (r.segInertia - r.skInertia) / r.skInertia),
        signedPct,
      ),
      `${rs.filter(meets).length}/${rs.length} runs`,
    ];
  }),
);
console.log(
  'target per run: segflow time <= 1.0x sklearn, and segflow inertia at most 2% above sklearn (lower is better and counts as met)',
);
