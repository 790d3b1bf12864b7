/**
 * Secrets never reach the logs. A worker, the trigger listener and the profile API run as child
 * processes from their normal entry points, at LOG_LEVEL=trace, with a distinctive value for every
 * secret the configuration has, their output going to files as an operator would collect it. The
 * test drives traffic that logs (a real-time event, a webhook delivered and one rejected, an alert
 * whose every channel fails, API requests with good, bad and misplaced tokens), then reads every
 * line of every file for every secret. A worker given a Temporal API key and a process stopped by
 * an invalid secret setting are checked the same way.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { closeGcpClients, createGcpClients, type GcpClients } from '../../stores/clients.js';
import { PROJECT_ROOT, type Config } from '../../core/config.js';
import { SIGNATURE_HEADER } from '../../core/webhook-signature.js';
import { ensureTriggerSubscription } from '../../workers/trigger-listener.js';
import { installCurrentModel, publishEvent, purchaseEvent, twoSegmentModel } from '../support/realtime-fixtures.js';
import { testConfig } from '../support/stack.js';

const run = randomUUID().slice(0, 8);
const SECRET = {
  apiToken: `S3CRET-api-token-${run}`,
  apiToken2: `S3CRET-api-token2-${run}`,
  hookSecretOk: `S3CRET-whsec-ok-${run}`,
  hookSecretBad: `S3CRET-whsec-bad-${run}`,
  hookUrlOk: `S3CRET-hookpath-ok-${run}`,
  hookUrlBad: `S3CRET-hookpath-bad-${run}`,
  slackUrl: `S3CRET-slack-${run}`,
  alertUrl: `S3CRET-alerturl-${run}`,
  alertPassword: `S3CRET-alertpass-${run}`,
  pagerDutyKey: `S3CRET-pdkey-${run}`,
  temporalApiKey: `S3CRET-temporal-${run}`,
} as const;

/** A secret may also show up encoded: in a URL, or base64 in a Basic header. */
function forms(secret: string): string[] {
  return [
    secret,
    encodeURIComponent(secret),
    Buffer.from(`user:${secret}`).toString('base64'),
    Buffer.from(secret).toString('base64').replace(/=+$/, ''),
  ];
}

interface Hit {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

const dir = mkdtempSync(path.join(tmpdir(), 'segflow-log-secrets-'));
const children: ChildProcess[] = [];
const hits: Hit[] = [];
let receiver: Server;
let base: string;
let config: Config;
let clients: GcpClients;
let env: Record<string, string>;
let apiPort: number;

function start(
  name: string,
  args: string[],
  extraEnv: Record<string, string> = {},
): { child: ChildProcess; file: string; exited: Promise<number | null> } {
  const file = path.join(dir, `${name}.log`);
  const fd = openSync(file, 'a');
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...env, ...extraEnv },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  children.push(child);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, file, exited };
}

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const logOf = (file: string) => readFileSync(file, 'utf8');

before(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = req.url ?? '';
      hits.push({ path: url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const status = url.startsWith('/hooks/ok/')
        ? 200
        : url.startsWith('/hooks/bad/')
          ? 400
          : url.startsWith('/slack/')
            ? 503
            : url.startsWith('/pagerduty')
              ? 400
              : 500;
      // Receivers that echo what they got are common; the echo must not end up in a log either.
      res.writeHead(status, { 'content-type': 'text/plain' }).end(`refused ${url}`);
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  apiPort = (probe.address() as AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));

  env = {
    TEMPORAL_TASK_QUEUE: `test-secrets-${run}`,
    SEGFLOW_EVENTS_TOPIC: `secrets-events-${run}`,
    SEGFLOW_LAKE_SUBSCRIPTION: `secrets-lake-${run}`,
    SEGFLOW_TRIGGER_SUBSCRIPTION: `secrets-triggers-${run}`,
    SEGFLOW_LAKE_BUCKET: `secrets-lake-${run}`,
    SEGFLOW_FIRESTORE_PROFILES: `secrets_profiles_${run}`,
    SEGFLOW_DATASET_MARTS: `secrets_marts_${run}`,
    SEGFLOW_METRICS_PORT: '0',
    SEGFLOW_RECLASSIFY_IDLE_MINUTES: '0.1',
    LOG_LEVEL: 'trace',
    SEGFLOW_API_TOKENS: `${SECRET.apiToken},${SECRET.apiToken2}`,
    SEGFLOW_WEBHOOKS: JSON.stringify([
      { id: 'crm', url: `${base}/hooks/ok/${SECRET.hookUrlOk}?key=${SECRET.hookUrlOk}`, secret: SECRET.hookSecretOk },
      { id: 'mail', url: `${base}/hooks/bad/${SECRET.hookUrlBad}`, secret: SECRET.hookSecretBad },
    ]),
    SEGFLOW_ALERT_SLACK_WEBHOOK_URL: `${base}/slack/services/T0/B0/${SECRET.slackUrl}`,
    // The second one has credentials in it, which fetch refuses quoting the whole URL.
    SEGFLOW_ALERT_WEBHOOK_URLS: `${base}/alerts/${SECRET.alertUrl}?token=${SECRET.alertUrl},${base.replace('//', `//ops:${SECRET.alertPassword}@`)}/alerts2`,
    SEGFLOW_ALERT_PAGERDUTY_ROUTING_KEY: SECRET.pagerDutyKey,
    SEGFLOW_ALERT_PAGERDUTY_URL: `${base}/pagerduty`,
    SEGFLOW_ALERT_PAGERDUTY_MIN_SEVERITY: 'warning',
  };
  config = testConfig('secrets', env);
  clients = createGcpClients(config);
  await installCurrentModel(clients.storage, config.lake.bucket, twoSegmentModel(`secrets-${run}`));
  await ensureTriggerSubscription(clients.pubsub, config);
});

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (clients) {
    await clients.pubsub
      .subscription(config.pubsub.triggerSubscription)
      .delete()
      .catch(() => undefined);
    await clients.pubsub
      .topic(config.pubsub.topic)
      .delete()
      .catch(() => undefined);
    await clients.firestore.recursiveDelete(clients.firestore.collection(config.firestore.profiles)).catch(() => undefined);
    await clients.storage
      .bucket(config.lake.bucket)
      .deleteFiles({ force: true })
      .catch(() => undefined);
    await closeGcpClients(clients);
  }
  receiver?.closeAllConnections();
  await new Promise((resolve) => receiver?.close(resolve));
  // A failure quotes the offending line; set KEEP_TEST_LOGS=1 to keep every file.
  if (process.env.KEEP_TEST_LOGS !== '1') rmSync(dir, { recursive: true, force: true });
});

function assertNoSecrets(name: string, text: string, secrets: readonly string[]) {
  const lines = text.split('\n');
  for (const secret of secrets) {
    for (const form of forms(secret)) {
      const i = lines.findIndex((l) => l.includes(form));
      assert.equal(i, -1, `${name} log line ${i + 1} holds a secret (${secret.replace(/-[0-9a-f]{8}$/, '')}): ${lines[i]?.slice(0, 400)}`);
    }
  }
}

describe('secrets never appear in logs', () => {
  it('worker, trigger listener and profile API at trace level', async () => {
    const worker = start('worker', ['workers/main.ts']);
    const listener = start('triggers', ['workers/trigger-listener.ts']);
    const api = start('api', ['api/main.ts', '--port', String(apiPort)]);
    await until('the worker', () => (logOf(worker.file).includes('worker started') ? true : undefined));
    await until('the trigger listener', () => (logOf(listener.file).includes('trigger listener started') ? true : undefined));
    await until('the API', () => (logOf(api.file).includes('profile API ready') ? true : undefined));

    // A purchase: listener -> reclassify on the worker -> Firestore -> two webhooks (one rejected) -> an alert on every channel.
    const customer = `secrets-cust-${run}`;
    await publishEvent(clients.pubsub, config.pubsub.topic, purchaseEvent(customer, 1_500));
    await until('both webhook deliveries and every alert channel', () =>
      ['/hooks/ok/', '/hooks/bad/', '/slack/', '/alerts/', '/pagerduty'].every((p) => hits.some((h) => h.path.startsWith(p)))
        ? true
        : undefined,
    );
    // The channels retry (1 s, 3 s) and then give up with an error line.
    await until(
      'the alert channels to give up',
      () => (logOf(worker.file).split('giving up on this channel').length > 3 ? true : undefined),
      30_000,
    );

    // The secrets were really in use: the signature, the routing key, the URL paths.
    const ok = hits.find((h) => h.path.startsWith('/hooks/ok/'))!;
    assert.ok(ok.path.includes(SECRET.hookUrlOk) && typeof ok.headers[SIGNATURE_HEADER.toLowerCase()] === 'string');
    assert.ok(hits.find((h) => h.path.startsWith('/pagerduty'))!.body.includes(SECRET.pagerDutyKey));

    const apiUrl = `http://127.0.0.1:${apiPort}`;
    const profile = `/v1/customers/${customer}/profile`;
    const asked: Array<[string, Record<string, string>, number]> = [
      [profile, { authorization: `Bearer ${SECRET.apiToken}` }, 200],
      [profile, { authorization: `Bearer ${SECRET.apiToken2}` }, 200],
      [profile, {}, 401],
      [profile, { authorization: `Bearer ${SECRET.apiToken}x` }, 401],
      [profile, { authorization: `Basic ${Buffer.from(`user:${SECRET.apiToken}`).toString('base64')}` }, 401],
      [profile, { authorization: SECRET.apiToken }, 401],
      [profile, { 'x-api-key': SECRET.apiToken, cookie: `token=${SECRET.apiToken}` }, 401],
      [`${profile}?access_token=${SECRET.apiToken}&token=${SECRET.apiToken2}`, {}, 401],
      [`/v1/customers/nobody-${run}/profile?key=${SECRET.apiToken}`, { authorization: `Bearer ${SECRET.apiToken}` }, 404],
      [`/nope?token=${SECRET.apiToken}`, { authorization: `Bearer ${SECRET.apiToken}` }, 404],
    ];
    for (const [p, headers, status] of asked) {
      const res = await until(
        `a profile for ${customer}`,
        async () => {
          const r = await fetch(`${apiUrl}${p}`, { headers });
          await r.arrayBuffer();
          // The profile is written by the worker a moment after the webhooks went out.
          return r.status === 404 && status === 200 ? undefined : r;
        },
        15_000,
      );
      assert.equal(res.status, status, `${p.slice(0, 50)} ${JSON.stringify(Object.keys(headers))}`);
    }

    for (const c of [worker, listener, api]) c.child.kill('SIGTERM');
    await Promise.all([worker.exited, listener.exited, api.exited]);

    const logs = { worker: logOf(worker.file), triggers: logOf(listener.file), api: logOf(api.file) };
    // The logs are there and say what happened, so the check below can fail.
    assert.match(logs.worker, /webhook delivered/);
    assert.match(logs.worker, /webhook rejected/);
    assert.match(logs.worker, /alert delivery failed; giving up on this channel/);
    assert.match(logs.triggers, /trigger listener stopped/);
    assert.match(logs.api, /incoming request/);
    assert.ok(logs.api.split('\n').filter((l) => l.includes('"statusCode":401')).length >= 6, 'the refused requests are logged');
    for (const [name, text] of Object.entries(logs)) assertNoSecrets(name, text, Object.values(SECRET));
  });

  it('a worker with a Temporal API key: whatever it logs while it cannot connect holds no key', async () => {
    const worker = start('worker-apikey', ['workers/main.ts'], {
      TEMPORAL_API_KEY: SECRET.temporalApiKey,
      TEMPORAL_TASK_QUEUE: `test-secrets-key-${run}`,
    });
    const code = await Promise.race([worker.exited, new Promise<'running'>((r) => setTimeout(() => r('running'), 20_000))]);
    if (code === 'running') {
      worker.child.kill('SIGTERM');
      await worker.exited;
    }
    const text = logOf(worker.file);
    assert.ok(text.trim().length > 0, 'the worker said something');
    assertNoSecrets('worker-apikey', text, [SECRET.temporalApiKey]);
  });

  it('a setting refused at startup is named without echoing its secret', async () => {
    const cases: Array<[string, string]> = [
      ['SEGFLOW_ALERT_SLACK_WEBHOOK_URL', `hooks.slack.example/services/T0/B0/${SECRET.slackUrl}`],
      ['SEGFLOW_ALERT_WEBHOOK_URLS', `ftp://alerts.example/${SECRET.alertUrl}`],
      ['SEGFLOW_WEBHOOKS', JSON.stringify([{ id: 'crm', url: `notaurl/${SECRET.hookUrlOk}`, secret: SECRET.hookSecretOk }])],
      ['SEGFLOW_API_TOKENS', `${SECRET.apiToken},short`],
      ['TEMPORAL_API_KEY', `${SECRET.temporalApiKey}`],
    ];
    // In parallel: each is a process start, and they are independent.
    const runs = cases.map(([name, value]) => {
      // TEMPORAL_API_KEY is valid on its own: pair it with an invalid address so the process stops at the config.
      const extra: Record<string, string> = name === 'TEMPORAL_API_KEY' ? { TEMPORAL_ADDRESS: 'not an address' } : {};
      return { name, p: start(`config-${name}`, ['workers/main.ts'], { [name]: value, ...extra }) };
    });
    for (const { name, p } of runs) {
      const code = await p.exited;
      const text = logOf(p.file);
      assert.equal(code, 1, `${name}: exit code`);
      assert.match(text, name === 'TEMPORAL_API_KEY' ? /TEMPORAL_ADDRESS/ : new RegExp(name), `${name}: the message names the setting`);
      assertNoSecrets(`config-${name}`, text, Object.values(SECRET));
    }
  });
});
