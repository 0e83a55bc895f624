// Space watch: a site (or the hot tier) that is filling up raises a `quota`
// issue before writes start failing, and a write that did fail for lack of
// space (ENOSPC) raises one at once. Each site's filesystem is read (statfs)
// every `intervalMs`; sites that cannot tell their free space (remote S3)
// are skipped. One issue per site: it resolves itself once the site is back
// under `maxUsed` and, after an ENOSPC, has more room than the failed write
// needed (that is remembered in memory only: after a restart the threshold
// alone decides).
import type { Logger } from '../log.js';
import { Periodic } from '../periodic.js';
import type { Site } from '../sites/site.js';
import type { IssueLog } from './issues.js';

export interface SpaceWatchParts {
  /** The hot tier and every site. */
  sites: Site[];
  issues: IssueLog;
  log: Logger;
  /** Fraction of a site's filesystem in use above which it is reported. */
  maxUsed: number;
  intervalMs: number;
}

const GiB = 2 ** 30;

function subject(site: string): string {
  return `site ${site}`;
}

export class SpaceWatch {
  private readonly periodic: Periodic;
  /** Bytes a write needed when it failed with ENOSPC, per site, until the space is back. */
  private readonly wanted = new Map<string, number>();

  constructor(private readonly p: SpaceWatchParts) {
    this.periodic = new Periodic('free-space check', p.intervalMs, () => this.checkAll(), p.log);
  }

  async start(): Promise<void> {
    await this.check();
    this.periodic.start(this.p.intervalMs);
  }

  stop(): Promise<void> {
    return this.periodic.stop();
  }

  /** Read every site's free space now; raise or resolve its quota issue. */
  check(): Promise<void> {
    return this.periodic.runNow();
  }

  private async checkAll(): Promise<void> {
    for (const site of this.p.sites) {
      try {
        await this.checkSite(site);
      } catch (err) {
        this.p.log.warn({ site: site.name, err: String(err) }, 'could not check free space');
      }
    }
  }

  /** A write to `site` failed for lack of space: report it now (the next check resolves it once there is room). */
  async noSpace(site: string, bytes: number): Promise<void> {
    this.wanted.set(site, Math.max(this.wanted.get(site) ?? 0, bytes));
    await this.p.issues.raise({ kind: 'quota', subject: subject(site), site, detail: this.failedWrite(site)! });
  }

  /** What a failed write left to say about `site`, while its space is not back. */
  private failedWrite(site: string): string | undefined {
    const bytes = this.wanted.get(site);
    return bytes === undefined ? undefined : `a write of ${bytes} bytes to site ${site} failed: no space left on device`;
  }

  private async checkSite(site: Site): Promise<void> {
    const cap = await site.capacity();
    if (!cap || cap.total <= 0) return;
    const used = 1 - cap.free / cap.total;
    const wanted = this.wanted.get(site.name) ?? 0;
    const fmt = (n: number) => `${(n / GiB).toFixed(2)} GiB`;
    if (used > this.p.maxUsed) {
      await this.p.issues.raise({
        kind: 'quota',
        subject: subject(site.name),
        site: site.name,
        // A failed write stays in the detail: the fullness alone would hide it.
        detail: [this.failedWrite(site.name), `site ${site.name} is ${(used * 100).toFixed(1)}% full (${fmt(cap.free)} free of ${fmt(cap.total)}); the limit is ${(this.p.maxUsed * 100).toFixed(1)}%`]
          .filter((d) => d !== undefined)
          .join('; '),
      });
    } else if (cap.free > wanted) {
      this.wanted.delete(site.name);
      await this.p.issues.resolve('quota', subject(site.name), site.name, `site ${site.name} has ${fmt(cap.free)} free (${(used * 100).toFixed(1)}% full)`);
    }
  }
}
