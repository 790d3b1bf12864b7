/**
 * The one table printer of the CLIs, scripts and benchmarks: cli-table3 without borders,
 * columns two spaces apart and no colour, so a terminal and a CI log show the same text.
 */
import Table from 'cli-table3';

export type Cell = string | number;

export interface TableOptions {
  /** Alignment per column; left where not given (right suits figures). */
  readonly align?: readonly ('left' | 'right')[];
  /** Spaces before every line. */
  readonly indent?: number;
}

const NO_BORDERS = {
  top: '',
  'top-mid': '',
  'top-left': '',
  'top-right': '',
  bottom: '',
  'bottom-mid': '',
  'bottom-left': '',
  'bottom-right': '',
  left: '',
  'left-mid': '',
  mid: '',
  'mid-mid': '',
  right: '',
  'right-mid': '',
  middle: '  ',
} as const;

/** The table as text, one line per row (a cell with line breaks takes several); no header line when `headers` is empty. */
export function formatTable(headers: readonly string[], rows: readonly (readonly Cell[])[], opts: TableOptions = {}): string {
  const table = new Table({
    head: [...headers],
    chars: NO_BORDERS,
    colAligns: [...(opts.align ?? [])],
    style: { 'padding-left': 0, 'padding-right': 0, head: [], border: [], compact: true },
  });
  table.push(...rows.map((row) => row.map(String)));
  const indent = ' '.repeat(opts.indent ?? 0);
  return table
    .toString()
    .split('\n')
    .map((line) => `${indent}${line}`.trimEnd())
    .join('\n');
}

export function printTable(headers: readonly string[], rows: readonly (readonly Cell[])[], opts: TableOptions = {}): void {
  console.log(formatTable(headers, rows, opts));
}
