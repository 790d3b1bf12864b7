/** Turns schema failures into one readable error that names every problem. */
import type { z } from 'zod';

export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
  throw new Error(`invalid ${what} (${problems.length} problem${problems.length === 1 ? '' : 's'}): ${problems.join('; ')}`);
}
