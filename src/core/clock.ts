/** The clock every time-dependent part takes, so tests can fake time and nothing else. */

/** Something that tells the time. */
export interface Clock {
  now(): Date;
}

/** The real clock. */
export const systemClock: Clock = { now: () => new Date() };
