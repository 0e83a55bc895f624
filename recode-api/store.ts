// RECODE's store: records, their index entries, media links, audit trail,
// workflow and download events in one LevelDB. Every change to a record
// commits its index entries, link entries, audit entry and collection count
// in the same synced batch, so indexes never drift from records. Changes are
// serialised by one write lock (uniqueness checks and counts need it); reads
// never take it.
import { randomUUID } from 'node:crypto';
import { Level } from 'level';
import { RecodeError, type FieldError } from './errors.js';
import { after, keys, type RecordId } from './keys.js';
import { decodeRecord, encodeRecord } from './record-json.js';
import { CollectionSchema, DARWIN_CORE_SCHEMA, INDEXES, indexValue, UNINDEXED, type RecordData } from './schema.js';
import { refusal, WORKFLOW, type EventType, type WorkflowState } from './workflow.js';

export interface MediaLink {
  bucket: string;
  key: string;
  role: string;
}

export interface StoredRecord {
  version: number;
  created: number;
  createdBy: string;
  updated: number;
  updatedBy: string;
  status: WorkflowState;
  loan?: { event: string; borrower: string; dueDate: string };
  deleted?: { at: number; by: string; reason: string };
  data: RecordData;
  media: MediaLink[];
}

/** What a client sends: the fields and the links. */
export interface RecordInput {
  data: RecordData;
  media?: MediaLink[];
}

export interface AuditEntry {
  v: 1;
  seq: string;
  at: number;
  by: string;
  action: 'create' | 'update' | 'delete' | 'event';
  version: number;
  event?: { id: string; type: EventType };
  source?: 'import';
  changes?: Record<string, { before?: unknown; after?: unknown }>;
}

export interface WorkflowEvent {
  v: 1;
  id: string;
  type: EventType;
  at: number;
  by: string;
  records: string[];
  borrower?: string;
  dueDate?: string;
  note?: string;
}

export interface DownloadEvent {
  v: 1;
  id: string;
  by: string;
  format: string;
  query: Record<string, unknown>;
  started: number;
  finished?: number;
  records: number;
  bytes: number;
  complete: boolean;
}

export interface LinkEntry extends MediaLink {
  record: string;
}

/** Values are stored as text: JSON, a record's own JSON (record-json.ts), a count, or '' (index entries). */
type BatchOp = { type: 'put'; key: Buffer; value: string } | { type: 'del'; key: Buffer };
type Range = { gt: Buffer; lt: Buffer };

export const idOf = (data: RecordData): RecordId => [String(data.institutionCode), String(data.collectionCode), String(data.catalogNumber)];
/** A record id as one string: institution/collection/catalogue number (the first two hold no '/'). */
export const idString = (id: RecordId) => id.join('/');
export function parseId(s: string): RecordId | undefined {
  const i = s.indexOf('/');
  const j = i < 0 ? -1 : s.indexOf('/', i + 1);
  if (i <= 0 || j <= i + 1 || j === s.length - 1) return undefined;
  return [s.slice(0, i), s.slice(i + 1, j), s.slice(j + 1)];
}

/** Monotonic, sortable sequence numbers for audit entries (microseconds since epoch, never repeating). */
let lastSeq = 0;
function nextSeq(): string {
  lastSeq = Math.max(lastSeq + 1, Date.now() * 1000);
  return String(lastSeq).padStart(17, '0');
}

/**
 * The audit entry of a record's creation by an import, which is not stored:
 * the record's `created` and `createdBy` never change, so they are that
 * entry (an import writes one LevelDB entry less per record). Its sequence
 * number sorts before any entry written since (nextSeq is at least the
 * creation time in microseconds). A record shows it while its oldest stored
 * entry is not a creation; recreating a deleted record stores it first.
 */
function impliedCreate(rec: StoredRecord): AuditEntry {
  return { v: 1, seq: String(rec.created * 1000 - 1).padStart(17, '0'), at: rec.created, by: rec.createdBy, action: 'create', version: 1, source: 'import' };
}

export type UpsertOutcome = 'created' | 'updated' | 'unchanged';

export class RecodeStore {
  private lock: Promise<unknown> = Promise.resolve();
  /** Live (not deleted) records per collection, "inst\0coll" → n; authoritative under the write lock. */
  private readonly counts = new Map<string, number>();
  private current: CollectionSchema;
  /** Downloads started before this are no one's: their exports ended with an earlier process. */
  private readonly openedAt = Date.now();
  private folding: Promise<{ records: number; entries: number }> | undefined;

  private constructor(
    private readonly db: Level<Buffer, string>,
    schema: CollectionSchema,
  ) {
    this.current = schema;
  }

  static async open(path: string): Promise<RecodeStore> {
    // A large write buffer: bulk imports write ~10 entries per record, and fewer, larger flushes keep compaction behind them
    // (64 MiB against 32: at 1M imported records compaction wrote 1,276 MB against 1,470 and used ~5 µs less CPU per record).
    // Values are text encoded here, once (a record's text is also what an NDJSON export sends).
    // A block cache larger than the 8 MiB default keeps the blocks of recent searches' records.
    const db = new Level<Buffer, string>(path, { keyEncoding: 'buffer', valueEncoding: 'utf8', writeBufferSize: 64 << 20, cacheSize: 64 << 20 });
    await db.open();
    const saved = parsed<Record<string, unknown>>(await db.get(keys.schema()));
    const store = new RecodeStore(db, CollectionSchema.compile(saved ?? structuredClone(DARWIN_CORE_SCHEMA) as unknown as Record<string, unknown>));
    for await (const [k, n] of db.iterator(keys.collectionCounts())) {
      const [inst, coll] = k.subarray(2).toString('utf8').split('\0');
      store.counts.set(`${inst}\0${coll}`, Number(n));
    }
    return store;
  }

  async close(): Promise<void> {
    await this.folding?.catch(() => undefined);
    await this.db.close();
  }

  get schema(): CollectionSchema {
    return this.current;
  }

  async setSchema(json: Record<string, unknown>): Promise<CollectionSchema> {
    const compiled = CollectionSchema.compile(json);
    await this.serial(() => this.db.put(keys.schema(), JSON.stringify(json), { sync: true }));
    this.current = compiled;
    return compiled;
  }

  /** Live records per collection. */
  collections(): { institutionCode: string; collectionCode: string; records: number }[] {
    return [...this.counts].map(([k, records]) => {
      const [institutionCode = '', collectionCode = ''] = k.split('\0');
      return { institutionCode, collectionCode, records };
    });
  }

  async get(id: RecordId): Promise<StoredRecord | undefined> {
    const text = await this.db.get(keys.record(id));
    return text === undefined ? undefined : decodeRecord(text);
  }

  /** Create a record; a soft-deleted one with the same id is replaced (its history stays). */
  create(input: RecordInput, by: string): Promise<StoredRecord> {
    const id = idOf(input.data);
    return this.serial(async () => {
      const before = await this.get(id);
      if (before && !before.deleted) throw new RecodeError('DUPLICATE_RECORD', `${idString(id)} already exists`, [{ pointer: '/data/catalogNumber', detail: 'is already used in this institution and collection' }]);
      const kept = before ? await this.keepImpliedCreate(id, before) : [];
      const now = Date.now();
      const rec: StoredRecord = {
        version: (before?.version ?? 0) + 1,
        created: now,
        createdBy: by,
        updated: now,
        updatedBy: by,
        status: 'registered',
        data: input.data,
        media: input.media ?? [],
      };
      await this.commit([...kept, ...this.recordOps(id, before, rec), this.auditOp(id, rec, before, 'create', by)]);
      return rec;
    });
  }

  /** Replace a record's data and links if its version is still `ifVersion`. */
  update(id: RecordId, input: RecordInput, ifVersion: number, by: string): Promise<StoredRecord> {
    return this.serial(async () => {
      const before = await this.live(id, ifVersion);
      const changed = idOf(input.data).some((p, i) => p !== id[i]);
      if (changed) throw new RecodeError('INVALID_RECORD', 'institutionCode, collectionCode and catalogNumber identify the record and cannot change', [{ pointer: '/data/catalogNumber', detail: 'must match the record being updated' }]);
      const rec: StoredRecord = { ...before, version: before.version + 1, updated: Date.now(), updatedBy: by, data: input.data, media: input.media ?? [] };
      await this.commit([...this.recordOps(id, before, rec), this.auditOp(id, rec, before, 'update', by)]);
      return rec;
    });
  }

  /** Soft delete: the record leaves every index and search; it stays readable as deleted, with its audit trail. */
  remove(id: RecordId, reason: string, ifVersion: number, by: string): Promise<StoredRecord> {
    return this.serial(async () => {
      const before = await this.live(id, ifVersion);
      const now = Date.now();
      const rec: StoredRecord = { ...before, version: before.version + 1, updated: now, updatedBy: by, deleted: { at: now, by, reason } };
      await this.commit([...this.recordOps(id, before, rec), this.auditOp(id, rec, before, 'delete', by)]);
      return rec;
    });
  }

  /** Apply one workflow event to every listed record, or to none (each refusal listed). */
  applyEvent(
    input: { type: EventType; records: string[]; borrower?: string; dueDate?: string; note?: string },
    by: string,
  ): Promise<WorkflowEvent> {
    return this.serial(async () => {
      const ids = input.records.map(parseId);
      const problems: FieldError[] = [];
      const seen = new Set<string>();
      ids.forEach((id, i) => {
        if (!id) problems.push({ pointer: `/records/${i}`, detail: 'is not institutionCode/collectionCode/catalogNumber' });
        else if (seen.has(idString(id))) problems.push({ pointer: `/records/${i}`, detail: 'is listed twice' });
        else seen.add(idString(id));
      });
      if (problems.length > 0) throw new RecodeError('INVALID_REQUEST', 'the event lists records it cannot name', problems);
      const valid = ids as RecordId[];
      const recs = await this.getMany(valid);
      recs.forEach((r, i) => {
        const why = !r || r.deleted ? 'no such record' : refusal(input.type, r.status);
        if (why) problems.push({ pointer: `/records/${i}`, detail: `${input.records[i]}: ${why}` });
      });
      if (problems.length > 0) throw new RecodeError('TRANSITION_REFUSED', `the ${input.type} is refused for ${problems.length} of ${ids.length} record(s); nothing changed`, problems);
      const now = Date.now();
      const event: WorkflowEvent = {
        v: 1,
        id: randomUUID(),
        type: input.type,
        at: now,
        by,
        records: input.records,
        ...(input.borrower !== undefined && { borrower: input.borrower }),
        ...(input.dueDate !== undefined && { dueDate: input.dueDate }),
        ...(input.note !== undefined && { note: input.note }),
      };
      const ops: BatchOp[] = [{ type: 'put', key: keys.event(event.id), value: JSON.stringify(event) }];
      recs.forEach((before, i) => {
        const { loan: _old, ...rest } = before!;
        const rec: StoredRecord = { ...rest, version: before!.version + 1, updated: now, updatedBy: by, status: WORKFLOW[input.type].to };
        if (input.type === 'loan') rec.loan = { event: event.id, borrower: input.borrower!, dueDate: input.dueDate! };
        ops.push(...this.recordOps(valid[i]!, before, rec), this.auditOp(valid[i]!, rec, before, 'event', by, { id: event.id, type: input.type }));
      });
      await this.commit(ops);
      return event;
    });
  }

  async getEvent(id: string): Promise<WorkflowEvent | undefined> {
    return parsed(await this.db.get(keys.event(id)));
  }

  /**
   * Create or update many records in one batch, idempotent on the record id:
   * a record whose data and links are unchanged is not written again.
   */
  upsertMany(inputs: RecordInput[], by: string): Promise<UpsertOutcome[]> {
    return this.serial(async () => {
      const { batch, outcomes } = await this.stageUpserts(inputs, by);
      await this.write(batch);
      return outcomes;
    });
  }

  /**
   * upsertMany's batch, built before it is written: entries go straight into
   * the chained batch (no operation objects), and nothing staged here is
   * held while the synced write runs, so an import's garbage dies young.
   */
  private async stageUpserts(inputs: RecordInput[], by: string): Promise<{ batch: Batch; outcomes: UpsertOutcome[] }> {
    const ids = inputs.map((r) => idOf(r.data));
    const stored = await this.getManyBySpans(ids);
    const state = new Map<string, StoredRecord | undefined>();
    // Deleted records about to be recreated (rare) keep their implied creation entry.
    const kept: BatchOp[] = [];
    for (const [i, rec] of stored.entries()) if (rec?.deleted) kept.push(...(await this.keepImpliedCreate(ids[i]!, rec)));
    const batch = this.db.batch(); // no await from here until it is returned
    for (const op of kept) stage(batch, op);
    const now = Date.now();
    const outcomes = inputs.map((input, i): UpsertOutcome => {
      const id = ids[i]!;
      const k = idString(id);
      const before = state.has(k) ? state.get(k) : stored[i];
      const media = input.media ?? [];
      if (before && !before.deleted && same(before.data, input.data) && same(before.media, media)) return 'unchanged';
      const rec: StoredRecord =
        before && !before.deleted
          ? { ...before, version: before.version + 1, updated: now, updatedBy: by, data: input.data, media }
          : { version: (before?.version ?? 0) + 1, created: now, createdBy: by, updated: now, updatedBy: by, status: 'registered', data: input.data, media };
      const action = before && !before.deleted ? 'update' : 'create';
      this.stageRecord(batch, id, before, rec);
      if (before) stage(batch, this.auditOp(id, rec, before, action, by, undefined, 'import')); // else impliedCreate
      state.set(k, rec);
      return action === 'create' ? 'created' : 'updated';
    });
    return { batch, outcomes };
  }

  /** Audit entries of a record, oldest first, after `afterSeq` (the implied creation entry included). */
  async audit(id: RecordId, afterSeq: string | undefined, limit: number): Promise<AuditEntry[]> {
    const range = after(keys.audits(id), afterSeq === undefined ? undefined : keys.audit(id, afterSeq));
    const stored = (await this.db.values({ ...range, limit }).all()).map((v) => JSON.parse(v) as AuditEntry);
    if (afterSeq !== undefined || stored[0]?.action === 'create') return stored;
    const rec = await this.get(id);
    return rec ? [impliedCreate(rec), ...stored].slice(0, limit) : stored;
  }

  /** The op that stores `rec`'s implied creation entry, if it has one, before `rec` is recreated (its `created` changes). */
  private async keepImpliedCreate(id: RecordId, rec: StoredRecord): Promise<BatchOp[]> {
    const [oldest] = await this.audit(id, undefined, 1);
    return oldest?.seq === impliedCreate(rec).seq ? [{ type: 'put', key: keys.audit(id, oldest.seq), value: JSON.stringify(oldest) }] : [];
  }

  /**
   * Records' keys and stored text (record-json.ts) in key order within `range`, in chunks (deleted ones included:
   * callers filter). Keys come as text: a record key is UTF-8 (keys.ts), and a Buffer for each costs an export ~1 µs
   * of CPU per record more, most of it the collector's.
   */
  async *recordChunks(range: Range, chunk = 256, ahead = false): AsyncGenerator<[string, string][]> {
    // classic-level stops a nextv() at highWaterMarkBytes (16 KiB by default: ~30 records); let it fill the chunk.
    const it = this.db.iterator<string, string>({ gt: range.gt.toString('utf8'), lt: range.lt.toString('utf8'), keyEncoding: 'utf8', highWaterMarkBytes: chunk * 2048 });
    let next: Promise<[string, string][]> | undefined;
    try {
      for (;;) {
        const got = await (next ?? it.nextv(chunk));
        next = undefined;
        if (got.length === 0) return;
        // `ahead`, for a caller that reads the walk to its end (export, count): the next chunk is read on LevelDB's
        // thread while the caller works through this one, instead of after.
        if (ahead) {
          next = it.nextv(chunk);
          next.catch(() => {}); // awaited next time round, or in finally if the caller stops first
        }
        yield got;
      }
    } finally {
      await next?.catch(() => {});
      await it.close();
    }
  }

  /** Index keys in order within `range`, in chunks. */
  async *keyChunks(range: Range, chunk = 256): AsyncGenerator<Buffer[]> {
    const it = this.db.keys({ ...range, highWaterMarkBytes: chunk * 256 });
    try {
      for (;;) {
        const got = await it.nextv(chunk);
        if (got.length === 0) return;
        yield got;
      }
    } finally {
      await it.close();
    }
  }

  /** Records' stored text (record-json.ts) by record key (keys.record, keys.recordOfIndex), undefined where there is none. */
  getManyText(recordKeys: Buffer[]): Promise<(string | undefined)[]> {
    return this.db.getMany(recordKeys);
  }

  async getMany(ids: RecordId[]): Promise<(StoredRecord | undefined)[]> {
    return (await this.getManyText(ids.map(keys.record))).map((t) => (t === undefined ? undefined : decodeRecord(t)));
  }

  /**
   * getMany for an import's batch, reading each collection's span of the
   * batch (lowest to highest record key) with one iterator instead of one
   * lookup per record. A lookup of an absent key (every new record) still
   * charges LevelDB a seek on a file it consulted, and the compactions those
   * charges trigger cost an import of new records ~7 µs of CPU per record
   * (300k records in-process: 46-48 against 40 µs with no reads at all).
   * A span holding many more stored records than the batch names (records
   * sent out of catalogue order into a large collection) goes back to
   * lookups once it has read twice as many.
   */
  private async getManyBySpans(ids: RecordId[]): Promise<(StoredRecord | undefined)[]> {
    const recordKeys = ids.map(keys.record);
    const groups = new Map<string, number[]>();
    ids.forEach((id, i) => {
      const g = `${id[0]}\0${id[1]}`;
      const list = groups.get(g);
      if (list) list.push(i);
      else groups.set(g, [i]);
    });
    const texts: (string | undefined)[] = new Array(ids.length);
    for (const members of groups.values()) {
      let lo = recordKeys[members[0]!]!;
      let hi = lo;
      for (const i of members) {
        const k = recordKeys[i]!;
        if (Buffer.compare(k, lo) < 0) lo = k;
        if (Buffer.compare(k, hi) > 0) hi = k;
      }
      const found = await this.spanTexts(lo, hi, 2 * members.length + 100);
      if (found) for (const i of members) texts[i] = found.get(recordKeys[i]!.toString('utf8'));
      else (await this.getManyText(members.map((i) => recordKeys[i]!))).forEach((t, j) => (texts[members[j]!] = t));
    }
    return texts.map((t) => (t === undefined ? undefined : decodeRecord(t)));
  }

  /** Stored texts by record key (as text) from lo to hi inclusive, or undefined if there are more than `max`. */
  private async spanTexts(lo: Buffer, hi: Buffer, max: number): Promise<Map<string, string> | undefined> {
    const it = this.db.iterator<string, string>({ gte: lo.toString('utf8'), lte: hi.toString('utf8'), keyEncoding: 'utf8', limit: max + 1, highWaterMarkBytes: 256 * 2048 });
    try {
      const found = new Map<string, string>();
      for (;;) {
        const got = await it.nextv(256);
        if (got.length === 0) return found;
        for (const [k, v] of got) found.set(k, v);
        if (found.size > max) return undefined;
      }
    } finally {
      await it.close();
    }
  }

  /** Media link entries in (bucket, key) order, from after `afterKey`. */
  async *links(afterKey?: Buffer): AsyncGenerator<[Buffer, LinkEntry]> {
    for await (const [k, v] of this.db.iterator(after(keys.links(), afterKey))) yield [k, JSON.parse(v) as LinkEntry];
  }

  async startDownload(d: Omit<DownloadEvent, 'v' | 'id' | 'started' | 'records' | 'bytes' | 'complete'>): Promise<DownloadEvent> {
    const ev: DownloadEvent = { v: 1, id: randomUUID(), started: Date.now(), records: 0, bytes: 0, complete: false, ...d };
    await this.db.put(keys.download(ev.id), JSON.stringify(ev), { sync: true });
    return ev;
  }

  async finishDownload(ev: DownloadEvent): Promise<void> {
    await this.db.put(keys.download(ev.id), JSON.stringify({ ...ev, finished: Date.now() }), { sync: true });
  }

  async getDownload(id: string): Promise<DownloadEvent | undefined> {
    return parsed(await this.db.get(keys.download(id)));
  }

  /**
   * Count download `download` once for each record: one new entry per record,
   * nothing read (see keys.ts). An entry is keyed by its download, so writing
   * it twice still counts once and concurrent downloads never touch the same
   * key. Not synced, as counts are statistics: the download event's synced
   * finish takes them to disk with it (LevelDB's log is written in order),
   * except across a switch to a new log, whose predecessor is not synced, so
   * a crash can lose some counts, never a record.
   */
  async countDownloads(download: string, ids: RecordId[]): Promise<void> {
    // A chained batch: abstract-level's array batch copies and re-checks every operation first.
    const batch = this.db.batch();
    const key = keys.downloadCount(download);
    for (const id of ids) batch.put(key(id), '1');
    await batch.write();
  }

  /**
   * Sums the count entries of finished downloads into each record's entry
   * without a download, so counts keep one entry per record however many
   * exports ran. A download still running keeps its entries (its writes may
   * still land); one an earlier process left unfinished is folded. A record's
   * new sum and the entries it absorbs go in one batch, so a crash part-way
   * loses and doubles nothing. One fold at a time.
   */
  foldDownloadCounts(): Promise<{ records: number; entries: number }> {
    this.folding ??= this.fold().finally(() => (this.folding = undefined));
    return this.folding;
  }

  private async fold(): Promise<{ records: number; entries: number }> {
    const done = new Set<string>();
    for await (const v of this.db.values(keys.downloads())) {
      const ev = JSON.parse(v) as DownloadEvent;
      if (ev.finished !== undefined || ev.started < this.openedAt) done.add(keys.downloadTag(ev.id));
    }
    let ops: BatchOp[] = [];
    let records = 0;
    let entries = 0;
    let record: Buffer | undefined; // the current record's entry without a download
    let sum = 0;
    let absorbed: Buffer[] = [];
    const closeRecord = async () => {
      if (record && absorbed.length > 0) {
        ops.push({ type: 'put', key: record, value: String(sum) }, ...absorbed.map((key): BatchOp => ({ type: 'del', key })));
        records++;
        entries += absorbed.length;
      }
      absorbed = [];
      sum = 0;
      if (ops.length >= 10_000) {
        await this.db.batch(ops);
        ops = [];
      }
    };
    for await (const [k, v] of this.db.iterator(keys.allDownloadCounts())) {
      const { base, tag } = keys.countEntryParts(k);
      if (!record || !base.equals(record)) {
        await closeRecord();
        record = Buffer.from(base);
      }
      if (tag === undefined) sum += Number(v);
      else if (done.has(tag)) {
        sum += Number(v);
        absorbed.push(k);
      }
    }
    await closeRecord();
    if (ops.length > 0) await this.db.batch(ops);
    return { records, entries };
  }

  /** How many downloads exported the record: the sum of its count entries. */
  async downloadCount(id: RecordId): Promise<number> {
    let n = 0;
    for await (const v of this.db.values(keys.downloadCounts(id))) n += Number(v);
    return n;
  }

  // ---------------------------------------------------------------------------

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(() => {
      this.pendingCounts.clear(); // left over only by a batch that failed
      return fn();
    });
    this.lock = run.catch(() => {});
    return run;
  }

  private async live(id: RecordId, ifVersion: number): Promise<StoredRecord> {
    const rec = await this.get(id);
    if (!rec) throw new RecodeError('NOT_FOUND', `no record ${idString(id)}`);
    if (rec.deleted) throw new RecodeError('RECORD_DELETED', `${idString(id)} was deleted: ${rec.deleted.reason}`, [], { deleted: rec.deleted });
    if (rec.version !== ifVersion) throw new RecodeError('VERSION_CONFLICT', `${idString(id)} is at version ${rec.version}, not ${ifVersion}`, [], { currentVersion: rec.version });
    return rec;
  }

  private async commit(ops: BatchOp[]): Promise<void> {
    const batch = this.db.batch();
    for (const op of ops) stage(batch, op);
    await this.write(batch);
  }

  /** Writes a chained batch (the same atomic write as an array batch, with less work per operation), synced, with the counts it changed. */
  private async write(batch: Batch): Promise<void> {
    for (const [ck, n] of this.pendingCounts) {
      const [inst = '', coll = ''] = ck.split('\0');
      batch.put(keys.collectionCount(inst, coll), String(n));
    }
    if (batch.length === 0) return batch.close(); // nothing changed (an import of unchanged records)
    await batch.write({ sync: true });
    for (const [k, n] of this.pendingCounts) this.counts.set(k, n);
    this.pendingCounts.clear();
  }

  /** The record put plus every index, link and count change between `before` and `rec`. */
  private recordOps(id: RecordId, before: StoredRecord | undefined, rec: StoredRecord): BatchOp[] {
    const ops: BatchOp[] = [];
    this.stageRecord({ put: (key, value) => ops.push({ type: 'put', key, value }), del: (key) => ops.push({ type: 'del', key }) }, id, before, rec);
    return ops;
  }

  /** recordOps, handed to `sink` one by one. */
  private stageRecord(sink: OpSink, id: RecordId, before: StoredRecord | undefined, rec: StoredRecord): void {
    sink.put(keys.record(id), encodeRecord(rec));
    if (!before || before.deleted) {
      eachEntry(id, rec, sink);
    } else {
      const old = entries(id, before);
      const now = entries(id, rec);
      const hex = (es: Entry[]) => new Map(es.map((e) => [e.key.toString('hex'), e]));
      const oldByHex = hex(old);
      const nowByHex = hex(now);
      for (const [h, e] of oldByHex) if (!nowByHex.has(h)) sink.del(e.key);
      for (const [h, e] of nowByHex) if (!oldByHex.has(h)) sink.put(e.key, e.value);
    }
    const delta = (rec.deleted ? 0 : 1) - (before && !before.deleted ? 1 : 0);
    if (delta !== 0) {
      const ck = `${id[0]}\0${id[1]}`;
      this.pendingCounts.set(ck, (this.pendingCounts.get(ck) ?? this.counts.get(ck) ?? 0) + delta);
    }
  }

  /** Collection counts changed by ops not yet committed; commit() writes each once, in the same batch. */
  private readonly pendingCounts = new Map<string, number>();

  private auditOp(id: RecordId, rec: StoredRecord, before: StoredRecord | undefined, action: AuditEntry['action'], by: string, event?: AuditEntry['event'], source?: 'import'): BatchOp {
    const seq = nextSeq();
    const entry: AuditEntry = { v: 1, seq, at: rec.updated, by, action, version: rec.version };
    if (event) entry.event = event;
    if (source) entry.source = source;
    // A creation records no copy of the data: the first update's `before` values hold it.
    if (action !== 'create' || before) entry.changes = diff(before, rec);
    return { type: 'put', key: keys.audit(id, seq), value: JSON.stringify(entry) };
  }
}

/** An index or link entry, already in the shape of its put. */
type Entry = { type: 'put'; key: Buffer; value: string };

/** Index and link entries a record holds (none once deleted). */
const INDEXED = Object.entries(INDEXES);

function eachEntry(id: RecordId, rec: StoredRecord, sink: OpSink): void {
  if (rec.deleted) return;
  for (const [field, kind] of INDEXED) {
    const v = indexValue(kind, field === 'status' ? rec.status : rec.data[field]);
    if (v !== undefined && v !== UNINDEXED[field]) sink.put(keys.index(field, v, id), '');
  }
  for (const m of rec.media) sink.put(keys.link(m.bucket, m.key, id), JSON.stringify({ bucket: m.bucket, key: m.key, role: m.role, record: idString(id) }));
}

function entries(id: RecordId, rec: StoredRecord): Entry[] {
  const out: Entry[] = [];
  eachEntry(id, rec, { put: (key, value) => out.push({ type: 'put', key, value }), del: () => undefined });
  return out;
}

/** Where a change's operations go: a chained batch being built, or a list for one. */
interface OpSink {
  put(key: Buffer, value: string): unknown;
  del(key: Buffer): unknown;
}
type Batch = OpSink & { readonly length: number; write(options: { sync: boolean }): Promise<void>; close(): Promise<void> };

function stage(sink: OpSink, op: BatchOp): void {
  if (op.type === 'put') sink.put(op.key, op.value);
  else sink.del(op.key);
}

const parsed = <T>(text: string | undefined): T | undefined => (text === undefined ? undefined : (JSON.parse(text) as T));

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** What changed between two versions of a record: data fields by name, and the record's own fields. */
export function diff(before: StoredRecord | undefined, after: StoredRecord): Record<string, { before?: unknown; after?: unknown }> {
  const out: Record<string, { before?: unknown; after?: unknown }> = {};
  const put = (name: string, b: unknown, a: unknown) => {
    if (!same(b, a)) out[name] = { ...(b !== undefined && { before: b }), ...(a !== undefined && { after: a }) };
  };
  const b = before?.data ?? {};
  for (const f of new Set([...Object.keys(b), ...Object.keys(after.data)])) put(`data.${f}`, b[f], after.data[f]);
  put('status', before?.status, after.status);
  put('loan', before?.loan, after.loan);
  put('media', before?.media, after.media);
  put('deleted', before?.deleted, after.deleted);
  return out;
}
