/** Workflow-side helper: the nominal time a schedule started this run with, if any. */
import { workflowInfo } from '@temporalio/workflow';
import { SCHEDULED_START_TIME_SEARCH_ATTRIBUTE } from './dag-messages.js';

export function scheduledStartTime(): Date | undefined {
  const info = workflowInfo();
  const typed = info.typedSearchAttributes.get(SCHEDULED_START_TIME_SEARCH_ATTRIBUTE);
  if (typed !== undefined) return typed;
  // The typed view skips payloads without type metadata; the untyped view still decodes them.
  const legacy: unknown = info.searchAttributes[SCHEDULED_START_TIME_SEARCH_ATTRIBUTE.name]?.[0];
  if (legacy instanceof Date) return legacy;
  if (typeof legacy === 'string' && !Number.isNaN(Date.parse(legacy))) return new Date(legacy);
  return undefined;
}
