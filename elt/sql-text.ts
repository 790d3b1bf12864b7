/** SQL text as a lexer sees it: comments stripped, named parameters found. */

/** Comments, string literals and quoted identifiers, in the order a lexer meets them. */
const SQL_TOKENS = /--[^\n]*|#[^\n]*|\/\*[\s\S]*?\*\/|'''[\s\S]*?'''|"""[\s\S]*?"""|'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*"|`(?:\\.|[^`\\])*`/g;

/**
 * The statement without its comments (strings and quoted identifiers untouched; line breaks
 * kept so error positions still match the file). The BigQuery emulator mis-parses a CREATE
 * TABLE ... AS whose comments hold an unbalanced parenthesis (it silently returned one row).
 */
export function stripSqlComments(sql: string): string {
  return sql.replace(SQL_TOKENS, (token) =>
    token.startsWith('--') || token.startsWith('#') || token.startsWith('/*') ? token.replace(/[^\n]/g, '') : token,
  );
}

/**
 * Named parameters (`@name`) a statement uses, outside comments, strings and quoted
 * identifiers. The caller binds exactly these: the BigQuery emulator refuses a query that is
 * given a parameter it does not use.
 */
export function referencedParams(sql: string): string[] {
  const stripped = sql.replace(SQL_TOKENS, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/(^|[^@\w])@([A-Za-z_][A-Za-z0-9_]*)/g)) names.add(m[2] as string);
  return [...names];
}
