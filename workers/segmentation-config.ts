/**
 * Reads the segmentation configuration file (config/segmentation.json, or the file
 * SEGFLOW_SEGMENTATION_CONFIG names) for the processes that segment: core/config.ts validates it
 * with the rest of the configuration but does no I/O of its own for it.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, PROJECT_ROOT, loadConfig, type Config, type RawEnv, type SegmentationFile } from '../core/config.js';

export const DEFAULT_SEGMENTATION_CONFIG = path.join(PROJECT_ROOT, 'config', 'segmentation.json');

/** The file's parsed content; undefined when the default file is absent. A file that is named but missing, or not JSON, is a ConfigError. */
export function readSegmentationFile(env: RawEnv = process.env): SegmentationFile | undefined {
  const named = env.SEGFLOW_SEGMENTATION_CONFIG;
  const file = named !== undefined && named !== '' ? path.resolve(named) : DEFAULT_SEGMENTATION_CONFIG;
  const shown = path.relative(process.cwd(), file) || file;
  if (!existsSync(file)) {
    if (file === DEFAULT_SEGMENTATION_CONFIG) return undefined;
    throw new ConfigError([`SEGFLOW_SEGMENTATION_CONFIG: ${shown} does not exist; point it at a segmentation file or unset it`]);
  }
  try {
    return { path: shown, content: JSON.parse(readFileSync(file, 'utf8')) as unknown };
  } catch (err) {
    throw new ConfigError([`${shown}: not valid JSON (${(err as Error).message})`]);
  }
}

/** loadConfig with the segmentation file. */
export function loadSegflowConfig(env: RawEnv = process.env): Config {
  return loadConfig(env, readSegmentationFile(env));
}

/** loadSegflowConfig for command-line entry points: a bad setting prints the one message and exits 1. */
export function loadSegflowConfigOrExit(env: RawEnv = process.env): Config {
  try {
    return loadSegflowConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
}
