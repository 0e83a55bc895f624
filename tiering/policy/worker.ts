// The policy worker: moves objects between tier states on a schedule.
//   replicated → coded   once an object's last write is codeAfter old;
//   coded → stub         once it has not been read for stubAfter, and
//                        earlier, least recently read first, while the hot
//                        tier is above its high watermark (down to its low one).
// Failure policy: coding is skipped while any site of the erasure geometry is
// down (nothing is deleted without all shards placed); an object that fails
// on its own is retried later with a growing delay. Every step is idempotent,
// so a crash anywhere leaves work the next pass simply does again.
import type { Engine } from '../engine.js';
import type { Logger } from '../log.js';
import type { EngineMetrics } from '../metrics.js';
import { Periodic } from '../periodic.js';

export interface WorkerOptions {
  /** Pause between passes. */
  intervalMs: number;
  /** Objects handled per pass and per kind of work (keeps a pass short). */
  batch: number;
  /** Sites that must be up for coding (the erasure geometry's). */
  codingSites: readonly string[];
}

export class TierWorker {
  private readonly periodic: Periodic;
  private readonly retryAt = new Map<string, { at: number; failures: number }>();

  constructor(
    private readonly engine: Engine,
    private readonly opts: WorkerOptions,
    private readonly log: Logger,
    private readonly metrics: EngineMetrics,
  ) {
    this.periodic = new Periodic('tier worker pass', opts.intervalMs, () => this.pass(), log);
  }

  start(): void {
    this.periodic.start();
  }

  stop(): Promise<void> {
    return this.periodic.stop();
  }

  /** One pass now (also what the timer runs). */
  runOnce(): Promise<void> {
    return this.periodic.runNow();
  }

  private get stopped(): boolean {
    return this.periodic.stopped;
  }

  private async pass(): Promise<void> {
    await this.codeDue();
    await this.stubIdle();
    await this.relieveHotTier();
  }

  private async codeDue(): Promise<void> {
    const due = await this.engine.dueForCoding(10_000);
    this.metrics.tierBacklog.set(due.length);
    const health = await this.engine.checkHealth();
    const down = this.opts.codingSites.filter((s) => !health[s]);
    if (down.length > 0) {
      if (due.length > 0) this.log.warn({ down, backlog: due.length }, 'coding paused: a site of the erasure geometry is down');
      return;
    }
    let done = 0;
    for (const e of due) {
      if (this.stopped || done >= this.opts.batch) break;
      if (!this.mayTry(e.bucket, e.key)) continue;
      done++;
      await this.attempt(e.bucket, e.key, 'code', () => this.engine.codeObject(e.bucket, e.key));
    }
  }

  private async stubIdle(): Promise<void> {
    for (const e of await this.engine.stubCandidates(this.opts.batch, true)) {
      if (this.stopped) break;
      await this.attempt(e.bucket, e.key, 'stub', () => this.engine.stubObject(e.bucket, e.key));
    }
  }

  private async relieveHotTier(): Promise<void> {
    const { highWatermark, lowWatermark } = this.engine.config.hot;
    if ((await this.engine.hotUsage()) <= highWatermark) return;
    const candidates = await this.engine.stubCandidates(this.opts.batch * 8, false);
    for (const e of candidates) {
      if (this.stopped || (await this.engine.hotUsage()) <= lowWatermark) return;
      await this.attempt(e.bucket, e.key, 'stub', () => this.engine.stubObject(e.bucket, e.key));
    }
    if (candidates.length === 0) this.log.warn({ highWatermark }, 'hot tier above its high watermark with nothing left to evict');
  }

  private mayTry(bucket: string, key: string): boolean {
    const r = this.retryAt.get(`${bucket}\0${key}`);
    return !r || r.at <= Date.now();
  }

  private async attempt(bucket: string, key: string, what: string, fn: () => Promise<unknown>): Promise<void> {
    const id = `${bucket}\0${key}`;
    try {
      await fn();
      this.retryAt.delete(id);
    } catch (err) {
      if ((err as { code?: string }).code === 'NO_SUCH_KEY') return; // deleted meanwhile; its queue entry went with it
      const failures = (this.retryAt.get(id)?.failures ?? 0) + 1;
      this.retryAt.set(id, { at: Date.now() + Math.min(1000 * 2 ** failures, 300_000), failures });
      this.log.warn({ bucket, key, what, failures, err: String(err) }, 'tier transition failed; will retry');
    }
  }
}
