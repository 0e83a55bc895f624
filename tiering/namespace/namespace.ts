// The namespace: buckets, object records and multipart uploads in LevelDB.
// Listing is an ordered range scan with seeks over rolled-up prefixes, so a
// page costs what it returns, never the size of the bucket.
import { Level } from 'level';
import { GroupCommit } from '../group-commit.js';
import { afterPrefix, keys } from './keys.js';
import type { BucketRecord, IndexesRecord, IssueKind, IssueRecord, IssueState, ObjectRecord, PartRecord, ScrubStateRecord, UploadRecord, WorkstationFileRecord } from './records.js';

/** Tier-queue entries carry no value: the key says it all. */
type QueueMark = Record<string, never>;
type Value = BucketRecord | ObjectRecord | UploadRecord | PartRecord | IssueRecord | ScrubStateRecord | WorkstationFileRecord | IndexesRecord | QueueMark;
export type BatchOp = { type: 'put'; key: Buffer; value: Value } | { type: 'del'; key: Buffer };

/** The index families Namespace.open builds when a namespace written before them lacks them. */
const INDEXES_VERSION = 1;

/** Where an object sits in the tier queues and the SHA-256 index (see keys.ts). */
function indexEntries(rec: ObjectRecord): Buffer[] {
  const out = rec.sha256 ? [keys.sha256(rec.bucket, rec.sha256, rec.key)] : [];
  if (rec.tier === 'replicated') out.push(keys.tierQueue('T', rec.lastModified, rec.bucket, rec.key));
  if (rec.tier === 'coded' && rec.copies.includes('hot')) out.push(keys.tierQueue('H', lastAccess(rec), rec.bucket, rec.key));
  return out;
}

/** What GET /flows/issues can filter on; a facet names one value of each field it holds. */
export interface IssueFacetQuery {
  kind?: IssueKind;
  state?: IssueState;
  workstation?: string;
  bucket?: string;
}

/** The facet string of a filter: "kind=quota,state=open". */
export function issueFacet(q: IssueFacetQuery): string {
  return (['kind', 'state', 'workstation', 'bucket'] as const)
    .filter((f) => q[f] !== undefined)
    .map((f) => `${f}=${q[f]}`)
    .join(',');
}

/** Every facet an issue is indexed under (family X): a filter on any one or on kind and state together reads only matches. */
function issueFacets(rec: IssueRecord): string[] {
  return [
    issueFacet({ kind: rec.kind }),
    issueFacet({ state: rec.state }),
    issueFacet({ kind: rec.kind, state: rec.state }),
    ...(rec.workstation !== undefined ? [issueFacet({ workstation: rec.workstation })] : []),
    ...(rec.bucket !== undefined ? [issueFacet({ bucket: rec.bucket })] : []),
  ];
}

/** The batch ops that replace issue `old` with `next` and keep its index entries in step. Every issue write goes through here. */
export function issueOps(old: IssueRecord | undefined, next: IssueRecord): BatchOp[] {
  const puts = issueFacets(next);
  const dels = old ? issueFacets(old).filter((f) => !puts.includes(f)) : [];
  return [
    { type: 'put', key: keys.issue(next.id), value: next },
    ...puts.map((f): BatchOp => ({ type: 'put', key: keys.issueIndex(f, next.id), value: {} })),
    ...dels.map((f): BatchOp => ({ type: 'del', key: keys.issueIndex(f, old!.id) })),
  ];
}

export function lastAccess(rec: ObjectRecord): number {
  return rec.lastAccess ?? rec.lastModified;
}

/**
 * The batch ops that replace object record `old` with `next` (either may be
 * absent) and keep the tier queues in step. Every object write goes through
 * here, so the queues can never drift from the records.
 */
export function objectOps(old: ObjectRecord | undefined, next: ObjectRecord | undefined): BatchOp[] {
  const dels = old ? indexEntries(old) : [];
  const puts = next ? indexEntries(next) : [];
  const ops: BatchOp[] = dels.filter((d) => !puts.some((p) => p.equals(d))).map((key) => ({ type: 'del', key }));
  if (next) ops.push({ type: 'put', key: keys.object(next.bucket, next.key), value: next }, ...puts.map((key): BatchOp => ({ type: 'put', key, value: {} })));
  else if (old) ops.push({ type: 'del', key: keys.object(old.bucket, old.key) });
  return ops;
}

export interface QueueEntry {
  at: number;
  bucket: string;
  key: string;
}

export interface ListQuery {
  prefix: string;
  delimiter?: string;
  /** Exclusive: list keys after this one (marker, start-after, continuation). */
  after?: string;
  maxKeys: number;
}

export interface ListPage {
  objects: ObjectRecord[];
  commonPrefixes: string[];
  isTruncated: boolean;
  /** The last key or common prefix returned: where the next page resumes. */
  last?: string;
}

export class Namespace {
  /** Entries visited by listings and issue scans (exported as a metric: it proves pages are cheap). */
  entriesScanned = 0;

  private readonly durable: GroupCommit<BatchOp>;

  private constructor(private readonly db: Level<Buffer, Value>) {
    this.durable = new GroupCommit((ops) => db.batch(ops, { sync: true }));
  }

  static async open(path: string): Promise<Namespace> {
    const db = new Level<Buffer, Value>(path, { keyEncoding: 'buffer', valueEncoding: 'json' });
    await db.open();
    const ns = new Namespace(db);
    await ns.buildIndexes();
    return ns;
  }

  /**
   * A namespace written before an index family existed gets it built once,
   * here, before anything reads it: the SHA-256 index of objects and the
   * facet index of issues. Idempotent, so a crash part-way just runs it again.
   */
  private async buildIndexes(): Promise<void> {
    const mark = await this.get<IndexesRecord>(keys.flowsState('indexes'));
    if ((mark?.version ?? 0) >= INDEXES_VERSION) return;
    let ops: BatchOp[] = [];
    const flush = async () => {
      if (ops.length > 0) await this.batch(ops, false);
      ops = [];
    };
    const indexPut = (key: Buffer): BatchOp => ({ type: 'put', key, value: {} });
    for await (const rec of this.allObjects()) {
      ops.push(...indexEntries(rec).map(indexPut)); // tier-queue entries are rewritten as they are
      if (ops.length >= 1000) await flush();
    }
    for await (const rec of this.issues()) {
      ops.push(...issueFacets(rec).map((f) => indexPut(keys.issueIndex(f, rec.id))));
      if (ops.length >= 1000) await flush();
    }
    ops.push({ type: 'put', key: keys.flowsState('indexes'), value: { v: 1, version: INDEXES_VERSION } });
    await this.batch(ops);
  }

  close(): Promise<void> {
    return this.db.close();
  }

  /** Commit all ops atomically and durably (fsync) before resolving; `durable: false` for state a crash may lose (it is rebuilt). */
  batch(ops: BatchOp[], durable = true): Promise<void> {
    return durable ? this.durable.commit(ops) : this.db.batch(ops, { sync: false });
  }

  /**
   * Point reads run on the event loop: LevelDB answers a record from its
   * caches in microseconds, while a trip through libuv's thread pool costs
   * a thread wakeup per read and queues behind blob fsyncs.
   */
  private get<T extends Value>(key: Buffer): Promise<T | undefined> {
    try {
      return Promise.resolve(this.db.getSync(key) as T | undefined);
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /** A FLOWS record (issue or state) by its key (see keys.ts). */
  getFlows<T extends IssueRecord | ScrubStateRecord | WorkstationFileRecord | IndexesRecord>(key: Buffer): Promise<T | undefined> {
    return this.get(key);
  }

  /** Issues in id order from `after` (exclusive), for as long as the caller keeps reading. */
  async *issues(after?: string): AsyncGenerator<IssueRecord> {
    const from = after === undefined ? { gte: keys.issuesStart() } : { gt: keys.issue(after) };
    for await (const v of this.db.values({ ...from, lt: keys.issuesEnd() })) {
      this.entriesScanned++;
      yield v as IssueRecord;
    }
  }

  /** Ids of the issues indexed under `facet`, in id order from `after` (exclusive). */
  async *issueIds(facet: string, after?: string): AsyncGenerator<string> {
    const from = after === undefined ? { gte: keys.issueIndexStart(facet) } : { gt: keys.issueIndex(facet, after) };
    for await (const k of this.db.keys({ ...from, lt: keys.issueIndexEnd(facet) })) {
      this.entriesScanned++;
      yield keys.issueIdOf(k);
    }
  }

  /** Keys of the objects in `bucket` whose bytes have this SHA-256 (at most `limit`). */
  async keysWithSha256(bucket: string, sha256: string, limit = 16): Promise<string[]> {
    const start = keys.sha256Start(bucket, sha256);
    const found = await this.db.keys({ gte: start, lt: afterPrefix(start), limit }).all();
    return found.map((k) => keys.sha256KeyOf(bucket, k));
  }

  /** The ingest state of every file of a workstation, in path order. */
  async *workstationFiles(workstation: string): AsyncGenerator<WorkstationFileRecord> {
    for await (const v of this.db.values({ gte: keys.workstationFilesStart(workstation), lt: keys.workstationFilesEnd(workstation) })) yield v as WorkstationFileRecord;
  }

  getBucket(name: string): Promise<BucketRecord | undefined> {
    return this.get(keys.bucket(name));
  }

  async listBuckets(): Promise<BucketRecord[]> {
    return (await this.db.values({ gte: keys.bucketsStart(), lt: keys.bucketsEnd() }).all()) as BucketRecord[];
  }

  async bucketIsEmpty(bucket: string): Promise<boolean> {
    for (const [gte, lt] of [
      [keys.objectsFrom(bucket, ''), keys.objectsEnd(bucket)],
      [keys.uploadsFrom(bucket, ''), keys.uploadsEnd(bucket)],
    ] as const) {
      const found = await this.db.keys({ gte, lt, limit: 1 }).all();
      if (found.length > 0) return false;
    }
    return true;
  }

  getObject(bucket: string, key: string): Promise<ObjectRecord | undefined> {
    return this.get(keys.object(bucket, key));
  }

  getUpload(bucket: string, key: string, uploadId: string): Promise<UploadRecord | undefined> {
    return this.get(keys.upload(bucket, key, uploadId));
  }

  getPart(uploadId: string, partNumber: number): Promise<PartRecord | undefined> {
    return this.get(keys.part(uploadId, partNumber));
  }

  async listParts(uploadId: string, afterPart = 0, limit = 10_000): Promise<PartRecord[]> {
    return (await this.db
      .values({ gt: keys.part(uploadId, afterPart), lt: keys.partsEnd(uploadId), limit })
      .all()) as PartRecord[];
  }

  async listUploads(bucket: string, prefix: string, limit: number): Promise<UploadRecord[]> {
    const start = keys.uploadsFrom(bucket, prefix);
    return (await this.db.values({ gte: start, lt: afterPrefix(start), limit }).all()) as UploadRecord[];
  }

  /** Every object record, from one snapshot (for the stored-bytes gauges). */
  async *allObjects(): AsyncGenerator<ObjectRecord> {
    for await (const v of this.db.values({ gte: keys.allObjectsStart(), lt: keys.allObjectsEnd() })) {
      yield v as ObjectRecord;
    }
  }

  /** Up to `limit` entries of a tier queue with a time before `before`, oldest first. */
  async tierQueue(family: 'T' | 'H', before: number, limit: number): Promise<QueueEntry[]> {
    const found = await this.db.keys({ gte: keys.tierQueueStart(family), lt: keys.tierQueueBefore(family, before), limit }).all();
    return found.map((k) => keys.parseTierQueue(k));
  }

  /** Entries of a tier queue, oldest first, for as long as the caller keeps reading. */
  async *tierQueueAll(family: 'T' | 'H'): AsyncGenerator<QueueEntry> {
    for await (const k of this.db.keys({ gte: keys.tierQueueStart(family), lt: keys.tierQueueEnd(family) })) yield keys.parseTierQueue(k);
  }

  /** How many objects `bucket` holds under `prefix`: keys only, no record is read. */
  async countObjects(bucket: string, prefix: string): Promise<number> {
    const { from, end } = objectRange(bucket, prefix);
    const it = this.db.keys({ gte: from, lt: end });
    let n = 0;
    try {
      for (let batch = await it.nextv(1000); batch.length > 0; batch = await it.nextv(1000)) n += batch.length;
    } finally {
      await it.close();
    }
    return n;
  }

  async listObjects(bucket: string, q: ListQuery): Promise<ListPage> {
    const page: ListPage = { objects: [], commonPrefixes: [], isTruncated: false };
    if (q.maxKeys <= 0) return page;
    const { from, end } = objectRange(bucket, q.prefix);
    let start: { gte: Buffer } | { gt: Buffer } = { gte: from };
    if (q.after !== undefined && keys.object(bucket, q.after).compare(from) >= 0) {
      // Resuming after a common prefix must skip everything under it.
      const resumeKey = keys.object(bucket, q.after);
      start = q.delimiter && rollUp(q.after, q.prefix, q.delimiter) === q.after ? { gte: afterPrefix(resumeKey) } : { gt: resumeKey };
    }
    const it = this.db.iterator({ ...start, lt: end });
    try {
      let count = 0;
      for (;;) {
        const entry = await it.next();
        if (!entry) break;
        this.entriesScanned++;
        if (count === q.maxKeys) {
          page.isTruncated = true;
          break;
        }
        const [k, v] = entry;
        const key = keys.objectKeyOf(bucket, k);
        const cp = q.delimiter ? rollUp(key, q.prefix, q.delimiter) : undefined;
        if (cp !== undefined) {
          page.commonPrefixes.push(cp);
          page.last = cp;
          it.seek(afterPrefix(keys.object(bucket, cp)));
        } else {
          page.objects.push(v as ObjectRecord);
          page.last = key;
        }
        count++;
      }
    } finally {
      await it.close();
    }
    return page;
  }
}

/** The CommonPrefix `key` rolls up into, or undefined if it lists as itself. */
function rollUp(key: string, prefix: string, delimiter: string): string | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const i = key.indexOf(delimiter, prefix.length);
  return i < 0 ? undefined : key.slice(0, i + delimiter.length);
}

/** The keys of `bucket`'s objects under `prefix`: from `from` up to (not including) `end`. */
function objectRange(bucket: string, prefix: string): { from: Buffer; end: Buffer } {
  const from = keys.objectsFrom(bucket, prefix);
  return { from, end: prefix === '' ? keys.objectsEnd(bucket) : afterPrefix(from) };
}
