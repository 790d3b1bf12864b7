/** `{{ ref('model') }}` and `{{ source('raw', 'events') }}`, the only template tags a model may use. */
import { IDENTIFIER, LOGICAL_DATASETS, MODEL_NAME, SqlModelError, type LogicalDataset } from './names.js';

export interface SourceRef {
  readonly dataset: LogicalDataset;
  readonly table: string;
}

type TemplateCall = { kind: 'ref'; model: string } | { kind: 'source'; dataset: LogicalDataset; table: string };

export const TAG = /\{\{([\s\S]*?)\}\}/g;
const CALL = /^\s*(ref|source)\s*\(\s*((?:'[^']*'|"[^"]*")(?:\s*,\s*(?:'[^']*'|"[^"]*"))*)\s*\)\s*$/;

export function parseTag(model: string, body: string): TemplateCall {
  const match = CALL.exec(body);
  if (match === null) {
    throw new SqlModelError(
      `model ${model}: unsupported template tag {{${body}}}; only {{ ref('model') }} and {{ source('raw', 'events') }} are allowed`,
    );
  }
  const args = [...(match[2] as string).matchAll(/'([^']*)'|"([^"]*)"/g)].map((m) => m[1] ?? m[2] ?? '');
  if (match[1] === 'ref') {
    if (args.length !== 1 || !MODEL_NAME.test(args[0] as string)) {
      throw new SqlModelError(`model ${model}: expected ref('model_name') with one lowercase model name, found {{${body}}}`);
    }
    return { kind: 'ref', model: args[0] as string };
  }
  const [dataset, table] = args;
  if (args.length !== 2 || !(LOGICAL_DATASETS as readonly string[]).includes(dataset as string) || !IDENTIFIER.test(table as string)) {
    throw new SqlModelError(`model ${model}: expected source('<${LOGICAL_DATASETS.join('|')}>', '<table>'), found {{${body}}}`);
  }
  return { kind: 'source', dataset: dataset as LogicalDataset, table: table as string };
}

export function templateCalls(model: string, sql: string): TemplateCall[] {
  for (const bad of ['{%', '{#']) {
    if (sql.includes(bad))
      throw new SqlModelError(`model ${model}: unsupported template syntax "${bad}"; only {{ ref() }} and {{ source() }} are allowed`);
  }
  return [...sql.matchAll(TAG)].map((m) => parseTag(model, m[1] as string));
}
