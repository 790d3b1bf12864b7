/**
 * Activities of the smoke workflow: one round trip through each service with its
 * official client, so a deployment (or the local stack) is proven end to end.
 */
import type { GcpClients } from '../stores/clients.js';

export interface SmokeDeps {
  clients: GcpClients;
  bucket: string;
}

export interface SmokeRow {
  run_id: string;
  n: number;
  label: string;
}

const SMOKE_TOPIC = 'segflow-smoke';
const SMOKE_DATASET = 'segflow_smoke';

export function createSmokeActivities({ clients, bucket }: SmokeDeps) {
  const { pubsub, storage, bigquery, firestore } = clients;

  return {
    /** Publish one message and pull it back on a fresh subscription. */
    async smokePubSub(runId: string): Promise<{ messageId: string; data: string; attributes: Record<string, string> }> {
      const [topic] = await pubsub.topic(SMOKE_TOPIC).get({ autoCreate: true });
      const subName = `segflow-smoke-${runId}`;
      const [sub] = await topic.createSubscription(subName, { ackDeadlineSeconds: 10 });
      try {
        const received = new Promise<{ messageId: string; data: string; attributes: Record<string, string> }>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('no smoke message received from Pub/Sub within 20 s')), 20_000);
          sub.on('message', (msg) => {
            if (msg.attributes.run_id !== runId) return msg.ack();
            msg.ack();
            clearTimeout(timer);
            resolve({ messageId: msg.id, data: msg.data.toString('utf8'), attributes: { ...msg.attributes } });
          });
          sub.on('error', (err) => {
            clearTimeout(timer);
            reject(err);
          });
        });
        const published = await topic.publishMessage({ data: Buffer.from(`hello from ${runId}`), attributes: { run_id: runId } });
        const got = await received;
        if (got.messageId !== published) throw new Error(`pulled message ${got.messageId}, published ${published}`);
        return got;
      } finally {
        await sub.close();
        await sub.delete().catch(() => undefined);
      }
    },

    /** Write NDJSON rows to the lake bucket and read the object back. */
    async smokeGcs(runId: string, rows: SmokeRow[]): Promise<{ uri: string; bytes: number; rows: SmokeRow[] }> {
      const [b] = await storage.bucket(bucket).get({ autoCreate: true });
      const name = `smoke/${runId}.ndjson`;
      const body = rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
      await b.file(name).save(body, { contentType: 'application/x-ndjson', resumable: false });
      const [content] = await b.file(name).download();
      const back = content
        .toString('utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as SmokeRow);
      return { uri: `gs://${bucket}/${name}`, bytes: content.length, rows: back };
    },

    /** Load the NDJSON object into a BigQuery table with a load job, then query it back. */
    async smokeBigQuery(runId: string, uri: string): Promise<{ table: string; rows: SmokeRow[] }> {
      const [dataset] = await bigquery.dataset(SMOKE_DATASET).get({ autoCreate: true });
      const tableId = `rows_${runId.replace(/[^A-Za-z0-9_]/g, '_')}`;
      const match = /^gs:\/\/([^/]+)\/(.+)$/.exec(uri);
      if (!match) throw new Error(`expected a gs:// URI, found ${uri}`);
      const [job] = await dataset.table(tableId).load(storage.bucket(match[1]!).file(match[2]!), {
        sourceFormat: 'NEWLINE_DELIMITED_JSON',
        writeDisposition: 'WRITE_TRUNCATE',
        schema: {
          fields: [
            { name: 'run_id', type: 'STRING', mode: 'REQUIRED' },
            { name: 'n', type: 'INT64', mode: 'REQUIRED' },
            { name: 'label', type: 'STRING', mode: 'NULLABLE' },
          ],
        },
      });
      const errors = job.status?.errors;
      if (errors && errors.length > 0) throw new Error(`load job failed: ${JSON.stringify(errors)}`);
      const [rows] = await bigquery.query({
        query: `SELECT run_id, n, label FROM \`${bigquery.projectId}.${SMOKE_DATASET}.${tableId}\` WHERE run_id = @run_id ORDER BY n`,
        params: { run_id: runId },
      });
      return {
        table: `${SMOKE_DATASET}.${tableId}`,
        rows: (rows as Array<{ run_id: string; n: number | string; label: string }>).map((r) => ({ ...r, n: Number(r.n) })),
      };
    },

    /** Write one Firestore document and read it back. */
    async smokeFirestore(runId: string): Promise<{ path: string; data: Record<string, unknown> }> {
      const ref = firestore.collection('segflow_smoke').doc(runId);
      await ref.set({ run_id: runId, ok: true, at: new Date().toISOString() });
      const snap = await ref.get();
      if (!snap.exists) throw new Error(`Firestore document ${ref.path} was written but not found`);
      return { path: ref.path, data: snap.data() ?? {} };
    },
  };
}

export type SmokeActivities = ReturnType<typeof createSmokeActivities>;
