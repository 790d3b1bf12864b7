/**
 * The Python side of the benchmarks: scikit-learn and numpy installed with pip into
 * `.stack/py-bench` (ignored by git, like the rest of the local stack), used through PYTHONPATH.
 */
import { Command } from 'commander';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PROJECT_ROOT } from '../core/config.js';
import { exitUsage } from './lib/cli.js';

export const BENCH_PYTHON_DIR = path.join(process.env.SEGFLOW_STACK_DIR ?? path.join(PROJECT_ROOT, '.stack'), 'py-bench');
const PACKAGES = ['scikit-learn', 'numpy'];

export function benchPythonEnv(): NodeJS.ProcessEnv {
  return { ...process.env, PYTHONPATH: [BENCH_PYTHON_DIR, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter) };
}

/** Installs scikit-learn and numpy into .stack/py-bench unless they import already. */
export function ensureBenchPython(python = process.env.PYTHON ?? 'python3'): string {
  const probe = () => spawnSync(python, ['-c', 'import sklearn, numpy'], { env: benchPythonEnv(), stdio: 'ignore' }).status === 0;
  if (existsSync(BENCH_PYTHON_DIR) && probe()) return python;
  console.log(`installing ${PACKAGES.join(', ')} into ${BENCH_PYTHON_DIR} (once)...`);
  const pip = spawnSync(
    python,
    ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--target', BENCH_PYTHON_DIR, ...PACKAGES],
    {
      stdio: 'inherit',
    },
  );
  if (pip.status !== 0 || !probe()) {
    throw new Error(
      `could not install ${PACKAGES.join(', ')} with ${python} -m pip into ${BENCH_PYTHON_DIR}; install Python 3 with pip, or set PYTHON`,
    );
  }
  return python;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  new Command('bench-python')
    .description(
      `Installs scikit-learn and numpy for the benchmarks into ${BENCH_PYTHON_DIR} unless they import already (PYTHON picks the interpreter).`,
    )
    .showHelpAfterError()
    .exitOverride(exitUsage)
    .parse();
  console.log(`scikit-learn ready: ${ensureBenchPython()} with PYTHONPATH=${BENCH_PYTHON_DIR}`);
}
