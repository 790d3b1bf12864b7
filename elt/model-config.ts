/** The `-- config: key=value` header of a model file (dbt's config block). */
import { z } from 'zod';
import { IDENTIFIER, LOGICAL_DATASETS, SqlModelError } from './names.js';

const identifierList = (what: string) =>
  z
    .string()
    .transform((v) => v.trim().split(/\s+/))
    .pipe(z.array(z.string().regex(IDENTIFIER, `expected ${what} as space-separated column names`)).min(1));

/** `DATE(col)`, `col` (a DATE or an integer range is not needed yet) or `TIMESTAMP_TRUNC(col, DAY|HOUR|MONTH|YEAR)`. */
const PARTITION_EXPRESSION =
  /^(?:[A-Za-z_][A-Za-z0-9_]*|DATE\(\s*[A-Za-z_][A-Za-z0-9_]*\s*\)|TIMESTAMP_TRUNC\(\s*[A-Za-z_][A-Za-z0-9_]*\s*,\s*(?:HOUR|DAY|MONTH|YEAR)\s*\))$/i;

const ModelConfigSchema = z
  .object({
    materialized: z.enum(['table', 'incremental'], { error: 'expected materialized=table or materialized=incremental' }),
    dataset: z.enum(LOGICAL_DATASETS, { error: `expected dataset= one of ${LOGICAL_DATASETS.join(', ')}` }),
    /** Table name when it differs from the model name (dbt's alias). */
    alias: z.string().regex(IDENTIFIER, 'expected alias= a table name').optional(),
    /** incremental only: `merge` upserts on unique_key; `delete+insert` replaces every target row whose key the new rows carry. */
    strategy: z.enum(['merge', 'delete+insert'], { error: 'expected strategy=merge or strategy=delete+insert' }).optional(),
    unique_key: identifierList('unique_key').optional(),
    /** merge only: extra condition for updating a matched row, over aliases S (new) and T (existing). */
    merge_update_if: z.string().min(1).optional(),
    partition_by: z
      .string()
      .regex(PARTITION_EXPRESSION, 'expected partition_by=column, DATE(column) or TIMESTAMP_TRUNC(column, DAY)')
      .optional(),
    cluster_by: identifierList('cluster_by').pipe(z.array(z.string()).max(4, 'expected at most 4 cluster_by columns')).optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.materialized === 'incremental') {
      if (c.strategy === undefined)
        ctx.addIssue({ code: 'custom', message: 'incremental models need strategy=merge or strategy=delete+insert' });
      if (c.unique_key === undefined) ctx.addIssue({ code: 'custom', message: 'incremental models need unique_key=<columns>' });
    } else {
      for (const key of ['strategy', 'unique_key', 'merge_update_if'] as const) {
        if (c[key] !== undefined) ctx.addIssue({ code: 'custom', message: `${key} applies to incremental models only` });
      }
    }
    if (c.merge_update_if !== undefined && c.strategy !== 'merge') {
      ctx.addIssue({ code: 'custom', message: 'merge_update_if applies to strategy=merge only' });
    }
  });

export type ModelConfig = z.infer<typeof ModelConfigSchema>;

const CONFIG_LINE = /^\s*--\s*config\s*:(.*)$/i;

/** Splits `a=1, b=f(x, y)` on top-level commas. */
function splitPairs(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth = Math.max(0, depth - 1);
    if (ch === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

/**
 * Reads the `-- config: key=value, key=value` lines of the leading comment block (several lines
 * merge; a key may appear once). A config line after the first SQL line is refused: it would
 * look like configuration and silently do nothing.
 */
export function parseModelConfig(model: string, sql: string): ModelConfig {
  const raw: Record<string, string> = {};
  let inHeader = true;
  for (const [index, line] of sql.split('\n').entries()) {
    const match = CONFIG_LINE.exec(line);
    if (match !== null) {
      if (!inHeader) {
        throw new SqlModelError(
          `model ${model}, line ${index + 1}: "-- config:" lines belong in the leading comment block, before any SQL`,
        );
      }
      for (const pair of splitPairs(match[1] as string)) {
        const eq = pair.indexOf('=');
        if (eq <= 0)
          throw new SqlModelError(
            `model ${model}, line ${index + 1}: expected key=value in the config header, found ${JSON.stringify(pair)}`,
          );
        const key = pair.slice(0, eq).trim();
        if (key in raw) throw new SqlModelError(`model ${model}: config key ${key} is set twice`);
        raw[key] = pair.slice(eq + 1).trim();
      }
      continue;
    }
    const trimmed = line.trim();
    if (trimmed !== '' && !trimmed.startsWith('--')) inHeader = false;
  }
  const parsed = ModelConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => (i.path.length > 0 ? `${i.path.join('.')}: ${i.message}` : i.message));
    throw new SqlModelError(`model ${model}: invalid config header (${problems.join('; ')})`);
  }
  return parsed.data;
}
