/**
 * The chaos fault proxy against a tiny local HTTP server: every injected fault is
 * counted by kind, each kind does what it says to the client and to the upstream,
 * and requests without a fault pass through unchanged.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { FaultProxy } from '../../chaos/fault-proxy.js';

let upstream: http.Server;
let upstreamPort: number;
/** Request bodies the upstream received, in order. */
const seenByUpstream: string[] = [];

before(async () => {
  upstream = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seenByUpstream.push(Buffer.concat(chunks).toString('utf8'));
      res.writeHead(200, { 'content-type': 'text/plain', 'x-upstream': 'yes' }).end(`echo:${req.method}:${req.url}`);
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  upstreamPort = (upstream.address() as AddressInfo).port;
});

after(async () => {
  upstream.closeAllConnections();
  await new Promise((resolve) => upstream.close(resolve));
});

type Outcome = { status: number; body: string; upstreamHeader?: string } | { error: string };

/** One request on a fresh connection (a reset must not poison the next request). */
function request(url: string, body: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = http.request(
      `${url}/path?q=1`,
      { method: 'POST', agent: false, headers: { 'content-length': Buffer.byteLength(body) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            upstreamHeader: res.headers['x-upstream'] as string | undefined,
          }),
        );
        res.on('error', (err) => resolve({ error: (err as NodeJS.ErrnoException).code ?? err.message }));
      },
    );
    req.on('error', (err) => resolve({ error: (err as NodeJS.ErrnoException).code ?? err.message }));
    req.end(body);
  });
}

async function withProxy<T>(
  opts: Omit<ConstructorParameters<typeof FaultProxy>[0], 'target' | 'mode' | 'name'> & { mode?: 'http' | 'tcp' },
  fn: (p: FaultProxy) => Promise<T>,
): Promise<T> {
  const proxy = new FaultProxy({ name: 'test', mode: 'http', target: { host: '127.0.0.1', port: upstreamPort }, ...opts });
  await proxy.start();
  try {
    return await fn(proxy);
  } finally {
    await proxy.close();
  }
}

describe('fault proxy (http)', () => {
  it('passes requests through unchanged when the fault rate is 0', async () => {
    await withProxy({ faultRate: 0, seed: 1 }, async (p) => {
      const before = seenByUpstream.length;
      const r = await request(p.url, 'hello');
      assert.deepEqual(r, { status: 200, body: 'echo:POST:/path?q=1', upstreamHeader: 'yes' });
      assert.equal(seenByUpstream[before], 'hello');
      const s = p.snapshot();
      assert.equal(s.seen, 1);
      assert.equal(s.forwarded, 1);
      assert.equal(p.totalFaults(), 0);
    });
  });

  it('http_503 answers 503 and never reaches the upstream', async () => {
    await withProxy({ faultRate: 1, weights: { http_503: 1, reset_before: 0, reset_after: 0, slow: 0 }, seed: 2 }, async (p) => {
      const before = seenByUpstream.length;
      const r = await request(p.url, 'x');
      assert.ok('status' in r && r.status === 503, JSON.stringify(r));
      assert.match((r as { body: string }).body, /injected by the chaos fault proxy/);
      assert.equal(seenByUpstream.length, before, 'upstream untouched');
      assert.equal(p.snapshot().faults.http_503, 1);
    });
  });

  it('reset_before resets the connection before the upstream sees the request', async () => {
    await withProxy({ faultRate: 1, weights: { http_503: 0, reset_before: 1, reset_after: 0, slow: 0 }, seed: 3 }, async (p) => {
      const before = seenByUpstream.length;
      const r = await request(p.url, 'y');
      assert.ok('error' in r, `expected a connection error, got ${JSON.stringify(r)}`);
      assert.match(r.error, /ECONNRESET|socket hang up/);
      assert.equal(seenByUpstream.length, before);
      assert.equal(p.snapshot().faults.reset_before, 1);
    });
  });

  it('reset_after lets the upstream do the work and then resets instead of answering', async () => {
    await withProxy({ faultRate: 1, weights: { http_503: 0, reset_before: 0, reset_after: 1, slow: 0 }, seed: 4 }, async (p) => {
      const before = seenByUpstream.length;
      const r = await request(p.url, 'write-once');
      assert.ok('error' in r, `expected a connection error, got ${JSON.stringify(r)}`);
      assert.equal(seenByUpstream.length, before + 1, 'the upstream received the request');
      assert.equal(seenByUpstream.at(-1), 'write-once');
      assert.equal(p.snapshot().faults.reset_after, 1);
    });
  });

  it('slow delays the request and then answers normally', async () => {
    await withProxy(
      { faultRate: 1, weights: { http_503: 0, reset_before: 0, reset_after: 0, slow: 1 }, slowMs: [300, 300], seed: 5 },
      async (p) => {
        const t0 = Date.now();
        const r = await request(p.url, 'slowly');
        assert.ok(Date.now() - t0 >= 290, `took ${Date.now() - t0} ms`);
        assert.deepEqual(r, { status: 200, body: 'echo:POST:/path?q=1', upstreamHeader: 'yes' });
        assert.equal(p.snapshot().faults.slow, 1);
      },
    );
  });

  it('counts every fault by kind, and the counts add up to what the client saw', async () => {
    await withProxy({ faultRate: 0.5, slowMs: [1, 5], seed: 42 }, async (p) => {
      const outcomes = [];
      for (let i = 0; i < 200; i++) outcomes.push(await request(p.url, `n${i}`));
      const s = p.snapshot();
      const ok = outcomes.filter((o) => 'status' in o && o.status === 200).length;
      const unavailable = outcomes.filter((o) => 'status' in o && o.status === 503).length;
      const errors = outcomes.filter((o) => 'error' in o).length;
      assert.equal(s.seen, 200);
      assert.equal(s.faults.http_503, unavailable);
      assert.equal(s.faults.reset_before! + s.faults.reset_after!, errors);
      // Slow requests still succeed; everything else that succeeded had no fault.
      assert.equal(ok, 200 - unavailable - errors);
      assert.equal(s.forwarded, ok);
      assert.equal(p.totalFaults(), unavailable + errors + s.faults.slow!);
      // Seeded: about half get a fault, each kind some.
      assert.ok(p.totalFaults() > 70 && p.totalFaults() < 130, `faults ${p.totalFaults()}`);
      for (const k of ['http_503', 'reset_before', 'reset_after', 'slow']) assert.ok(s.faults[k]! > 5, `${k}: ${s.faults[k]}`);
    });
  });

  it('refuses a fault rate outside 0..1 with a message naming the proxy', () => {
    assert.throws(
      () => new FaultProxy({ name: 'gcs', mode: 'http', target: { host: '127.0.0.1', port: 1 }, faultRate: 1.5, seed: 1 }),
      /fault proxy gcs: faultRate must be between 0 and 1, found 1.5/,
    );
  });
});

describe('fault proxy (tcp)', () => {
  it('forwards bytes both ways, counts resets, and refuses connections while blocked', async () => {
    await withProxy({ mode: 'tcp', faultRate: 0, seed: 7 }, async (p) => {
      const r = await request(p.url, 'over tcp');
      assert.deepEqual(r, { status: 200, body: 'echo:POST:/path?q=1', upstreamHeader: 'yes' });
      p.block();
      const refused = await request(p.url, 'blocked');
      assert.ok('error' in refused, JSON.stringify(refused));
      assert.equal(p.snapshot().blocked, 1);
      p.unblock();
      assert.deepEqual(await request(p.url, 'again'), { status: 200, body: 'echo:POST:/path?q=1', upstreamHeader: 'yes' });
      assert.equal(p.totalFaults(), 0, 'an outage is not an injected fault');
    });
    await withProxy({ mode: 'tcp', faultRate: 1, weights: { tcp_reset: 1, tcp_slow: 0 }, seed: 8 }, async (p) => {
      const r = await new Promise<string>((resolve) => {
        const s = net.connect(Number(p.hostPort.split(':')[1]), '127.0.0.1');
        s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
        s.on('close', () => resolve('closed'));
      });
      assert.match(r, /ECONNRESET|closed/);
      assert.equal(p.snapshot().faults.tcp_reset, 1);
    });
  });
});
