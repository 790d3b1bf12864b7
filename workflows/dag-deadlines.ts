/**
 * One deadline of a DAG run or task as a workflow timer: durable, costs no worker while it waits,
 * and is cancelled when the work ends first. Deterministic (workflow clock and timers only).
 */
import { CancellationScope, sleep, workflowInfo } from '@temporalio/workflow';
import { formatInstant } from '../core/time.js';
import type { DeadlineOutcome } from './dag-messages.js';

export class DeadlineWatch {
  private readonly scope = new CancellationScope();
  private missedFlag = false;
  private alertedFlag = false;
  private endedAt: number | undefined;

  /** `onMissed` runs once, when the deadline passes before `stop()`, for runs started before it. */
  constructor(
    readonly deadline: number,
    private readonly onMissed: () => void,
  ) {
    const startedAt = workflowInfo().runStartTime.getTime();
    if (startedAt >= deadline) {
      // Started after its deadline (a backfill, a rerun of an old interval): late by nature, no alert.
      this.missedFlag = true;
      return;
    }
    const wait = deadline - Date.now();
    if (wait <= 0) {
      // Started in time but first ran after the deadline (no worker was up): that is a miss to report.
      this.fire();
      return;
    }
    this.scope
      .run(() => sleep(wait))
      .then(
        () => this.fire(),
        () => undefined, // stopped in time, or the run is being cancelled
      );
  }

  get missed(): boolean {
    return this.missedFlag;
  }

  /** The work ended now; cancels the timer if it is still waiting. */
  stop(): void {
    if (this.endedAt !== undefined) return;
    this.endedAt = Date.now();
    if (!this.missedFlag) this.scope.cancel();
  }

  outcome(): DeadlineOutcome {
    const lateByMs = this.missedFlag && this.endedAt !== undefined ? Math.max(0, this.endedAt - this.deadline) : undefined;
    return {
      deadline: formatInstant(this.deadline),
      missed: this.missedFlag,
      alerted: this.alertedFlag,
      ...(lateByMs === undefined ? {} : { lateByMs }),
    };
  }

  private fire(): void {
    if (this.endedAt !== undefined || this.missedFlag) return;
    this.missedFlag = true;
    this.alertedFlag = true;
    this.onMissed();
  }
}
