/**
 * The forgetCustomers workflow's input, progress and query, declared once for the ops CLI (client
 * side) and the workflow. Nothing here carries a customer id: the ids stay in the request's pages
 * in Firestore (stores/forget-requests.ts), so workflow histories never hold them.
 */
import { defineQuery } from '@temporalio/workflow';

export const FORGET_WORKFLOW = 'forgetCustomers';

/** `<prefix>forget/<requestId>`, prefixed like every other id segflow creates (SEGFLOW_SCHEDULE_PREFIX). */
export function forgetWorkflowId(requestId: string, prefix = ''): string {
  return `${prefix}forget/${requestId}`;
}

export interface ForgetInput {
  requestId: string;
}

/** The stores a request goes through, in order. */
export const FORGET_STORES = [
  'suppression',
  'temporal',
  'lake_raw',
  'lake_quarantine',
  'segmentation_runs',
  'warehouse',
  'firestore',
  'webhooks',
] as const;
export type ForgetStore = (typeof FORGET_STORES)[number];

export interface StoreProgress {
  state: 'pending' | 'running' | 'done';
  /** Pages of ids done, of `pages` (the lake is one scan over all pages: 0 or 1 of 1). */
  pagesDone: number;
  pages: number;
  /** Records (rows, objects' records, documents, workflow runs, deliveries) of the ids found, and removed. */
  found: number;
  removed: number;
  /** Finer counts: per table, objects rewritten and deleted, and so on. */
  detail: Record<string, number>;
}

export interface ForgetProgress {
  requestId: string;
  dryRun: boolean;
  customers: number;
  pages: number;
  stage: 'planning' | 'suppressing' | 'settling' | 'removing' | 'verifying' | 'done';
  stores: Record<ForgetStore, StoreProgress>;
  /** What the verification pass found of the ids in each store (all zero when forgotten). */
  verification?: Record<string, number>;
  verified?: boolean;
}

export type ForgetResult = ForgetProgress;

export const forgetProgressQuery = defineQuery<ForgetProgress>('forgetProgress');
