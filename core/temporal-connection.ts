/**
 * Connection settings for Temporal from the configuration, shared by clients
 * and workers: plain on the dev server, TLS (mTLS or API key) in production.
 */
import { readFileSync } from 'node:fs';
import type { Config } from './config.js';

export interface TemporalConnectionSettings {
  address: string;
  apiKey?: string;
  tls?: boolean | { serverNameOverride?: string; clientCertPair?: { crt: Buffer; key: Buffer } };
}

export function temporalConnectionSettings(config: Config): TemporalConnectionSettings {
  const { address, apiKey, tls } = config.temporal;
  if (!tls) return { address };
  const clientCertPair = tls.certPath && tls.keyPath ? { crt: readFileSync(tls.certPath), key: readFileSync(tls.keyPath) } : undefined;
  return {
    address,
    apiKey,
    tls: { ...(tls.serverName ? { serverNameOverride: tls.serverName } : {}), ...(clientCertPair ? { clientCertPair } : {}) },
  };
}

/** A link to one workflow run in the Temporal UI. */
export function workflowUiUrl(uiUrl: string, namespace: string, workflowId: string, runId?: string): string {
  const base = `${uiUrl}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
  return runId ? `${base}/${encodeURIComponent(runId)}/history` : base;
}
