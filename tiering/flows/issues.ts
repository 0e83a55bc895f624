// The FLOWS issue log: every problem FLOWS finds, kept in the namespace.
// An issue is identified by what it is about (kind + subject + site), so the
// same problem seen again is the same issue with a higher count; a repaired
// problem resolves itself; a person can acknowledge one. An acknowledged
// issue seen again stays acknowledged (the person knows); a resolved one
// seen again opens again.
import { createHash } from 'node:crypto';
import { KeyLock } from '../key-lock.js';
import { keys } from '../namespace/keys.js';
import { issueFacet, issueOps, type Namespace } from '../namespace/namespace.js';
import type { IssueKind, IssueRecord, IssueState } from '../namespace/records.js';
import type { FlowsMetrics } from './metrics.js';

export const ISSUE_KINDS: readonly IssueKind[] = [
  'checksum-mismatch',
  'missing-copy',
  'site-unreachable',
  'repair-failed',
  'source-changed',
  'source-unreadable',
  'stale-upload',
  'quota',
  // Raised by RECODE (recode-api/media.ts): a collection record links an object storage no longer holds.
  'broken-link',
];
export const ISSUE_STATES: readonly IssueState[] = ['open', 'resolved', 'acknowledged'];

/** What a reporter says of a problem; the log adds id, times, count and state. */
export type IssueInput = Pick<IssueRecord, 'kind' | 'subject' | 'bucket' | 'key' | 'site' | 'workstation' | 'detail'>;

export interface IssueFilter {
  kind?: IssueKind;
  state?: IssueState;
  workstation?: string;
  bucket?: string;
}

export interface IssuePage {
  issues: IssueRecord[];
  /** Pass as `after` for the next page; absent on the last page. */
  next?: string;
}

/** The dedup key of a problem. */
export function issueId(kind: IssueKind, subject: string, site = ''): string {
  return createHash('sha256').update(`${kind}\0${subject}\0${site}`).digest('hex').slice(0, 24);
}

export class IssueLog {
  private readonly locks = new KeyLock();
  /** State of every issue not resolved, by id: what the gauges count and what resolve() looks at. */
  private readonly unresolved = new Map<string, { kind: IssueKind; state: IssueState }>();
  private readonly resolvedByKind = new Map<IssueKind, number>();
  /** Unresolved issues per subject: resolving for a subject with none needs no id (a hash) worked out; a scrub asks once per copy. */
  private readonly unresolvedBySubject = new Map<string, number>();

  private constructor(
    private readonly namespace: Namespace,
    private readonly metrics: FlowsMetrics,
  ) {}

  static async open(namespace: Namespace, metrics: FlowsMetrics): Promise<IssueLog> {
    const log = new IssueLog(namespace, metrics);
    for await (const rec of namespace.issues()) log.track(undefined, rec);
    log.publish();
    return log;
  }

  /** Record that `input` was seen now: a new issue, or the existing one counted again. */
  raise(input: IssueInput): Promise<IssueRecord> {
    const id = issueId(input.kind, input.subject, input.site);
    return this.locks.run(id, async () => {
      const now = Date.now();
      const old = await this.namespace.getFlows<IssueRecord>(keys.issue(id));
      const next: IssueRecord = old
        ? {
            ...old,
            detail: input.detail,
            lastSeen: now,
            count: old.count + 1,
            state: old.state === 'resolved' ? 'open' : old.state,
          }
        : { v: 1, id, ...input, firstSeen: now, lastSeen: now, count: 1, state: 'open' };
      if (next.state === 'open') delete next.resolvedAt;
      await this.namespace.batch(issueOps(old, next));
      this.track(old, next);
      this.publish();
      return next;
    });
  }

  /** Whether any issue about `subject` is open or acknowledged. */
  hasUnresolved(subject: string): boolean {
    return this.unresolvedBySubject.has(subject);
  }

  /** The problem is gone (repaired, or found healthy): resolve its issue if one is unresolved. */
  async resolve(kind: IssueKind, subject: string, site?: string, detail?: string): Promise<boolean> {
    if (!this.unresolvedBySubject.has(subject)) return false;
    const id = issueId(kind, subject, site);
    if (!this.unresolved.has(id)) return false;
    return this.locks.run(id, async () => {
      const old = await this.namespace.getFlows<IssueRecord>(keys.issue(id));
      if (!old || old.state === 'resolved') return false;
      const next: IssueRecord = { ...old, state: 'resolved', resolvedAt: Date.now(), ...(detail && { detail }) };
      await this.namespace.batch(issueOps(old, next));
      this.track(old, next);
      this.publish();
      return true;
    });
  }

  /** Resolve every unresolved issue of `kind` about `subject`, whatever its site. */
  async resolveAll(kinds: readonly IssueKind[], subject: string, sites: readonly string[], detail?: string): Promise<number> {
    let n = 0;
    for (const kind of kinds) for (const site of sites) if (await this.resolve(kind, subject, site, detail)) n++;
    return n;
  }

  /** A person has seen it. Undefined when there is no such issue. */
  acknowledge(id: string, by: string): Promise<IssueRecord | undefined> {
    return this.locks.run(id, async () => {
      const old = await this.namespace.getFlows<IssueRecord>(keys.issue(id));
      if (!old) return undefined;
      if (old.state !== 'open') return old;
      const next: IssueRecord = { ...old, state: 'acknowledged', acknowledgedAt: Date.now(), acknowledgedBy: by };
      await this.namespace.batch(issueOps(old, next));
      this.track(old, next);
      this.publish();
      return next;
    });
  }

  get(id: string): Promise<IssueRecord | undefined> {
    return this.namespace.getFlows<IssueRecord>(keys.issue(id));
  }

  isUnresolved(kind: IssueKind, subject: string, site?: string): boolean {
    return this.unresolved.has(issueId(kind, subject, site));
  }

  /** Open (not yet acknowledged) issues of each kind. */
  openByKind(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const { kind, state } of this.unresolved.values()) if (state === 'open') out[kind] = (out[kind] ?? 0) + 1;
    return out;
  }

  /**
   * Up to `limit` issues matching `filter`, in id order after the cursor
   * `after`. The scan runs over the narrowest index facet the filter names
   * (kind and state together, else one of them, workstation, bucket), so it
   * reads only issues matching that part; the rest is checked per issue.
   */
  async list(filter: IssueFilter, limit: number, after?: string): Promise<IssuePage> {
    const { kind, state, workstation, bucket } = filter;
    const facet =
      kind && state ? issueFacet({ kind, state }) : kind ? issueFacet({ kind }) : state ? issueFacet({ state }) : workstation ? issueFacet({ workstation }) : bucket ? issueFacet({ bucket }) : undefined;
    const issues: IssueRecord[] = [];
    for await (const rec of facet === undefined ? this.namespace.issues(after) : this.indexed(facet, after)) {
      if (filter.kind && rec.kind !== filter.kind) continue;
      if (filter.state && rec.state !== filter.state) continue;
      if (filter.workstation && rec.workstation !== filter.workstation) continue;
      if (filter.bucket && rec.bucket !== filter.bucket) continue;
      if (issues.length === limit) return { issues, next: issues[issues.length - 1]!.id };
      issues.push(rec);
    }
    return { issues };
  }

  private async *indexed(facet: string, after?: string): AsyncGenerator<IssueRecord> {
    for await (const id of this.namespace.issueIds(facet, after)) {
      const rec = await this.get(id);
      if (rec) yield rec;
    }
  }

  private track(old: IssueRecord | undefined, next: IssueRecord): void {
    if (old?.state === 'resolved') this.resolvedByKind.set(old.kind, (this.resolvedByKind.get(old.kind) ?? 1) - 1);
    const was = this.unresolved.has(next.id);
    const count = this.unresolvedBySubject.get(next.subject) ?? 0;
    if (next.state === 'resolved') {
      this.unresolved.delete(next.id);
      this.resolvedByKind.set(next.kind, (this.resolvedByKind.get(next.kind) ?? 0) + 1);
      if (was && count > 1) this.unresolvedBySubject.set(next.subject, count - 1);
      else if (was) this.unresolvedBySubject.delete(next.subject);
    } else {
      this.unresolved.set(next.id, { kind: next.kind, state: next.state });
      if (!was) this.unresolvedBySubject.set(next.subject, count + 1);
    }
  }

  private publish(): void {
    const counts = new Map<string, number>();
    for (const u of this.unresolved.values()) counts.set(`${u.kind}/${u.state}`, (counts.get(`${u.kind}/${u.state}`) ?? 0) + 1);
    for (const kind of ISSUE_KINDS) {
      for (const state of ['open', 'acknowledged'] as const) this.metrics.issues.set({ kind, state }, counts.get(`${kind}/${state}`) ?? 0);
      this.metrics.issues.set({ kind, state: 'resolved' }, this.resolvedByKind.get(kind) ?? 0);
    }
  }
}
