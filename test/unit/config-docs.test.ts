import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { envSchema } from '../../core/config.js';
import { CONFIG_DOCS_PATH, renderConfigDocs } from '../../scripts/gen-config-docs.js';

/** The table rows of a rendered page, by variable name. */
function rows(markdown: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const line of markdown.split('\n')) {
    const match = /^\| `([A-Z_]+)` \| (.*) \|$/.exec(line);
    if (match !== null)
      found.set(
        match[1] as string,
        (match[2] as string).split(/(?<!\\)\| /).map((c) => c.trim()),
      );
  }
  return found;
}

describe('docs/configuration.md', () => {
  it('equals a fresh rendering of the schema in core/config.ts', async () => {
    const committed = await readFile(CONFIG_DOCS_PATH, 'utf8');
    assert.equal(committed, renderConfigDocs(envSchema), 'stale: run `npm run docs:config` and commit docs/configuration.md');
  });

  it('has one row per variable of the schema, in schema order', () => {
    assert.deepEqual([...rows(renderConfigDocs(envSchema)).keys()], Object.keys(envSchema.shape));
  });
});

describe('renderConfigDocs', () => {
  const schema = z.object({
    MODE: z.enum(['a', 'b']).default('a').describe('The mode.'),
    COUNT: z.coerce.number().int().min(1).max(10).default(3).describe('How many.'),
    IDLE: z.coerce.number().positive().max(60).default(5).describe('Minutes.'),
    FLAG: z
      .enum(['true', 'false'])
      .transform((v) => v === 'true')
      .default(false)
      .describe('A switch.'),
    HOST: z
      .string()
      .optional()
      .transform((v) => (v === '' ? undefined : v))
      .pipe(
        z
          .string()
          .regex(/^[a-z]+:\d+$/)
          .optional(),
      )
      .describe('Where.'),
    TIME: z
      .string()
      .regex(/^(0|1)\d$/)
      .default('')
      .describe('Two digits.'),
    LINK: z
      .url({ protocol: /^https?$/ })
      .default('http://x.test')
      .describe('A link.'),
  });

  it('renders type, allowed values, default and description of each variable', () => {
    const table = rows(renderConfigDocs(schema));
    assert.deepEqual(table.get('MODE'), ['one of `a`, `b`', '`a`', 'The mode.']);
    assert.deepEqual(table.get('COUNT'), ['integer, 1 to 10', '`3`', 'How many.']);
    assert.deepEqual(table.get('IDLE'), ['number > 0, ≤ 60', '`5`', 'Minutes.']);
    assert.deepEqual(table.get('FLAG'), ['one of `true`, `false`', '`false`', 'A switch.']);
    assert.deepEqual(table.get('HOST'), ['string matching `^[a-z]+:\\d+$`', '–', 'Where.']);
    assert.deepEqual(table.get('TIME'), ['string matching `^(0\\|1)\\d$`', 'empty', 'Two digits.']);
    assert.deepEqual(table.get('LINK'), ['URL, protocol matching `^https?$`', '`http://x.test`', 'A link.']);
  });

  it('refuses a variable without a description, naming it', () => {
    const undocumented = z.object({ DOCUMENTED: z.string().describe('Yes.'), BARE: z.string().default('x'), ALSO_BARE: z.string() });
    assert.throws(() => renderConfigDocs(undocumented), /\.describe\(\) text in core\/config\.ts: BARE, ALSO_BARE$/);
  });
});
