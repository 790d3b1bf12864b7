/**
 * The contract between the DAG runner and the activities behind DAG tasks: what a task activity
 * receives. Shared by workflows, activities and DAG definitions, so it lives in core.
 */

export type JsonValue = string | number | boolean | null | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/** The data interval a DAG run processes, as canonical UTC instants (`2026-11-26T09:00:00Z`). */
export interface DataInterval {
  readonly start: string;
  readonly end: string;
}

/** What every DAG task activity receives. */
export interface DagTaskInput {
  readonly dagId: string;
  readonly taskId: string;
  readonly interval: DataInterval;
  readonly args?: JsonValue;
}

/** What the SQL model activity receives for a `{ sqlModel }` task. */
export interface SqlModelTaskInput extends DagTaskInput {
  readonly model: string;
}
