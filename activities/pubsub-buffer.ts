/**
 * A long-lived streaming-pull subscriber per worker and subscription, feeding a
 * bounded buffer that ingestion batches take from. The client library keeps the
 * leases of buffered messages alive until a batch acks them (after its objects
 * are written) or nacks them (when the batch fails, so they are redelivered at
 * once). If the worker dies, its leases lapse and Pub/Sub redelivers.
 */
import { Duration, type Message, type PubSub, type Subscription } from '@google-cloud/pubsub';

export interface BufferOptions {
  /** Messages leased at most; flow control stops the stream beyond it. */
  maxBuffered: number;
  /** Message data leased at most, in bytes (flow control too). */
  maxBufferedBytes?: number;
  /** Lease extension limit: a batch must finish well within it. */
  maxExtensionMinutes: number;
  /**
   * The lease the client asks for and renews (otherwise it starts at 10 s and follows the acks'
   * 99th percentile). Long enough that a busy worker, whose renewals run late, does not have its
   * buffered messages redelivered while it still holds them; a dead worker's messages come back
   * after it.
   */
  minAckDeadlineSeconds?: number;
  /**
   * With no batch activity using it for this long, the buffer nacks what it holds and closes its
   * stream (the next batch on this worker opens a new one). Without this, a worker that stops
   * getting batch activities keeps its leased messages from every other worker until the
   * lease-extension limit runs out. Default 30 s.
   */
  idleReleaseMs?: number;
}

export class SubscriptionBuffer {
  private readonly subscription: Subscription;
  private queue: Message[] = [];
  /** Data bytes of the messages in `queue`. */
  private queuedBytes = 0;
  private waiters: Array<() => void> = [];
  private lastError: Error | undefined;
  private lastArrival = 0;
  /** The stream ended (a non-retryable error such as a missing subscription, or released when idle): make a new buffer. */
  broken = false;
  /** Batch activities using the buffer now. */
  private takers = 0;
  private lastTakeEnd = Date.now();
  private readonly idleTimer: NodeJS.Timeout;

  constructor(pubsub: PubSub, name: string, opts: BufferOptions) {
    this.subscription = pubsub.subscription(name, {
      flowControl: {
        maxMessages: opts.maxBuffered,
        ...(opts.maxBufferedBytes === undefined ? {} : { maxBytes: opts.maxBufferedBytes }),
        allowExcessMessages: false,
      },
      maxExtensionTime: Duration.from({ minutes: opts.maxExtensionMinutes }),
      // The client otherwise stretches each lease to the 99th percentile of its ack times (up to
      // 10 minutes), and messages that waited in this buffer while batches were slow push that up,
      // so a killed worker's messages stay held for minutes. Fixed at the subscription's
      // deadline, the lease is renewed more often and a dead worker's messages come back within it.
      ...(opts.minAckDeadlineSeconds === undefined
        ? {}
        : {
            minAckDeadline: Duration.from({ seconds: opts.minAckDeadlineSeconds }),
            maxAckDeadline: Duration.from({ seconds: opts.minAckDeadlineSeconds }),
          }),
    });
    this.subscription.on('message', (m: Message) => {
      this.queue.push(m);
      this.queuedBytes += m.length;
      this.lastArrival = Date.now();
      if (this.queue.length === 1 || this.queue.length >= this.wakeAt || this.queuedBytes >= this.wakeAtBytes) this.wake();
    });
    this.subscription.on('error', (err: Error) => {
      // The library reconnects on retryable errors and closes the stream on the others;
      // remember the error for the batch to report, and whether the stream is gone.
      this.lastError = err;
      if (!this.subscription.isOpen) this.broken = true;
      this.wake();
    });
    this.subscription.on('close', () => {
      this.broken = true;
      this.wake();
    });
    const idleReleaseMs = opts.idleReleaseMs ?? 30_000;
    this.idleTimer = setInterval(
      () => {
        if (this.takers === 0 && !this.broken && Date.now() - this.lastTakeEnd >= idleReleaseMs) {
          this.broken = true;
          void this.close().catch(() => undefined);
        }
      },
      Math.max(10, Math.min(5_000, idleReleaseMs / 2)),
    );
    this.idleTimer.unref();
  }

  private wakeAt = 1;
  private wakeAtBytes = 0;

  /**
   * Up to `max` messages and `maxBytes` of message data (but always at least one
   * message, whatever its size): returns as soon as either limit is reached, when
   * the stream has been quiet for `lingerMs` with something buffered (so a trickle
   * is not held back for the whole wait), or when `waitMs` has passed (possibly
   * with none). What is left stays buffered for the next take.
   */
  async take(max: number, waitMs: number, maxBytes = Infinity, lingerMs = 50): Promise<Message[]> {
    const deadline = Date.now() + waitMs;
    while (this.queue.length < max && this.queuedBytes < maxBytes) {
      const now = Date.now();
      const left = deadline - now;
      if (left <= 0) break;
      if (this.queue.length > 0 && now - this.lastArrival >= lingerMs) break;
      this.wakeAt = max;
      this.wakeAtBytes = maxBytes;
      const nap = this.queue.length > 0 ? Math.min(left, lingerMs) : left;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, nap);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      if ((this.lastError || this.broken) && this.queue.length === 0) {
        const err = this.lastError;
        this.lastError = undefined;
        throw new Error(`Pub/Sub subscription ${this.subscription.name} failed: ${err?.message ?? 'the stream closed'}`);
      }
    }
    let count = 0;
    let bytes = 0;
    for (const m of this.queue) {
      if (count === max || (count > 0 && bytes + m.length > maxBytes)) break;
      count++;
      bytes += m.length;
    }
    this.queuedBytes -= bytes;
    return this.queue.splice(0, count);
  }

  /**
   * Marks the buffer in use by a batch activity until the returned function is called; the idle
   * release only ever happens while no activity uses the buffer.
   */
  use(): () => void {
    this.takers++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.takers--;
      this.lastTakeEnd = Date.now();
    };
  }

  async close(): Promise<void> {
    clearInterval(this.idleTimer);
    for (const m of this.queue.splice(0)) m.nack();
    this.queuedBytes = 0;
    await this.subscription.close();
  }

  private wake(): void {
    this.wakeAt = 1;
    this.wakeAtBytes = 0;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
