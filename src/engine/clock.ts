/** All time flows through one clock (milliseconds). Tests and replays move a manual one. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/**
 * The clock `GET /v1/clock` and `POST /v1/clock/advance` move (IPVS_CLOCK=manual): a ManualClock in
 * the process (memory engine), or the redis engine's clock key that every replica of a fleet reads.
 */
export interface SharedClock {
  now(): number | Promise<number>;
  /** Moves the clock forward by `ms` (a RangeError for a negative amount). */
  advance(ms: number): void | Promise<void>;
}

export class ManualClock implements Clock, SharedClock {
  constructor(private ms = 0) {}

  now(): number {
    return this.ms;
  }

  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`clock can only move forward (got ${ms} ms)`);
    this.ms += ms;
  }
}
