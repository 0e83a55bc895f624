// The reconciler: walks the namespace at a capped rate and checks every
// object against its record (full copies block by block, shards stripe by
// stripe), rebuilds what is missing or corrupt from healthy copies only,
// and keeps the issue log in step: a problem found raises an issue, a
// repair verified by read-back resolves it. A full pass also clears the
// storage side (orphan blobs, stale temp files, abandoned uploads; see
// orphans.ts). Full passes run on a schedule and on demand; a pass
// interrupted by a crash resumes from its persisted cursors.
//
// Failure policy: nothing is ever deleted because it looks bad; a bad copy
// is only ever overwritten by verified bytes. A site that is down is
// reported (site-unreachable) and its copies are neither judged nor
// rebuilt until it is back.
import type { Engine } from '../engine.js';
import { Codec } from '../erasure/codec.js';
import { readCoded } from '../erasure/decoder.js';
import { KeyLock } from '../key-lock.js';
import type { Logger } from '../log.js';
import { keys } from '../namespace/keys.js';
import type { Namespace } from '../namespace/namespace.js';
import type { IssueKind, LaneCursor, ObjectRecord, PassSummary, ScrubStateRecord, Segment, ShardLayout } from '../namespace/records.js';
import { readSegments } from '../read/segment-reader.js';
import type { Site } from '../sites/site.js';
import type { IssueLog } from './issues.js';
import type { FlowsMetrics } from './metrics.js';
import { sweepStorage } from './orphans.js';
import { CheckReads, checkCopy, checkShard, rebuildShards, rewriteCopy, type Finding, type Pace } from './repair.js';

export interface ReconcileOptions {
  /** Caps, so a pass never starves client traffic. */
  objectsPerSecond: number;
  bytesPerSecond: number;
  /** A full pass starts this long after the last one finished. */
  fullPassEveryMs: number;
  /** A blob no record points to is deleted once it has been seen so for this long. */
  orphanGraceMs: number;
  /** Multipart uploads older than this are aborted. */
  uploadMaxAgeMs: number;
  /** Temp files of writes older than this are removed. */
  tempMaxAgeMs: number;
}

export const DEFAULT_RECONCILE_OPTIONS: ReconcileOptions = {
  objectsPerSecond: 200,
  bytesPerSecond: 200 * 2 ** 20,
  fullPassEveryMs: 7 * 86_400_000,
  orphanGraceMs: 3_600_000,
  uploadMaxAgeMs: 7 * 86_400_000,
  tempMaxAgeMs: 3_600_000,
};

export interface ReconcilerParts {
  engine: Engine;
  namespace: Namespace;
  hot: Site;
  /** Full-replica sites of a replicated object, in order (A, B). */
  replicas: Site[];
  sites: Site[];
  issues: IssueLog;
  metrics: FlowsMetrics;
  log: Logger;
  options: ReconcileOptions;
}

export interface Scope {
  bucket?: string;
  prefix?: string;
}

export interface ReconcileStatus {
  running?: { scope: string; startedAt: number; objects: number; bytes: number; total: number; progress: number };
  /** Passes waiting for the one running. */
  queued: number;
  lastFullPass?: PassSummary;
  lastPass?: PassSummary;
  nextFullPassAt: number;
  /** Objects reported bad by reads, waiting for a check. */
  pendingChecks: number;
  openIssues: Record<string, number>;
}

/** What checking one object found and did. */
interface ObjectOutcome {
  bytes: number;
  problems: number;
  repaired: number;
  repairFailed: number;
}

const COPY_KINDS: readonly IssueKind[] = ['missing-copy', 'checksum-mismatch'];
const PERSIST_EVERY_MS = 1000;
/**
 * Objects each lane of a pass checks at once: many small ones (each is
 * mostly a message to the checking thread and a wait on the disk, and the
 * checks asked for together travel as one message), few large ones. The
 * lanes share out a quarter second of the rate caps, so the caps hold to
 * within that; an object larger than a lane's byte budget goes alone.
 */
const OBJECTS_AT_ONCE = 32;
const BYTES_AT_ONCE = 64 * 2 ** 20;
const CAP_SECONDS_AT_ONCE = 0.25;
/**
 * A pass walks its scope in two lanes at once, each in key order: objects
 * smaller than LARGE_OBJECT in one, the rest in the other. Checking a small
 * object costs CPU (a few system calls and messages per copy); checking a
 * large one mostly waits on the disk. Side by side, each kind goes on while
 * the other waits, where a single walk takes them in turn wherever key order
 * groups them (a bucket of thumbnails, a prefix of master scans). Each lane
 * lists the whole scope, checks its own kind and keeps its own resume point.
 */
const LARGE_OBJECT = 2 ** 20;
const LANES: readonly ((size: number) => boolean)[] = [(size) => size < LARGE_OBJECT, (size) => size >= LARGE_OBJECT];
/**
 * Check reads in flight at once on the event loop (blobs a site cannot
 * check on its own thread): libuv's default four threads while no client
 * reads, half of them while clients do, so a client's read always finds a
 * free thread instead of queueing behind the scrub's 4 MiB reads.
 */
const CHECK_READS_IDLE = 4;
const CHECK_READS_BESIDE_CLIENTS = 2;

/**
 * Run `fn` over `items` in order, at most `limits.count` at a time and,
 * past the first, while the sizes in flight stay within `limits.bytes`; no
 * new one starts once `go()` is false or one has failed. Resolves when all
 * started have ended; rejects with the first failure.
 */
function inFlightBounded<T>(items: readonly T[], limits: { count: number; bytes: number }, sizeOf: (item: T) => number, go: () => boolean, fn: (item: T) => Promise<void>): Promise<void> {
  return new Promise((resolve, reject) => {
    let next = 0;
    let count = 0;
    let bytes = 0;
    let failed: { err: unknown } | undefined;
    const pump = () => {
      while (!failed && next < items.length && go() && count < limits.count) {
        const item = items[next]!;
        const size = sizeOf(item);
        if (count > 0 && bytes + size > limits.bytes) break;
        next++;
        count++;
        bytes += size;
        fn(item).then(
          () => undefined,
          (err: unknown) => (failed ??= { err }),
        ).finally(() => {
          count--;
          bytes -= size;
          pump();
        });
      }
      if (count === 0) failed ? reject(failed.err) : resolve();
    };
    pump();
  });
}

function scopeName(s: Scope): string {
  return s.bucket === undefined ? '' : s.prefix ? `${s.bucket}/${s.prefix}` : s.bucket;
}

function subjectOf(rec: Pick<ObjectRecord, 'bucket' | 'key'>): string {
  return `${rec.bucket}/${rec.key}`;
}

export class Reconciler {
  private readonly siteByName: Map<string, Site>;
  private readonly codecs = new Map<string, Codec>();
  private readonly objectLocks = new KeyLock();
  private readonly reads: CheckReads;
  private tail: Promise<unknown> = Promise.resolve();
  private queued = 0;
  private running: ReconcileStatus['running'];
  private lastPass: PassSummary | undefined;
  private state!: ScrubStateRecord;
  private stopped = true;
  private timer: NodeJS.Timeout | undefined;
  private readonly orphanSeen = new Map<string, number>();
  private readonly soon = new Map<string, { bucket: string; key: string }>();
  private soonRunning: Promise<void> | undefined;
  /** Rate limiting: work done since `paceStart`. */
  private paceStart = 0;
  private paceObjects = 0;
  private paceBytes = 0;

  constructor(private readonly p: ReconcilerParts) {
    this.siteByName = new Map([p.hot, ...p.sites].map((s) => [s.name, s]));
    this.reads = new CheckReads(() => (p.engine.readsInFlight > 0 ? CHECK_READS_BESIDE_CLIENTS : CHECK_READS_IDLE));
  }

  /** Loads the persisted state; resumes an interrupted full pass; schedules the next. */
  async start(): Promise<void> {
    this.state = (await this.p.namespace.getFlows<ScrubStateRecord>(keys.flowsState('scrub'))) ?? { v: 1, since: Date.now() };
    await this.saveState();
    if (this.state.lastFullPass) this.publishLastFull(this.state.lastFullPass);
    this.stopped = false;
    // A pass interrupted under a version without lanes starts over (it keeps its start time).
    if (this.state.current && !Array.isArray(this.state.current.lanes)) this.state.current = { startedAt: this.state.current.startedAt, lanes: [] };
    if (this.state.current) {
      this.p.log.info({ lanes: this.state.current.lanes }, 'resuming an interrupted full pass');
      void this.enqueue({}).catch((err) => this.p.log.error({ err: String(err) }, 'full pass failed'));
    }
    this.scheduleNext();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.tail.catch(() => undefined);
    await this.soonRunning;
  }

  /** Run a pass over `scope` (all of the namespace when empty) after any pass already running; resolves with its summary. */
  scrub(scope: Scope = {}): Promise<PassSummary> {
    return this.enqueue(scope);
  }

  async bucketExists(bucket: string): Promise<boolean> {
    return (await this.p.namespace.getBucket(bucket)) !== undefined;
  }

  /** A read found a bad copy of this object: check and repair it soon, outside any pass. */
  checkSoon(bucket: string, key: string): void {
    this.soon.set(`${bucket}\0${key}`, { bucket, key });
    if (this.soonRunning || this.stopped) return;
    this.soonRunning = (async () => {
      while (this.soon.size > 0 && !this.stopped) {
        const [id, o] = this.soon.entries().next().value as [string, { bucket: string; key: string }];
        this.soon.delete(id);
        try {
          const rec = await this.p.namespace.getObject(o.bucket, o.key);
          if (rec) await this.checkObject(rec, await this.checkSites(), async () => undefined);
        } catch (err) {
          this.p.log.warn({ ...o, err: String(err) }, 'check after a bad read failed');
        }
      }
    })().finally(() => (this.soonRunning = undefined));
  }

  status(): ReconcileStatus {
    return {
      ...(this.running && { running: { ...this.running } }),
      queued: this.queued,
      ...(this.state.lastFullPass && { lastFullPass: this.state.lastFullPass }),
      ...(this.lastPass && { lastPass: this.lastPass }),
      nextFullPassAt: this.nextFullPassAt(),
      pendingChecks: this.soon.size,
      openIssues: this.p.issues.openByKind(),
    };
  }

  private nextFullPassAt(): number {
    return (this.state.lastFullPass?.finishedAt ?? this.state.since) + this.p.options.fullPassEveryMs;
  }

  /** Arm the timer for the next full pass; `floor` keeps a due-but-busy check from spinning. */
  private scheduleNext(floor = 0): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    // setTimeout holds at most ~24.8 days; re-check at least daily.
    const wait = Math.max(Math.min(Math.max(this.nextFullPassAt() - Date.now(), 0), 86_400_000), floor);
    this.timer = setTimeout(() => {
      if (Date.now() < this.nextFullPassAt()) this.scheduleNext();
      else if (this.running || this.queued > 0) this.scheduleNext(60_000); // a pass is under way: look again later
      else {
        // A failed pass is retried after a while, not at once.
        void this.enqueue({}).catch((err) => {
          this.p.log.error({ err: String(err) }, 'scheduled full pass failed');
          this.scheduleNext(3_600_000);
        });
      }
    }, wait);
    this.timer.unref();
  }

  private enqueue(scope: Scope): Promise<PassSummary> {
    this.queued++;
    const run = this.tail.catch(() => undefined).then(() => {
      this.queued--;
      return this.runPass(scope);
    });
    this.tail = run;
    return run;
  }

  private async saveState(): Promise<void> {
    await this.p.namespace.batch([{ type: 'put', key: keys.flowsState('scrub'), value: this.state }]);
  }

  private publishLastFull(s: PassSummary): void {
    this.p.metrics.lastFullPassTime.set(s.finishedAt / 1000);
    this.p.metrics.lastFullPassDuration.set(s.durationMs / 1000);
  }

  /** Sleep as long as it takes to keep the work since the pass began under both caps. */
  private readonly pace: Pace = async (bytes) => {
    this.paceBytes += bytes;
    const { objectsPerSecond, bytesPerSecond } = this.p.options;
    const due = Math.max(this.paceObjects / objectsPerSecond, this.paceBytes / bytesPerSecond) * 1000;
    const ahead = due - (performance.now() - this.paceStart);
    if (ahead > 5) await new Promise((r) => setTimeout(r, ahead));
    // Clients reading: let their I/O callbacks run before the next scrub read is issued.
    else if (this.p.engine.readsInFlight > 0) await new Promise((r) => setImmediate(r));
  };

  private async runPass(scope: Scope): Promise<PassSummary> {
    if (this.stopped) throw new Error('the reconciler is stopped');
    const full = scope.bucket === undefined;
    const resume = full ? this.state.current : undefined;
    const startedAt = resume?.startedAt ?? Date.now();
    const t0 = performance.now();
    const down = await this.checkSites();
    const buckets = scope.bucket !== undefined ? [scope.bucket] : (await this.p.engine.listBuckets()).map((b) => b.name).sort();
    const cursors: LaneCursor[] = LANES.map((_, i) => resume?.lanes[i] ?? { bucket: buckets[0] ?? '', objects: 0, bytes: 0 });
    const summary: PassSummary = {
      scope: scopeName(scope),
      startedAt,
      finishedAt: 0,
      durationMs: 0,
      objects: cursors.reduce((n, c) => n + c.objects, 0),
      bytes: cursors.reduce((n, c) => n + c.bytes, 0),
      problems: 0,
      repaired: 0,
      repairFailed: 0,
      orphansCleared: 0,
      uploadsAborted: 0,
    };
    const total = await this.countObjects(buckets, scope.prefix ?? '');
    this.running = { scope: summary.scope, startedAt, objects: summary.objects, bytes: summary.bytes, total, progress: 0 };
    this.paceStart = performance.now();
    this.paceObjects = 0;
    this.paceBytes = 0;
    const { objectsPerSecond, bytesPerSecond } = this.p.options;
    const atOnce = {
      count: Math.max(1, Math.floor(Math.min(OBJECTS_AT_ONCE, (objectsPerSecond * CAP_SECONDS_AT_ONCE) / LANES.length))),
      bytes: Math.min(BYTES_AT_ONCE, (bytesPerSecond * CAP_SECONDS_AT_ONCE) / LANES.length),
    };
    let savedAt = performance.now();
    const save = async () => {
      savedAt = performance.now();
      this.state.current = { startedAt, lanes: cursors.map((c) => ({ ...c })) };
      await this.saveState();
    };
    if (full) await save();
    let failed = false;
    const go = () => !this.stopped && !failed;
    const walk = async (lane: number): Promise<void> => {
      const holds = LANES[lane]!;
      const from = cursors[lane]!;
      const done = { objects: from.objects, bytes: from.bytes };
      for (const bucket of buckets) {
        if (bucket < from.bucket) continue;
        let after = bucket === from.bucket ? from.after : undefined;
        for (;;) {
          if (!go()) return;
          const page = await this.p.engine.listObjects(bucket, { prefix: scope.prefix ?? '', maxKeys: 100, ...(after !== undefined && { after }) }).catch((err) => {
            if ((err as { code?: string }).code === 'NO_SUCH_BUCKET') return undefined; // deleted meanwhile
            throw err;
          });
          if (!page) break;
          await inFlightBounded(page.objects.filter((rec) => holds(rec.size)), atOnce, (rec) => rec.size, go, async (rec) => {
            this.paceObjects++;
            const out = await this.scrubObject(rec, down, this.pace);
            done.objects++;
            done.bytes += out.bytes;
            summary.objects++;
            summary.bytes += out.bytes;
            summary.problems += out.problems;
            summary.repaired += out.repaired;
            summary.repairFailed += out.repairFailed;
            this.p.metrics.scrubObjects.inc();
            this.p.metrics.scrubBytes.inc(out.bytes);
            this.running = { ...this.running!, objects: summary.objects, bytes: summary.bytes, progress: total > 0 ? Math.min(summary.objects / total, 1) : 1 };
            this.p.metrics.scrubProgress.set(this.running.progress);
            this.p.metrics.scrubBacklog.set(Math.max(total - summary.objects, 0));
          });
          if (!go()) return;
          // A lane's resume point moves a whole page at a time, once every object of its kind on the page is checked.
          if (page.last !== undefined) cursors[lane] = { bucket, after: page.last, ...done };
          if (full && performance.now() - savedAt > PERSIST_EVERY_MS) await save();
          if (!page.isTruncated || page.last === undefined) break;
          after = page.last;
        }
      }
    };
    try {
      const lanes = await Promise.allSettled(LANES.map((_, i) => walk(i).catch((err: unknown) => ((failed = true), Promise.reject(err)))));
      for (const l of lanes) if (l.status === 'rejected') throw l.reason;
      if (this.stopped) throw new Error('the reconciler stopped during a pass');
      if (full) {
        const swept = await sweepStorage({ ...this.p, down, orphanSeen: this.orphanSeen });
        summary.orphansCleared = swept.orphansCleared;
        summary.uploadsAborted = swept.uploadsAborted;
      }
    } finally {
      this.running = undefined;
      this.p.metrics.scrubProgress.set(1);
      this.p.metrics.scrubBacklog.set(0);
    }
    summary.finishedAt = Date.now();
    summary.durationMs = resume ? summary.finishedAt - startedAt : Math.round(performance.now() - t0);
    this.lastPass = summary;
    if (full) {
      const { current: _, ...rest } = this.state;
      this.state = { ...rest, lastFullPass: summary };
      await this.saveState();
      this.publishLastFull(summary);
      this.scheduleNext();
    }
    this.p.log.info({ ...summary }, 'reconciler pass finished');
    return summary;
  }

  private async countObjects(buckets: string[], prefix: string): Promise<number> {
    let n = 0;
    for (const bucket of buckets) n += await this.p.namespace.countObjects(bucket, prefix);
    return n;
  }

  /** Sites that are down now; each raises (or resolves) a site-unreachable issue. */
  private async checkSites(): Promise<Set<string>> {
    const health = await this.p.engine.checkHealth();
    const down = new Set<string>();
    for (const [site, up] of Object.entries(health)) {
      if (up) await this.p.issues.resolve('site-unreachable', `site ${site}`, site, 'the site answers again');
      else {
        down.add(site);
        await this.p.issues.raise({ kind: 'site-unreachable', subject: `site ${site}`, site, detail: `site ${site} does not answer; its copies are not checked` });
      }
    }
    return down;
  }

  /** The sites holding full copies of `rec` that are up. */
  private copySites(rec: ObjectRecord, down: ReadonlySet<string>): Site[] {
    return rec.copies.filter((n) => !down.has(n)).map((n) => this.siteByName.get(n)).filter((s): s is Site => s !== undefined);
  }

  /** Each shard's finding, side by side; undefined for a shard whose site is down or unknown. */
  private shardFindings(layout: ShardLayout, down: ReadonlySet<string>, pace: Pace): Promise<(Finding | undefined)[]> {
    return Promise.all(
      layout.shards.map((sh, i) => {
        const site = this.siteByName.get(sh.site);
        return !site || down.has(sh.site) ? undefined : checkShard(site, layout, i, this.reads, pace);
      }),
    );
  }

  /** Replica sites, up now, that a replicated object has no copy on (written while one was down). */
  private missingReplicas(rec: ObjectRecord, down: ReadonlySet<string>): Site[] {
    return rec.tier === 'replicated' ? this.p.replicas.filter((s) => !rec.copies.includes(s.name) && !down.has(s.name)) : [];
  }

  private codecFor(k: number, m: number): Codec {
    const id = `${k}+${m}`;
    let c = this.codecs.get(id);
    if (!c) this.codecs.set(id, (c = new Codec(k, m)));
    return c;
  }

  /**
   * Check one object as a pass does. Most objects are healthy and nobody
   * else is at them, so their copies are checked first without the object's
   * lock or a fresh read of its record (on the event loop that serves
   * clients, those cost more than the checks themselves). Only an object
   * with a finding, an unresolved issue or a missing replica goes on to
   * checkObject, which checks it again under the lock against its current
   * record: the finding may be a write or delete that raced this look.
   */
  private async scrubObject(rec: ObjectRecord, down: ReadonlySet<string>, pace: Pace): Promise<ObjectOutcome> {
    let looked = 0;
    const counted: Pace = async (n) => {
      looked += n;
      await pace(n);
    };
    if (!this.p.issues.hasUnresolved(subjectOf(rec)) && this.missingReplicas(rec, down).length === 0 && (await this.looksHealthy(rec, down, counted))) {
      return { bytes: looked, problems: 0, repaired: 0, repairFailed: 0 };
    }
    const out = await this.checkObject(rec, down, pace);
    return { ...out, bytes: out.bytes + looked };
  }

  /** Every copy and shard of `rec` passes its check (the first that does not ends the look). */
  private async looksHealthy(rec: ObjectRecord, down: ReadonlySet<string>, pace: Pace): Promise<boolean> {
    const sites = this.copySites(rec, down);
    for (const seg of rec.segments) {
      const findings = await Promise.all(sites.map((site) => checkCopy(site, seg, this.reads, pace)));
      if (findings.some((f) => f.state !== 'ok')) return false;
    }
    return !rec.layout || (await this.shardFindings(rec.layout, down, pace)).every((f) => !f || f.state === 'ok');
  }

  /** Check one object and repair what can be repaired. Never throws for what it finds. */
  checkObject(rec: ObjectRecord, down: ReadonlySet<string>, pace: Pace): Promise<ObjectOutcome> {
    return this.objectLocks.run(subjectOf(rec), async () => {
      const out: ObjectOutcome = { bytes: 0, problems: 0, repaired: 0, repairFailed: 0 };
      const counted: Pace = async (n) => {
        out.bytes += n;
        await pace(n);
      };
      // The record may have changed since the listing read it.
      const cur = await this.p.namespace.getObject(rec.bucket, rec.key);
      if (!cur || cur.etag !== rec.etag || cur.lastModified !== rec.lastModified) return out;
      await this.checkCopies(cur, down, counted, out);
      await this.checkShards(cur, down, counted, out);
      await this.restoreReplicas(cur, down, counted, out);
      if (out.repairFailed === 0) await this.p.issues.resolve('repair-failed', subjectOf(cur), undefined, 'every copy and shard is healthy again');
      return out;
    });
  }

  private async raise(rec: ObjectRecord, kind: IssueKind, site: string, detail: string, out: ObjectOutcome): Promise<void> {
    out.problems++;
    await this.p.issues.raise({ kind, subject: subjectOf(rec), bucket: rec.bucket, key: rec.key, site, detail });
  }

  private async repairFailed(rec: ObjectRecord, what: string, detail: string, out: ObjectOutcome): Promise<void> {
    out.repairFailed++;
    this.p.metrics.repairs.inc({ what, result: 'failed' });
    this.p.log.warn({ bucket: rec.bucket, key: rec.key, what, detail }, 'repair failed');
    await this.p.issues.raise({ kind: 'repair-failed', subject: subjectOf(rec), bucket: rec.bucket, key: rec.key, detail });
  }

  private async repaired(rec: ObjectRecord, what: string, site: string, out: ObjectOutcome): Promise<void> {
    out.repaired++;
    this.p.metrics.repairs.inc({ what, result: 'done' });
    this.p.log.info({ bucket: rec.bucket, key: rec.key, what, site }, 'repaired');
    await this.p.issues.resolveAll(COPY_KINDS, subjectOf(rec), [site], `rebuilt and verified at ${new Date().toISOString()}`);
  }

  private async judge(rec: ObjectRecord, site: string, f: Finding, out: ObjectOutcome): Promise<boolean> {
    if (f.state === 'ok') {
      await this.p.issues.resolveAll(COPY_KINDS, subjectOf(rec), [site], 'found healthy');
      return true;
    }
    await this.raise(rec, f.state === 'missing' ? 'missing-copy' : 'checksum-mismatch', site, f.detail, out);
    return false;
  }

  /** Full copies (hot tier and replicas): each segment on each site that should hold it. */
  private async checkCopies(rec: ObjectRecord, down: ReadonlySet<string>, pace: Pace, out: ObjectOutcome): Promise<void> {
    const sites = this.copySites(rec, down);
    for (const [i, seg] of rec.segments.entries()) {
      // Copies live on different sites (disks): read them side by side.
      const findings = await Promise.all(sites.map((site) => checkCopy(site, seg, this.reads, pace)));
      const good: Site[] = [];
      const bad: Site[] = [];
      for (const [j, site] of sites.entries()) ((await this.judge(rec, site.name, findings[j]!, out)) ? good : bad).push(site);
      for (const target of bad) await this.repairCopy(rec, i, seg, target, good, pace, out);
    }
  }

  private async repairCopy(rec: ObjectRecord, index: number, seg: Segment, target: Site, good: Site[], pace: Pace, out: ObjectOutcome): Promise<boolean> {
    const offset = rec.segments.slice(0, index).reduce((n, s) => n + s.size, 0);
    const source = good[0]
      ? readSegments([seg], [good[0]], { start: 0, end: seg.size }, () => undefined)
      : rec.layout
        ? readCoded(rec.layout, (n) => this.siteByName.get(n), this.codecFor(rec.layout.k, rec.layout.m), { start: offset, end: offset + seg.size }, () => undefined)
        : undefined;
    if (!source) {
      await this.repairFailed(rec, 'copy', `no healthy copy of blob ${seg.blob} to rebuild site ${target.name}'s from`, out);
      return false;
    }
    try {
      await rewriteCopy(target, seg, source, this.reads, pace);
    } catch (err) {
      await this.repairFailed(rec, 'copy', `rebuilding blob ${seg.blob} on site ${target.name}: ${(err as Error).message}`, out);
      return false;
    }
    await this.repaired(rec, 'copy', target.name, out);
    return true;
  }

  /** Shards of a coded object: rebuild the bad ones from k healthy ones. */
  private async checkShards(rec: ObjectRecord, down: ReadonlySet<string>, pace: Pace, out: ObjectOutcome): Promise<void> {
    const layout = rec.layout;
    if (!layout) return;
    const good: number[] = [];
    const bad: number[] = [];
    const findings = await this.shardFindings(layout, down, pace);
    for (const [i, f] of findings.entries()) if (f) ((await this.judge(rec, layout.shards[i]!.site, f, out)) ? good : bad).push(i);
    if (bad.length === 0) return;
    try {
      await rebuildShards(layout, (n) => this.siteByName.get(n), this.codecFor(layout.k, layout.m), good, bad, pace);
    } catch (err) {
      await this.repairFailed(rec, 'shard', `rebuilding shard${bad.length > 1 ? 's' : ''} ${bad.join(', ')}: ${(err as Error).message}`, out);
      return;
    }
    for (const i of bad) await this.repaired(rec, 'shard', layout.shards[i]!.site, out);
  }

  /**
   * A replicated object written while a replica site was down has fewer
   * copies than the policy asks for: copy it onto the missing replicas and
   * record them.
   */
  private async restoreReplicas(rec: ObjectRecord, down: ReadonlySet<string>, pace: Pace, out: ObjectOutcome): Promise<void> {
    const missing = this.missingReplicas(rec, down);
    if (missing.length === 0) return;
    const good = this.copySites(rec, down);
    const added: string[] = [];
    for (const target of missing) {
      await this.raise(rec, 'missing-copy', target.name, `under-replicated: no copy on site ${target.name}`, out);
      let ok = true;
      for (const [i, seg] of rec.segments.entries()) if (!(await this.repairCopy(rec, i, seg, target, good, pace, out))) ok = false;
      if (ok) added.push(target.name);
    }
    if (added.length === 0) return;
    await this.p.engine.updateObject(rec.bucket, rec.key, (cur) => {
      if (cur.etag !== rec.etag || cur.lastModified !== rec.lastModified || cur.tier !== 'replicated') return cur;
      const copies = [...cur.copies, ...added.filter((n) => !cur.copies.includes(n))];
      const { underReplicated: _, ...rest } = cur;
      return { ...rest, copies, ...(copies.length - 1 < this.p.replicas.length && { underReplicated: true }) };
    });
  }
}
