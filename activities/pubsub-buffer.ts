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
  /** Lease extension limit: a batch must finish well within it. */
  maxExtensionMinutes: number;
}

export class SubscriptionBuffer {
  private readonly subscription: Subscription;
  private queue: Message[] = [];
  private waiters: Array<() => void> = [];
  private lastError: Error | undefined;
  private lastArrival = 0;
  /** The stream ended (a non-retryable error such as a missing subscription): make a new buffer. */
  broken = false;

  constructor(pubsub: PubSub, name: string, opts: BufferOptions) {
    this.subscription = pubsub.subscription(name, {
      flowControl: { maxMessages: opts.maxBuffered, allowExcessMessages: false },
      maxExtensionTime: Duration.from({ minutes: opts.maxExtensionMinutes }),
    });
    this.subscription.on('message', (m: Message) => {
      this.queue.push(m);
      this.lastArrival = Date.now();
      if (this.queue.length === 1 || this.queue.length >= this.wakeAt) this.wake();
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
  }

  private wakeAt = 1;

  /**
   * Up to `max` messages: returns as soon as `max` are buffered, when the stream
   * has been quiet for `lingerMs` with something buffered (so a trickle is not
   * held back for the whole wait), or when `waitMs` has passed (possibly with none).
   */
  async take(max: number, waitMs: number, lingerMs = 50): Promise<Message[]> {
    const deadline = Date.now() + waitMs;
    while (this.queue.length < max) {
      const now = Date.now();
      const left = deadline - now;
      if (left <= 0) break;
      if (this.queue.length > 0 && now - this.lastArrival >= lingerMs) break;
      this.wakeAt = max;
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
    return this.queue.splice(0, max);
  }

  async close(): Promise<void> {
    for (const m of this.queue.splice(0)) m.nack();
    await this.subscription.close();
  }

  private wake(): void {
    this.wakeAt = 1;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
