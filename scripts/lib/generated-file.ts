/**
 * The CLI of a generated file (the event JSON Schema, the configuration page, the ELT manifest):
 * write it, or with --check write nothing and exit 1 when the committed file is stale, so CI and
 * the unit tests catch a generator that was not rerun.
 */
import { Command } from 'commander';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface GeneratedFile {
  /** The npm script that runs the generator, e.g. `docs:config`. */
  readonly script: string;
  readonly description: string;
  readonly file: string;
  render(): string;
}

export async function runGeneratedFileCli(spec: GeneratedFile, argv: readonly string[] = process.argv): Promise<void> {
  const program = new Command(spec.script)
    .description(spec.description)
    .option('--check', `write nothing; exit 1 if the committed ${path.basename(spec.file)} is stale`)
    .showHelpAfterError();
  program.parse([...argv]);
  const fresh = spec.render();
  if (program.opts<{ check?: boolean }>().check === true) {
    const committed = await readFile(spec.file, 'utf8').catch(() => '');
    if (committed !== fresh) {
      console.error(`${spec.file} is stale: run \`npm run ${spec.script}\` and commit the result`);
      process.exitCode = 1;
    }
    return;
  }
  await mkdir(path.dirname(spec.file), { recursive: true });
  await writeFile(spec.file, fresh);
  console.log(`wrote ${path.relative(process.cwd(), spec.file)}`);
}
