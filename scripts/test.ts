/**
 * npm test [unit|workflows|integration ...] — runs every test tier with node's
 * built-in runner. Brings the local stack up when it is not running (and stops
 * it again afterwards); a stack that was already running is left alone.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { Argument, Command } from 'commander';
import { PROJECT_ROOT } from '../core/config.js';
import { exitUsage } from './lib/cli.js';
import { down, isRunning, up } from './stack-lib.js';

const TIERS = ['unit', 'workflows', 'integration'] as const;
type Tier = (typeof TIERS)[number];

const program = new Command('npm test')
  .description("Runs the chosen test tiers (all by default) with node's test runner.")
  .addArgument(new Argument('[tiers...]', 'tiers to run (default: all three)').choices(TIERS))
  .option('--keep-stack', 'leave the stack running afterwards when this run started it')
  .addHelpText(
    'after',
    `
Tiers:
  unit         pure logic, no servers
  workflows    workflow code on the Temporal time-skipping test server
  integration  the real local stack: Temporal dev server and the GCP emulators
The stack is started when a tier needs it and is not running, and stopped
afterwards unless --keep-stack is given; a stack already running is left alone.`,
  )
  .showHelpAfterError('(npm test -- --help for usage)')
  .exitOverride(exitUsage);
program.parse();
const chosen = program.processedArgs[0] as Tier[];
const keepStack = program.opts<{ keepStack?: boolean }>().keepStack ?? false;
const tiers: readonly Tier[] = chosen.length > 0 ? TIERS.filter((t) => chosen.includes(t)) : TIERS;

function testFiles(dir: string): string[] {
  const abs = path.join(PROJECT_ROOT, dir);
  let entries: string[];
  try {
    entries = readdirSync(abs);
  } catch {
    return [];
  }
  return entries
    .flatMap((e) => {
      const p = path.join(abs, e);
      if (statSync(p).isDirectory()) return testFiles(path.join(dir, e));
      return e.endsWith('.test.ts') ? [path.join(dir, e)] : [];
    })
    .sort();
}

const files = tiers.flatMap((t) => testFiles(path.join('test', t)));
if (files.length === 0) {
  console.error(`npm test: no test files found for ${tiers.join(', ')}`);
  process.exit(1);
}

// Workflow tests spawn the time-skipping server from .stack/bin; integration tests need the whole stack.
let startedServices: string[] = [];
if (tiers.includes('integration')) {
  if (!(await isRunning())) {
    console.log('local stack is not (fully) running: starting it for the integration tests');
    startedServices = (await up()).started;
  }
} else if (tiers.includes('workflows')) {
  (await import('./stack-lib.js')).install();
}

const t0 = Date.now();
const result = spawnSync(
  process.execPath,
  [
    '--import',
    'tsx',
    '--test',
    '--test-reporter=spec',
    // A test file that leaves a handle open must not hang CI; a stuck test fails after 10 minutes.
    '--test-force-exit',
    '--test-timeout=600000',
    ...files,
  ],
  {
    cwd: PROJECT_ROOT,
    stdio: 'inherit',
    env: { ...process.env, SEGFLOW_TEST: '1' },
  },
);
console.log(`tests finished in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

// Stop only what this run started; services that were already running stay up.
if (startedServices.length > 0 && !keepStack) await down(console.log, startedServices);
process.exit(result.status ?? 1);
