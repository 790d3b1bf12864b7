/**
 * npm run bench:segment — segflow's k-means job against scikit-learn's KMeans, side by side
 * on the same data in the same run.
 *
 * One seeded dataset per size (clustered structure plus noise: 12 Gaussian groups of unequal
 * size and spread in [0,1]^16, plus 5% uniform noise rows) is written as a float64 file that
 * both sides read. scikit-learn: KMeans(n_clusters=8, n_init=1) fit on every row. segflow: what
 * the nightly job does -- train on a uniform sample (ml-kmeans, k-means++), then assign every
 * row (with the job's Lloyd refinement passes over all rows). Inertia is computed over all rows
 * for both. segflow's time includes drawing the sample; neither side counts reading the file.
 */
import { Command } from 'commander';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../core/config.js';
import { JOB_DEFAULTS, runSegmentationJob } from '../core/segmentation/job.js';
import { createRng } from '../core/segmentation/random.js';
import { benchPythonEnv, ensureBenchPython } from '../scripts/bench-python.js';

const program = new Command('bench:segment')
  .description('segflow sample-train + assign-all vs scikit-learn KMeans(n_clusters=8, n_init=1), same data, same run.')
  .option('--sizes <list>', 'row counts, comma-separated', '100000,1000000')
  .option('--dim <n>', 'features', '16')
  .option('--k <n>', 'clusters', '8')
  .option('--seed <n>', 'seed of the data and of both sides', '42')
  .option('--sample <n>', 'segflow training sample size', String(JOB_DEFAULTS.sampleSize))
  .showHelpAfterError();
program.parse();
const opts = program.opts<{ sizes: string; dim: string; k: string; seed: string; sample: string }>();
const sizes = opts.sizes.split(',').map(Number);
const dim = Number(opts.dim);
const k = Number(opts.k);
const seed = Number(opts.seed);
const sampleSize = Number(opts.sample);

function gaussian(rng: () => number): number {
  const u = 1 - rng();
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Clustered rows plus uniform noise, row-major. */
function makeData(n: number): Float64Array {
  const rng = createRng(seed);
  const groups = 12;
  const centres = Array.from({ length: groups }, () => Array.from({ length: dim }, () => 0.15 + 0.7 * rng()));
  const spread = Array.from({ length: groups }, () => 0.03 + 0.07 * rng());
  const weights = Array.from({ length: groups }, () => 0.5 + rng());
  const total = weights.reduce((a, b) => a + b, 0);
  const cumulative = weights.map(
    (
      (s) => (w: number) =>
        (s += w / total)
    )(0),
  );
  const m = new Float64Array(n * dim);
  for (let r = 0; r < n; r++) {
    const base = r * dim;
    if (rng() < 0.05) {
      for (let j = 0; j < dim; j++) m[base + j] = rng();
      continue;
    }
    const u = rng();
    let g = cumulative.findIndex((c) => u < c);
    if (g < 0) g = groups - 1;
    for (let j = 0; j < dim; j++) m[base + j] = centres[g]![j]! + spread[g]! * gaussian(rng);
  }
  return m;
}

const python = ensureBenchPython();
const dir = path.join(PROJECT_ROOT, '.stack', 'bench-segment');
mkdirSync(dir, { recursive: true });

console.log(`bench:segment  k=${k}  dim=${dim}  segflow sample=${sampleSize} n_init=${JOB_DEFAULTS.nInit} refine passes<=${JOB_DEFAULTS.refinePasses}  (${process.arch}, node ${process.version})`);
console.log('rows       | sklearn fit s | sklearn inertia | segflow s | segflow inertia | time ratio | inertia vs sklearn');
for (const n of sizes) {
  const data = makeData(n);
  const file = path.join(dir, `data-${n}x${dim}-${seed}.f64`);
  writeFileSync(file, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  const py = spawnSync(python, [path.join(PROJECT_ROOT, 'bench', 'segment_sklearn.py'), file, String(n), String(dim), String(k), String(seed)], {
    env: benchPythonEnv(),
    encoding: 'utf8',
  });
  if (py.status !== 0) throw new Error(`scikit-learn side failed: ${py.stderr}`);
  const sk = JSON.parse(py.stdout.trim().split('\n').pop()!) as { fit_s: number; inertia: number; iterations: number };

  // Read back what Python read, so both sides work on the very same doubles.
  const buf = readFileSync(file);
  const matrix = new Float64Array(buf.buffer, buf.byteOffset, buf.byteLength / 8);
  const t0 = performance.now();
  const job = runSegmentationJob(matrix, n, dim, { k, seed, sampleSize });
  const segS = (performance.now() - t0) / 1000;
  rmSync(file, { force: true });

  const ratio = segS / sk.fit_s;
  const gap = (job.inertia - sk.inertia) / sk.inertia;
  console.log(
    [
      String(n).padEnd(10),
      sk.fit_s.toFixed(3).padStart(13),
      sk.inertia.toFixed(1).padStart(15),
      segS.toFixed(3).padStart(9),
      job.inertia.toFixed(1).padStart(15),
      `${ratio.toFixed(2)}x`.padStart(10),
      `${gap >= 0 ? '+' : ''}${(gap * 100).toFixed(2)}%`.padStart(18),
    ].join(' | '),
  );
  console.log(
    `           segflow: sample ${job.timingsMs.sample.toFixed(0)} ms, train ${job.timingsMs.train.toFixed(0)} ms (${job.trainIterations} it), assign+refine ${job.timingsMs.assign.toFixed(0)} ms (${job.refinePasses} passes); sklearn: ${sk.iterations} iterations`,
  );
}
console.log('target: segflow time <= 1.0x sklearn, inertia within 2%');
