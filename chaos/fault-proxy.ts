/**
 * A loopback proxy between segflow and one emulator that injects real network failures
 * (genuine 503s, TCP resets, slow answers), so the code under test runs unchanged and reaches
 * it only through its normal endpoint settings. Every injected fault is counted by kind.
 * - `http`: one decision per request: `http_503` answers without forwarding; `reset_before`
 *   resets before the upstream sees the request; `reset_after` lets the upstream finish (the
 *   write happened) and then resets, which is what finds non-idempotent writes; `slow` holds it.
 * - `tcp`: for gRPC (Firestore, Pub/Sub), whose requests share long-lived HTTP/2 connections: a
 *   decision per connection when it opens and once per tick (`tcp_reset`, `tcp_slow`).
 *   `block()` refuses every connection until `unblock()`: an outage, not counted as a fault.
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { createRng, type Rng } from '../core/random.js';

export const HTTP_FAULT_KINDS = ['http_503', 'reset_before', 'reset_after', 'slow'] as const;
export const TCP_FAULT_KINDS = ['tcp_reset', 'tcp_slow'] as const;
export type HttpFaultKind = (typeof HTTP_FAULT_KINDS)[number];
export type TcpFaultKind = (typeof TCP_FAULT_KINDS)[number];
export type FaultKind = HttpFaultKind | TcpFaultKind;

export interface FaultProxyOptions {
  /** Shown in stats and errors: `gcs`, `bigquery`, `firestore`. */
  name: string;
  mode: 'http' | 'tcp';
  target: { host: string; port: number };
  /** Port to listen on; 0 (the default) picks a free one. */
  port?: number;
  /** Share of requests (http) or connection ticks (tcp) that get a fault, 0..1. */
  faultRate: number;
  /** Relative weights of the kinds of the mode; equal weights by default. */
  weights?: Partial<Record<FaultKind, number>>;
  /** How long a slow request or a stall lasts, uniform in [min, max] ms. */
  slowMs?: readonly [number, number];
  /** tcp: how often each open connection draws again. */
  tickMs?: number;
  seed: number;
}

export interface FaultProxyStats {
  name: string;
  mode: 'http' | 'tcp';
  /** Requests (http) or connections (tcp) seen. */
  seen: number;
  forwarded: number;
  faults: Record<string, number>;
  /** Upstream failures the proxy did not inject (the emulator itself refused or broke). */
  upstreamErrors: number;
  /** tcp: connections refused or cut while blocked. */
  blocked: number;
}

export class FaultProxy {
  private readonly rng: Rng;
  private server: http.Server | net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private readonly stats: FaultProxyStats;
  private readonly kinds: FaultKind[];
  private readonly weights: number[];
  private rate: number;
  private blockedNow = false;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

  constructor(private readonly opts: FaultProxyOptions) {
    if (!(opts.faultRate >= 0 && opts.faultRate <= 1)) {
      throw new Error(`fault proxy ${opts.name}: faultRate must be between 0 and 1, found ${opts.faultRate}`);
    }
    this.rng = createRng(opts.seed);
    this.rate = opts.faultRate;
    const all: readonly FaultKind[] = opts.mode === 'http' ? HTTP_FAULT_KINDS : TCP_FAULT_KINDS;
    this.kinds = all.filter((k) => (opts.weights?.[k] ?? 1) > 0);
    this.weights = this.kinds.map((k) => opts.weights?.[k] ?? 1);
    this.stats = {
      name: opts.name,
      mode: opts.mode,
      seen: 0,
      forwarded: 0,
      faults: Object.fromEntries(all.map((k) => [k, 0])),
      upstreamErrors: 0,
      blocked: 0,
    };
  }

  /** `127.0.0.1:<port>` once started. */
  get hostPort(): string {
    const addr = this.server?.address() as AddressInfo | null | undefined;
    if (!addr) throw new Error(`fault proxy ${this.opts.name} is not listening; call start() first`);
    return `127.0.0.1:${addr.port}`;
  }

  get url(): string {
    return `http://${this.hostPort}`;
  }

  setFaultRate(rate: number): void {
    this.rate = rate;
  }

  snapshot(): FaultProxyStats {
    return { ...this.stats, faults: { ...this.stats.faults } };
  }

  totalFaults(): number {
    return Object.values(this.stats.faults).reduce((a, b) => a + b, 0);
  }

  async start(): Promise<void> {
    const server = this.opts.mode === 'http' ? this.httpServer() : this.tcpServer();
    this.server = server;
    server.on('connection', (s: net.Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port ?? 0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  /** tcp: cut every connection and refuse new ones (an outage). */
  block(): void {
    this.blockedNow = true;
    for (const s of this.sockets) reset(s);
  }

  unblock(): void {
    this.blockedNow = false;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    this.agent.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** undefined: no fault this time. */
  private draw(): FaultKind | undefined {
    if (this.rate <= 0 || this.kinds.length === 0 || !this.rng.chance(this.rate)) return undefined;
    const total = this.weights.reduce((a, b) => a + b, 0);
    let x = this.rng.next() * total;
    for (let i = 0; i < this.kinds.length; i++) {
      x -= this.weights[i]!;
      if (x < 0) return this.kinds[i];
    }
    return this.kinds.at(-1);
  }

  private slowDelay(): number {
    const [min, max] = this.opts.slowMs ?? [300, 3000];
    return this.rng.int(min, max);
  }

  private count(kind: FaultKind): void {
    this.stats.faults[kind] = (this.stats.faults[kind] ?? 0) + 1;
  }

  // ---------------------------------------------------------------- http

  private httpServer(): http.Server {
    const server = http.createServer((req, res) => void this.handleHttp(req, res));
    // Clients keep connections alive; do not let Node time them out under them.
    server.keepAliveTimeout = 60_000;
    server.headersTimeout = 65_000;
    server.requestTimeout = 0;
    return server;
  }

  private async handleHttp(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    this.stats.seen++;
    const fault = this.draw() as HttpFaultKind | undefined;
    if (fault === 'reset_before') {
      this.count(fault);
      reset(req.socket);
      return;
    }
    if (fault === 'http_503') {
      this.count(fault);
      req.resume();
      req.on('end', () => {
        const body = JSON.stringify({
          error: { code: 503, message: `injected by the chaos fault proxy (${this.opts.name})`, status: 'UNAVAILABLE' },
        });
        res.writeHead(503, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
      });
      return;
    }
    if (fault === 'slow') {
      this.count(fault);
      // Hold the body too: pause, wait, then forward as usual.
      req.pause();
      await new Promise((r) => setTimeout(r, this.slowDelay()));
    }
    const headers = { ...req.headers, host: `${this.opts.target.host}:${this.opts.target.port}` };
    const upstream = http.request(
      { host: this.opts.target.host, port: this.opts.target.port, method: req.method, path: req.url, headers, agent: this.agent },
      (up) => {
        if (fault === 'reset_after') {
          // The upstream did the work; the client never learns it.
          this.count(fault);
          up.resume();
          up.on('end', () => reset(req.socket));
          return;
        }
        this.stats.forwarded++;
        res.writeHead(up.statusCode ?? 502, up.statusMessage, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', (err) => {
      this.stats.upstreamErrors++;
      if (res.headersSent) {
        reset(req.socket);
        return;
      }
      const body = JSON.stringify({ error: { code: 502, message: `fault proxy ${this.opts.name}: upstream failed: ${err.message}` } });
      res.writeHead(502, { 'content-type': 'application/json' }).end(body);
    });
    req.on('aborted', () => upstream.destroy());
    req.pipe(upstream);
  }

  // ---------------------------------------------------------------- tcp

  private tcpServer(): net.Server {
    return net.createServer((client) => {
      this.stats.seen++;
      if (this.blockedNow) {
        this.stats.blocked++;
        reset(client);
        return;
      }
      const upstream = net.connect(this.opts.target.port, this.opts.target.host);
      this.sockets.add(upstream);
      upstream.on('close', () => this.sockets.delete(upstream));
      let stalledUntil = 0;
      const cut = () => {
        reset(client);
        reset(upstream);
      };
      const forward = (from: net.Socket, to: net.Socket) => {
        from.on('data', (chunk: Buffer) => {
          const wait = stalledUntil - Date.now();
          if (wait <= 0) {
            if (!to.write(chunk)) from.pause();
            return;
          }
          // Stall this direction: hold the bytes (in order) until the stall ends.
          from.pause();
          setTimeout(() => {
            if (!to.destroyed) to.write(chunk);
            if (!from.destroyed) from.resume();
          }, wait);
        });
        to.on('drain', () => from.resume());
        from.on('error', () => to.destroy());
        from.on('close', () => to.end());
      };
      forward(client, upstream);
      forward(upstream, client);
      const decide = () => {
        if (this.blockedNow) {
          this.stats.blocked++;
          cut();
          return;
        }
        const fault = this.draw() as TcpFaultKind | undefined;
        if (fault === 'tcp_reset') {
          this.count(fault);
          cut();
        } else if (fault === 'tcp_slow') {
          this.count(fault);
          stalledUntil = Date.now() + this.slowDelay();
        }
      };
      upstream.once('connect', () => {
        this.stats.forwarded++;
        decide();
      });
      upstream.on('error', () => {
        this.stats.upstreamErrors++;
        reset(client);
      });
      const ticker = setInterval(decide, this.opts.tickMs ?? 1000);
      ticker.unref();
      client.on('close', () => clearInterval(ticker));
    });
  }
}

/** A TCP reset (RST), not a polite close: what a crashed or overloaded server looks like. */
function reset(socket: net.Socket): void {
  if (socket.destroyed) return;
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}
