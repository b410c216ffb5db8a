/** All time flows through one clock (milliseconds). Tests and replays move a manual one. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export class ManualClock implements Clock {
  constructor(private ms = 0) {}

  now(): number {
    return this.ms;
  }

  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`clock can only move forward (got ${ms} ms)`);
    this.ms += ms;
  }
}
