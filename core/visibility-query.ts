/**
 * Temporal visibility (list filter) queries: values go in as quoted string literals, so a DAG id,
 * prefix or instant can never end the literal and add a clause of its own.
 */
export function visibilityLiteral(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
