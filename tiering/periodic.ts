// Background work that runs on a timer and on demand: the tier worker, the
// workstation ingest, the free-space watch and RECODE's count fold and link
// check. One run at a time (a call
// during a run joins it), a pause between the end of one run and the start
// of the next (so a slow run never piles up behind itself), and a stop that
// waits for the run in hand.
import type { Logger } from './log.js';

const MAX_TIMEOUT = 2 ** 31 - 1;

export class Periodic {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopping = true;

  constructor(
    /** Names the work in the log line of a failed run. */
    private readonly what: string,
    private readonly intervalMs: number,
    private readonly work: () => Promise<void>,
    private readonly log: Logger,
  ) {}

  /** Runs first after `firstDelayMs`, then `intervalMs` after each run ends. */
  start(firstDelayMs = 0): void {
    this.stopping = false;
    this.schedule(firstDelayMs);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** True once `stop` was called (or before `start`): long runs check it to end early. */
  get stopped(): boolean {
    return this.stopping;
  }

  /** One run now, or the one already under way. */
  runNow(): Promise<void> {
    this.running ??= this.work().finally(() => (this.running = undefined));
    return this.running;
  }

  private schedule(ms: number): void {
    if (this.stopping) return;
    // setTimeout takes at most 2^31-1 ms (24.8 days) and fires at once past it: a longer pause waits in steps.
    if (ms > MAX_TIMEOUT) {
      this.timer = setTimeout(() => this.schedule(ms - MAX_TIMEOUT), MAX_TIMEOUT);
      this.timer.unref();
      return;
    }
    this.timer = setTimeout(() => {
      void this.runNow()
        .catch((err) => this.log.error({ err: String(err) }, `${this.what} failed`))
        .finally(() => this.schedule(this.intervalMs));
    }, ms);
    this.timer.unref();
  }
}
