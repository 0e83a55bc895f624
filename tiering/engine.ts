// The storage engine: buckets, objects and multipart uploads over a namespace
// and a set of sites. Every write streams once into the hot tier and the
// replica sites, commits its namespace record in one durable batch, and only
// then returns; superseded blobs are deleted after the commit, so an
// overwrite never destroys the old bytes before the new ones are safe.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { EngineError } from './errors.js';
import { KeyLock } from './key-lock.js';
import type { Logger } from './log.js';
import type { EngineMetrics } from './metrics.js';
import { Codec } from './erasure/codec.js';
import { readCoded, type DecodeReport } from './erasure/decoder.js';
import { encodeObject } from './erasure/encoder.js';
import { shardBytes, type Geometry } from './erasure/layout.js';
import { keys } from './namespace/keys.js';
import { lastAccess, objectOps, type BatchOp, type ListPage, type Namespace, type QueueEntry } from './namespace/namespace.js';
import type { BucketRecord, ContentHeaders, ObjectRecord, PartRecord, PosixAttrs, Segment, TierState, UploadRecord } from './namespace/records.js';
import { BlockPool } from './read/block-pool.js';
import { readSegments, type ByteRange, type CopyFailure } from './read/segment-reader.js';
import type { Site } from './sites/site.js';
import { writeSegment, type Digests } from './write/segment-writer.js';
import { validateBucketName, validateKey } from './names.js';

export interface EngineConfig {
  /** Bytes per CRC32-verified block of a blob. */
  blockSize: number;
  maxObjectSize: number;
  maxPartSize: number;
  minPartSize: number;
  /** Replica sites that must take a write; fewer than all marks the object under-replicated. */
  minReplicas: number;
  /** Erasure geometry: k data + m parity pieces and the site of each. */
  geometry: Geometry;
  /** A replicated object is coded this long after its last write. */
  codeAfterMs: number;
  /** A coded object not read for this long loses its hot copy (becomes a stub). */
  stubAfterMs: number;
  /** Hot tier: a byte budget (else the hot site's filesystem), and the usage fractions eviction runs between. */
  hot: { maxBytes?: number; highWatermark: number; lowWatermark: number };
}

export const DEFAULT_ENGINE_CONFIG: EngineConfig = {
  blockSize: 1 << 20,
  maxObjectSize: 5 * 2 ** 40,
  maxPartSize: 5 * 2 ** 30,
  minPartSize: 5 * 2 ** 20,
  minReplicas: 2,
  geometry: { k: 2, m: 1, sites: ['A', 'B', 'C'], maxPieceSize: 1 << 20 },
  codeAfterMs: 15 * 60_000,
  stubAfterMs: 30 * 86_400_000,
  hot: { highWatermark: 0.9, lowWatermark: 0.8 },
};

/** What a forced or scheduled transition did to one object. */
export type TransitionResult = 'changed' | 'unchanged';

export interface EngineParts {
  namespace: Namespace;
  hot: Site;
  /** Sites that hold full replicas of new writes, in read order (A, B). */
  replicas: Site[];
  /** Every site, for health (A, B, C). */
  sites: Site[];
  config: EngineConfig;
  log: Logger;
  metrics: EngineMetrics;
}

export interface WriteInput extends ContentHeaders {
  meta: Record<string, string>;
  tags?: Record<string, string>;
  checksum?: ObjectRecord['checksum'];
  posix?: PosixAttrs;
  expectedSize?: number;
  /**
   * Called with the body's digests before anything commits; throw to refuse
   * the body. May return a checksum to store that only the caller could compute.
   */
  beforeCommit?: (digests: Digests) => Accepted | Promise<Accepted>;
}

export interface Accepted {
  checksum?: ObjectRecord['checksum'];
}

export interface ListObjectsInput {
  prefix?: string;
  delimiter?: string;
  after?: string;
  maxKeys?: number;
}

export class Engine {
  private readonly locks = new KeyLock();
  private readonly siteByName: Map<string, Site>;
  private readonly codec: Codec;
  /** Recalls (stub → hot) in flight, one per object. */
  private readonly recalls = new Map<string, Promise<ObjectRecord | undefined>>();
  private readonly stats = new TierStats();
  private readonly badCopyListeners: ((rec: ObjectRecord, f: CopyFailure) => void)[] = [];
  /** Block buffers for streamed reads, handed back by `releaseChunk` (enough for a few dozen streams). */
  private readonly blocks: BlockPool;
  private reads = 0;

  private constructor(private readonly p: EngineParts) {
    this.siteByName = new Map([p.hot, ...p.sites].map((s) => [s.name, s]));
    this.codec = new Codec(p.config.geometry.k, p.config.geometry.m);
    this.blocks = new BlockPool(p.config.blockSize, 32);
  }

  static async open(parts: EngineParts): Promise<Engine> {
    const engine = new Engine(parts);
    parts.metrics.hotWatermark.set({ level: 'high' }, parts.config.hot.highWatermark);
    parts.metrics.hotWatermark.set({ level: 'low' }, parts.config.hot.lowWatermark);
    // Counting a large namespace takes a while; the gauges fill in when done.
    void engine.countStored().catch((err) => parts.log.warn({ err: String(err) }, 'could not count stored objects'));
    await engine.checkHealth();
    return engine;
  }

  get config(): EngineConfig {
    return this.p.config;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.recalls.values()]);
    await this.p.namespace.close();
    await Promise.all([this.p.hot, ...this.p.sites].map((s) => s.close()));
  }

  /** Probe every site; updates the site_up gauge. */
  async checkHealth(): Promise<Record<string, boolean>> {
    const out: Record<string, boolean> = {};
    await Promise.all(
      [this.p.hot, ...this.p.sites].map(async (s) => {
        const up = await s.health().catch(() => false);
        out[s.name] = up;
        this.p.metrics.siteUp.set({ site: s.name }, up ? 1 : 0);
      }),
    );
    return out;
  }

  // ---- buckets ----

  async createBucket(name: string): Promise<void> {
    validateBucketName(name);
    await this.locks.run(`b:${name}`, async () => {
      if (await this.p.namespace.getBucket(name)) throw new EngineError('BUCKET_EXISTS');
      await this.p.namespace.batch([{ type: 'put', key: keys.bucket(name), value: { v: 1, name, created: Date.now() } }]);
    });
  }

  async headBucket(name: string): Promise<BucketRecord> {
    const b = await this.p.namespace.getBucket(name);
    if (!b) throw new EngineError('NO_SUCH_BUCKET');
    return b;
  }

  listBuckets(): Promise<BucketRecord[]> {
    return this.p.namespace.listBuckets();
  }

  async deleteBucket(name: string): Promise<void> {
    await this.locks.run(`b:${name}`, async () => {
      await this.headBucket(name);
      if (!(await this.p.namespace.bucketIsEmpty(name))) throw new EngineError('BUCKET_NOT_EMPTY');
      await this.p.namespace.batch([{ type: 'del', key: keys.bucket(name) }]);
    });
  }

  // ---- objects ----

  async headObject(bucket: string, key: string): Promise<ObjectRecord> {
    validateKey(key);
    const rec = await this.p.namespace.getObject(bucket, key);
    if (rec) return rec;
    await this.headBucket(bucket);
    throw new EngineError('NO_SUCH_KEY');
  }

  /**
   * The record of `bucket/key`, or undefined: one read, without asking
   * whether the bucket exists (for callers that only need to know what is
   * there, like a filesystem lookup).
   */
  findObject(bucket: string, key: string): Promise<ObjectRecord | undefined> {
    validateKey(key);
    return this.p.namespace.getObject(bucket, key);
  }

  async putObject(bucket: string, key: string, body: AsyncIterable<Buffer>, input: WriteInput): Promise<ObjectRecord> {
    validateKey(key);
    await this.headBucket(bucket);
    const { written, accepted } = await this.writeBlob(body, input, this.p.config.maxObjectSize);
    const checksum = accepted.checksum ?? input.checksum;
    const rec: ObjectRecord = {
      ...contentHeaders(input),
      v: 1,
      bucket,
      key,
      size: written.segment.size,
      etag: `"${written.segment.md5}"`,
      lastModified: Date.now(),
      meta: input.meta,
      tags: input.tags ?? {},
      ...(checksum && { checksum }),
      sha256: written.segment.sha256,
      segments: [written.segment],
      tier: 'replicated',
      copies: written.copies,
      ...(written.copies.length - 1 < this.p.replicas.length && { underReplicated: true }),
      ...(input.posix && { posix: input.posix }),
    };
    try {
      await this.commitObject(rec);
    } catch (err) {
      await this.deleteBlobs([written.segment], written.copies);
      throw err;
    }
    return rec;
  }

  /**
   * Bytes of `rec` (or of `range` within it), verified as they are read, in
   * any tier state. Full copies are read first; shards when there are none
   * (a stub) or when every copy fails. Reading a stub recalls it into the hot
   * tier afterwards (once, whoever else reads it meanwhile).
   */
  readObject(rec: ObjectRecord, range?: ByteRange): Readable {
    return Readable.from(this.readChunks(rec, range), { objectMode: false, highWaterMark: 1 });
  }

  /**
   * The bytes of `readObject` as chunks, the first already read, so a failure
   * to start (too many shards lost) rejects here, before a caller commits to
   * a status. Hand each chunk to `releaseChunk` once it has been sent.
   */
  async openObject(rec: ObjectRecord, range?: ByteRange): Promise<AsyncIterable<Buffer>> {
    const chunks = this.readChunks(rec, range);
    const first = await chunks.next();
    return (async function* () {
      if (first.done) return;
      yield first.value;
      yield* chunks;
    })();
  }

  /** A chunk from `openObject` is no longer needed: its buffer is read into again. */
  releaseChunk(chunk: Buffer): void {
    this.blocks.give(chunk);
  }

  /** `chunks` for a consumer done with each chunk once it asks for the next: each is released then. */
  private async *releasedOnNext(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const chunk of chunks) {
      yield chunk;
      this.blocks.give(chunk);
    }
  }

  /**
   * The same bytes as `readObject`, gathered into one buffer: for small
   * reads, where a stream's machinery would cost more than the bytes.
   */
  async readBytes(rec: ObjectRecord, range?: ByteRange): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of this.readChunks(rec, range)) chunks.push(chunk);
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  }

  private async *readChunks(rec: ObjectRecord, range?: ByteRange): AsyncGenerator<Buffer> {
    const r = range ?? { start: 0, end: rec.size };
    this.touch(rec);
    this.reads++;
    try {
      yield* rec.copies.length > 0 ? this.readCopies(rec, r) : this.readStub(rec, r);
    } finally {
      this.reads--;
    }
  }

  /** Client reads open now: background work (the scrub) yields to them. */
  get readsInFlight(): number {
    return this.reads;
  }

  private async *readCopies(rec: ObjectRecord, range: ByteRange): AsyncGenerator<Buffer> {
    const sources = rec.copies.map((n) => this.siteByName.get(n)).filter((s): s is Site => s !== undefined);
    let pos = range.start;
    try {
      for await (const chunk of readSegments(rec.segments, sources, range, (f) => this.reportBadCopy(rec, f), this.blocks)) {
        pos += chunk.length;
        yield chunk;
      }
      return;
    } catch (err) {
      if (!rec.layout || !(err instanceof EngineError && err.code === 'NO_GOOD_COPY')) throw err;
    }
    yield* readCoded(rec.layout, (n) => this.siteByName.get(n), this.codec, { start: pos, end: range.end }, (f) => this.reportBadCopy(rec, f));
  }

  private async *readStub(rec: ObjectRecord, range: ByteRange): AsyncGenerator<Buffer> {
    if (!rec.layout) throw new EngineError('NO_GOOD_COPY', 'the object has neither copies nor shards');
    const m = this.p.metrics;
    const report: DecodeReport = { degraded: false };
    const started = performance.now();
    let first = true;
    let failed = false;
    m.recallsInFlight.inc();
    try {
      for await (const chunk of readCoded(rec.layout, (n) => this.siteByName.get(n), this.codec, range, (f) => this.reportBadCopy(rec, f), report)) {
        if (first) m.recallFirstByteSeconds.observe({ path: report.degraded ? 'degraded' : 'healthy' }, (performance.now() - started) / 1000);
        first = false;
        yield chunk;
      }
      m.recallLastByteSeconds.observe({ path: report.degraded ? 'degraded' : 'healthy' }, (performance.now() - started) / 1000);
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      m.recallsInFlight.dec();
      // Bring it back into the hot tier for the reads that follow, unless the hot tier is full.
      if (!failed)
        void this.hotUsage(rec.size)
        .then((u) => (u <= this.p.config.hot.highWatermark ? this.recallObject(rec.bucket, rec.key) : undefined))
        .catch(() => undefined); // recallObject logs its own failures
    }
  }

  async deleteObject(bucket: string, key: string): Promise<void> {
    validateKey(key);
    await this.headBucket(bucket);
    await this.locks.run(objectLock(bucket, key), async () => {
      const old = await this.p.namespace.getObject(bucket, key);
      if (!old) return;
      await this.replaceRecord(old, undefined);
      await this.deleteObjectBlobs(old);
    });
  }

  /**
   * Copy an object. A copy onto itself only rewrites the record (metadata
   * replace); anything else streams the bytes through the write path.
   */
  async copyObject(
    src: ObjectRecord,
    bucket: string,
    key: string,
    input: Omit<WriteInput, 'beforeCommit' | 'expectedSize'>,
  ): Promise<ObjectRecord> {
    validateKey(key);
    await this.headBucket(bucket);
    if (src.bucket === bucket && src.key === key) {
      return this.updateObject(bucket, key, (cur) => {
        if (cur.etag !== src.etag) throw new EngineError('NO_SUCH_KEY', 'the source changed during the copy');
        return { ...cur, ...contentHeaders(input), meta: input.meta, tags: input.tags ?? cur.tags, lastModified: Date.now() };
      });
    }
    return this.putObject(bucket, key, this.readObject(src), {
      ...input,
      ...(src.checksum && !input.checksum && { checksum: src.checksum }),
      expectedSize: src.size,
    });
  }

  /** Change an object's record (tags, metadata) without touching its bytes. */
  async updateObject(bucket: string, key: string, change: (rec: ObjectRecord) => ObjectRecord): Promise<ObjectRecord> {
    return this.locks.run(objectLock(bucket, key), async () => {
      const cur = await this.headObject(bucket, key);
      const next = change(cur);
      await this.replaceRecord(cur, next);
      return next;
    });
  }

  /**
   * Move an object to another key of the same bucket as a metadata operation:
   * the record moves in one namespace batch and its blobs stay where they
   * are. An object already at `to` is replaced atomically (readers see the old
   * one or the moved one, never neither); its blobs are deleted after commit.
   */
  async renameObject(bucket: string, from: string, to: string): Promise<ObjectRecord> {
    validateKey(from);
    validateKey(to);
    await this.headBucket(bucket);
    if (from === to) return this.headObject(bucket, from);
    return this.locks.runAll([objectLock(bucket, from), objectLock(bucket, to)], async () => {
      const rec = await this.p.namespace.getObject(bucket, from);
      if (!rec) throw new EngineError('NO_SUCH_KEY');
      const old = await this.p.namespace.getObject(bucket, to);
      const moved: ObjectRecord = { ...rec, key: to };
      await this.commitChanges([
        [rec, undefined],
        [old, moved],
      ]);
      if (old) await this.deleteObjectBlobs(old);
      return moved;
    });
  }

  /**
   * Move every object under `fromPrefix` (a directory, "a/b/") to the same
   * names under `toPrefix`, as metadata only. The target must hold nothing
   * but, at most, its own `toPrefix` marker, which is replaced. Objects move
   * a page at a time, each page in one batch under the objects' locks, so a
   * crash part-way leaves every object whole under one name or the other.
   */
  async renamePrefix(bucket: string, fromPrefix: string, toPrefix: string): Promise<number> {
    validateKey(fromPrefix);
    validateKey(toPrefix);
    await this.headBucket(bucket);
    if (!fromPrefix.endsWith('/') || !toPrefix.endsWith('/')) throw new EngineError('INVALID_KEY', 'a directory prefix ends with "/"');
    if (toPrefix.startsWith(fromPrefix)) throw new EngineError('INVALID_KEY', 'cannot move a directory into itself');
    const inTarget = await this.p.namespace.listObjects(bucket, { prefix: toPrefix, maxKeys: 2 });
    if (inTarget.objects.some((o) => o.key !== toPrefix)) throw new EngineError('DIRECTORY_NOT_EMPTY');
    let moved = 0;
    for (;;) {
      const page = await this.p.namespace.listObjects(bucket, { prefix: fromPrefix, maxKeys: RENAME_PAGE });
      if (page.objects.length === 0) return moved;
      const names = page.objects.map((o) => [o.key, toPrefix + o.key.slice(fromPrefix.length)] as const);
      const lockKeys = names.flatMap(([f, t]) => [objectLock(bucket, f), objectLock(bucket, t)]);
      await this.locks.runAll(lockKeys, async () => {
        const changes: [ObjectRecord | undefined, ObjectRecord | undefined][] = [];
        const superseded: ObjectRecord[] = [];
        for (const [from, to] of names) {
          const rec = await this.p.namespace.getObject(bucket, from);
          if (!rec) continue; // deleted since the page was read
          const old = await this.p.namespace.getObject(bucket, to);
          if (old) superseded.push(old);
          changes.push([rec, undefined], [old, { ...rec, key: to }]);
          moved++;
        }
        await this.commitChanges(changes);
        for (const old of superseded) await this.deleteObjectBlobs(old);
      });
    }
  }

  /** Space for new writes: the tightest of the hot tier and the replica sites. */
  async capacity(): Promise<{ total: number; free: number } | undefined> {
    const caps = await Promise.all([this.p.hot, ...this.p.replicas].map((s) => s.capacity().catch(() => undefined)));
    const known = caps.filter((c): c is { total: number; free: number } => c !== undefined);
    if (known.length === 0) return undefined;
    return { total: Math.min(...known.map((c) => c.total)), free: Math.min(...known.map((c) => c.free)) };
  }

  async listObjects(bucket: string, q: ListObjectsInput): Promise<ListPage> {
    const before = this.p.namespace.entriesScanned;
    // The bucket is checked alongside the scan (one round of reads, not two).
    const [, page] = await Promise.all([
      this.headBucket(bucket),
      this.p.namespace.listObjects(bucket, {
        prefix: q.prefix ?? '',
        ...(q.delimiter ? { delimiter: q.delimiter } : {}),
        ...(q.after !== undefined ? { after: q.after } : {}),
        maxKeys: q.maxKeys ?? 1000,
      }),
    ]);
    this.p.metrics.listEntriesScanned.inc(this.p.namespace.entriesScanned - before);
    return page;
  }

  // ---- multipart ----

  async createUpload(bucket: string, key: string, input: Omit<WriteInput, 'beforeCommit' | 'expectedSize' | 'checksum'> & { checksumAlgorithm?: string }): Promise<UploadRecord> {
    validateKey(key);
    await this.headBucket(bucket);
    const rec: UploadRecord = {
      ...contentHeaders(input),
      v: 1,
      bucket,
      key,
      uploadId: randomBytes(16).toString('hex'),
      initiated: Date.now(),
      meta: input.meta,
      tags: input.tags ?? {},
      ...(input.checksumAlgorithm && { checksumAlgorithm: input.checksumAlgorithm }),
    };
    await this.p.namespace.batch([{ type: 'put', key: keys.upload(bucket, key, rec.uploadId), value: rec }]);
    return rec;
  }

  async getUpload(bucket: string, key: string, uploadId: string): Promise<UploadRecord> {
    await this.headBucket(bucket);
    const up = /^[0-9a-f]{32}$/.test(uploadId) ? await this.p.namespace.getUpload(bucket, key, uploadId) : undefined;
    if (!up) throw new EngineError('NO_SUCH_UPLOAD');
    return up;
  }

  async uploadPart(
    bucket: string,
    key: string,
    uploadId: string,
    partNumber: number,
    body: AsyncIterable<Buffer>,
    input: Pick<WriteInput, 'expectedSize' | 'beforeCommit' | 'checksum'>,
  ): Promise<PartRecord> {
    await this.getUpload(bucket, key, uploadId);
    const { written, accepted } = await this.writeBlob(body, input, this.p.config.maxPartSize);
    const checksum = accepted.checksum ?? input.checksum;
    const part: PartRecord = {
      v: 1,
      uploadId,
      partNumber,
      etag: `"${written.segment.md5}"`,
      lastModified: Date.now(),
      segment: written.segment,
      copies: written.copies,
      ...(checksum && { checksum: { algorithm: checksum.algorithm, value: checksum.value } }),
    };
    const old = await this.locks.run(`u:${uploadId}`, async () => {
      // The upload may have been completed or aborted while the body streamed.
      if (!(await this.p.namespace.getUpload(bucket, key, uploadId))) throw new EngineError('NO_SUCH_UPLOAD');
      const prev = await this.p.namespace.getPart(uploadId, partNumber);
      await this.p.namespace.batch([{ type: 'put', key: keys.part(uploadId, partNumber), value: part }]);
      return prev;
    }).catch(async (err) => {
      await this.deleteBlobs([written.segment], written.copies);
      throw err;
    });
    if (old) await this.deleteBlobs([old.segment], old.copies);
    return part;
  }

  listParts(uploadId: string, afterPart: number, limit: number): Promise<PartRecord[]> {
    return this.p.namespace.listParts(uploadId, afterPart, limit);
  }

  async listUploads(bucket: string, prefix: string, limit: number): Promise<UploadRecord[]> {
    await this.headBucket(bucket);
    return this.p.namespace.listUploads(bucket, prefix, limit);
  }

  async completeUpload(
    bucket: string,
    key: string,
    uploadId: string,
    listed: { partNumber: number; etag: string }[],
  ): Promise<ObjectRecord> {
    return this.locks.run(`u:${uploadId}`, async () => {
      const up = await this.getUpload(bucket, key, uploadId);
      if (listed.length === 0) throw new EngineError('INVALID_PART', 'at least one part must be listed');
      const stored = new Map((await this.p.namespace.listParts(uploadId)).map((p) => [p.partNumber, p]));
      const parts: PartRecord[] = [];
      let prev = 0;
      for (const l of listed) {
        if (l.partNumber <= prev) throw new EngineError('INVALID_PART_ORDER');
        prev = l.partNumber;
        const p = stored.get(l.partNumber);
        if (!p || unquote(p.etag) !== unquote(l.etag)) throw new EngineError('INVALID_PART', `part ${l.partNumber} was not uploaded or its ETag does not match`);
        parts.push(p);
      }
      parts.slice(0, -1).forEach((p) => {
        if (p.segment.size < this.p.config.minPartSize) throw new EngineError('ENTITY_TOO_SMALL', `part ${p.partNumber} is smaller than the minimum part size`);
      });
      const md5s = Buffer.concat(parts.map((p) => Buffer.from(p.segment.md5, 'hex')));
      const copies = [this.p.hot, ...this.p.replicas].map((s) => s.name).filter((n) => parts.every((p) => p.copies.includes(n)));
      const checksum = compositeChecksum(up.checksumAlgorithm, parts);
      const rec: ObjectRecord = {
        ...contentHeaders(up),
        v: 1,
        bucket,
        key,
        size: parts.reduce((n, p) => n + p.segment.size, 0),
        etag: `"${createHash('md5').update(md5s).digest('hex')}-${parts.length}"`,
        lastModified: Date.now(),
        meta: up.meta,
        tags: up.tags,
        ...(checksum && { checksum }),
        segments: parts.map((p) => p.segment),
        tier: 'replicated',
        copies,
        ...(copies.length - 1 < this.p.replicas.length && { underReplicated: true }),
      };
      const used = new Set(parts.map((p) => p.partNumber));
      const unused = [...stored.values()].filter((p) => !used.has(p.partNumber));
      await this.commitObject(rec, [
        { type: 'del', key: keys.upload(bucket, key, uploadId) },
        ...[...stored.keys()].map((n): BatchOp => ({ type: 'del', key: keys.part(uploadId, n) })),
      ]);
      for (const p of unused) await this.deleteBlobs([p.segment], p.copies);
      return rec;
    });
  }

  async abortUpload(bucket: string, key: string, uploadId: string): Promise<void> {
    await this.locks.run(`u:${uploadId}`, async () => {
      await this.getUpload(bucket, key, uploadId);
      const parts = await this.p.namespace.listParts(uploadId);
      await this.p.namespace.batch([
        { type: 'del', key: keys.upload(bucket, key, uploadId) },
        ...parts.map((p): BatchOp => ({ type: 'del', key: keys.part(uploadId, p.partNumber) })),
      ]);
      for (const p of parts) await this.deleteBlobs([p.segment], p.copies);
    });
  }

  // ---- internals ----

  private async writeBlob(body: AsyncIterable<Buffer>, input: Pick<WriteInput, 'expectedSize' | 'beforeCommit'>, maxSize: number) {
    if (input.expectedSize !== undefined && input.expectedSize > maxSize) throw new EngineError('ENTITY_TOO_LARGE');
    let accepted: Accepted = {};
    const beforeCommit = input.beforeCommit;
    const written = await writeSegment(
      body,
      this.p.hot,
      this.p.replicas,
      {
        blockSize: this.p.config.blockSize,
        maxSize,
        minReplicas: Math.min(this.p.config.minReplicas, this.p.replicas.length),
        ...(input.expectedSize !== undefined && { expectedSize: input.expectedSize }),
        ...(beforeCommit && { beforeCommit: async (d: Digests) => void (accepted = await beforeCommit(d)) }),
      },
      this.p,
    );
    if (written.copies.length - 1 < this.p.replicas.length) {
      this.p.metrics.underReplicatedWrites.inc();
      this.p.log.warn({ blob: written.segment.blob, copies: written.copies }, 'write accepted under-replicated');
    }
    return { written, accepted };
  }

  /** Commit `rec` (plus `extra` ops) in one batch, then drop what it superseded. */
  private async commitObject(rec: ObjectRecord, extra: BatchOp[] = []): Promise<void> {
    await this.locks.run(objectLock(rec.bucket, rec.key), async () => {
      const [bucket, old] = await Promise.all([this.p.namespace.getBucket(rec.bucket), this.p.namespace.getObject(rec.bucket, rec.key)]);
      if (!bucket) throw new EngineError('NO_SUCH_BUCKET');
      await this.replaceRecord(old, rec, extra);
      if (old) await this.deleteObjectBlobs(old);
    });
  }

  /** Best effort: a blob left behind is an orphan the reconciler clears. */
  private async deleteBlobs(segments: readonly Segment[], copies: readonly string[]): Promise<void> {
    await Promise.all(
      segments.flatMap((seg) =>
        copies.map((name) =>
          this.siteByName
            .get(name)
            ?.delete(seg.blob)
            .catch((err) => this.p.log.warn({ site: name, blob: seg.blob, err: String(err) }, 'could not delete superseded blob')),
        ),
      ),
    );
  }

  /** Commit `next` in place of `old` (with the tier queues and `extra`) in one batch; keep the gauges in step. */
  private replaceRecord(old: ObjectRecord | undefined, next: ObjectRecord | undefined, extra: BatchOp[] = []): Promise<void> {
    return this.commitChanges([[old, next]], extra);
  }

  /** Several record changes (old → next, either absent) in one batch: a rename is a delete and a put. */
  private async commitChanges(changes: [ObjectRecord | undefined, ObjectRecord | undefined][], extra: BatchOp[] = []): Promise<void> {
    await this.p.namespace.batch([...changes.flatMap(([old, next]) => objectOps(old, next)), ...extra]);
    for (const [old, next] of changes) {
      if (old) this.stats.remove(old);
      if (next) this.stats.add(next);
    }
    this.publishStats();
  }

  /** Every blob of a record: full copies and shards. */
  private async deleteObjectBlobs(rec: ObjectRecord): Promise<void> {
    await Promise.all([this.deleteBlobs(rec.segments, rec.copies), this.deleteShards(rec)]);
  }

  private async deleteShards(rec: Pick<ObjectRecord, 'layout'>): Promise<void> {
    await Promise.all(
      (rec.layout?.shards ?? []).map((sh) =>
        this.siteByName
          .get(sh.site)
          ?.delete(sh.blob)
          .catch((err) => this.p.log.warn({ site: sh.site, blob: sh.blob, err: String(err) }, 'could not delete superseded shard')),
      ),
    );
  }

  private reportBadCopy(rec: ObjectRecord, f: CopyFailure): void {
    this.p.metrics.checksumFailures.inc({ site: f.site });
    this.p.log.warn({ bucket: rec.bucket, key: rec.key, ...f }, 'bad copy skipped; recorded for repair');
    for (const listener of this.badCopyListeners) listener(rec, f);
  }

  /** Hear of every bad copy a read skips (FLOWS records it and repairs the object). */
  onBadCopy(listener: (rec: ObjectRecord, f: CopyFailure) => void): void {
    this.badCopyListeners.push(listener);
  }

  private publishStats(): void {
    const m = this.p.metrics;
    m.objectsStored.set(this.stats.objects);
    m.bytesStored.set(this.stats.bytes);
    for (const state of TIER_STATES) {
      m.tierObjects.set({ state }, this.stats.byState[state].objects);
      m.tierBytes.set({ state }, this.stats.byState[state].bytes);
    }
    for (const [site, v] of this.stats.bySite) {
      m.siteObjects.set({ site }, v.objects);
      m.siteBytes.set({ site }, v.bytes);
    }
  }

  /**
   * One snapshot scan at start; commits during the scan adjust the totals as
   * deltas, so the gauges are exact once it ends (they read low until then).
   */
  private async countStored(): Promise<void> {
    const scanned = new TierStats();
    for await (const rec of this.p.namespace.allObjects()) scanned.add(rec);
    this.stats.merge(scanned);
    this.publishStats();
  }

  // ---- tiers ----

  /**
   * Fraction of the hot tier in use, counting `adding` more bytes: of its
   * byte budget if one is set, else of its filesystem.
   */
  async hotUsage(adding = 0): Promise<number> {
    const budget = this.p.config.hot.maxBytes;
    let used: number;
    let total: number;
    if (budget !== undefined) {
      used = this.stats.siteBytes(this.p.hot.name);
      total = budget;
    } else {
      const cap = await this.p.hot.capacity().catch(() => undefined);
      if (!cap || cap.total <= 0) return 0;
      used = cap.total - cap.free;
      total = cap.total;
    }
    if (adding === 0) this.p.metrics.hotUsage.set(used / total);
    return (used + adding) / total;
  }

  /** Replicated objects whose coding is due (written before now − codeAfter), oldest first. */
  dueForCoding(limit: number, now = Date.now()): Promise<QueueEntry[]> {
    return this.p.namespace.tierQueue('T', now - this.p.config.codeAfterMs + 1, limit);
  }

  /** Coded objects with a hot copy, least recently read first; `idleOnly` keeps those idle past stubAfter. */
  stubCandidates(limit: number, idleOnly: boolean, now = Date.now()): Promise<QueueEntry[]> {
    return this.p.namespace.tierQueue('H', idleOnly ? now - this.p.config.stubAfterMs + 1 : Number.MAX_SAFE_INTEGER, limit);
  }

  /** True while a recall of this object into the hot tier is running. */
  recalling(bucket: string, key: string): boolean {
    return this.recalls.has(objectLock(bucket, key));
  }

  /**
   * replicated → coded: stripe the object into k+m shards on their sites,
   * verify them, commit the layout, and only then delete the replicas (the
   * hot copy stays). If the object changed meanwhile, or any shard could not
   * be placed and verified, the shards are removed and nothing changes.
   */
  async codeObject(bucket: string, key: string): Promise<TransitionResult> {
    const rec = await this.headObject(bucket, key);
    if (rec.tier !== 'replicated') return 'unchanged';
    const started = performance.now();
    // The encoder copies each chunk into its stripe before it asks for the next, so each block goes back to the pool then.
    const source = this.releasedOnNext(this.readCopies(rec, { start: 0, end: rec.size }));
    const layout = await encodeObject(source, rec.size, this.p.config.geometry, (n) => this.siteByName.get(n), this.codec);
    const replicas = await this.locks.run(objectLock(bucket, key), async () => {
      const cur = await this.p.namespace.getObject(bucket, key);
      if (!cur || cur.tier !== 'replicated' || cur.etag !== rec.etag || cur.lastModified !== rec.lastModified) return undefined;
      const hot = cur.copies.includes(this.p.hot.name);
      const { underReplicated: _, ...rest } = cur;
      await this.replaceRecord(cur, { ...rest, tier: hot ? 'coded' : 'stub', copies: hot ? [this.p.hot.name] : [], layout });
      return cur.copies.filter((n) => n !== this.p.hot.name);
    });
    if (!replicas) {
      await this.deleteShards({ layout });
      return 'unchanged';
    }
    this.p.metrics.codedBytes.inc(rec.size);
    this.p.metrics.codingSeconds.observe((performance.now() - started) / 1000);
    this.p.metrics.protectionLagSeconds.observe((Date.now() - rec.lastModified) / 1000);
    this.p.metrics.transitions.inc({ to: 'coded' });
    await this.deleteBlobs(rec.segments, replicas);
    return 'changed';
  }

  /** coded → stub: drop the hot copy; the shards hold the object. A replicated object is coded first. */
  async stubObject(bucket: string, key: string): Promise<TransitionResult> {
    let rec = await this.headObject(bucket, key);
    if (rec.tier === 'replicated') {
      await this.codeObject(bucket, key);
      rec = await this.headObject(bucket, key);
    }
    if (rec.tier !== 'coded') return 'unchanged';
    const evicted = await this.locks.run(objectLock(bucket, key), async () => {
      const cur = await this.p.namespace.getObject(bucket, key);
      if (!cur || cur.tier !== 'coded' || cur.etag !== rec.etag || !cur.layout) return undefined;
      await this.replaceRecord(cur, { ...cur, tier: 'stub', copies: [] });
      return cur;
    });
    if (!evicted) return 'unchanged';
    this.p.metrics.transitions.inc({ to: 'stub' });
    await this.deleteBlobs(evicted.segments, evicted.copies);
    return 'changed';
  }

  /**
   * stub → coded: decode the object from its shards into a new hot copy and
   * commit it. One recall per object at a time: callers arriving while one
   * runs share it. Resolves with the record as it then stands.
   */
  recallObject(bucket: string, key: string): Promise<ObjectRecord | undefined> {
    const id = objectLock(bucket, key);
    let recall = this.recalls.get(id);
    if (!recall) {
      recall = this.rehydrate(bucket, key)
        .catch((err) => {
          this.p.log.warn({ bucket, key, err: String(err) }, 'recall into the hot tier failed');
          throw err;
        })
        .finally(() => this.recalls.delete(id));
      this.recalls.set(id, recall);
    }
    return recall;
  }

  private async rehydrate(bucket: string, key: string): Promise<ObjectRecord | undefined> {
    const rec = await this.p.namespace.getObject(bucket, key);
    if (!rec || rec.tier !== 'stub' || !rec.layout) return rec;
    const body = readCoded(rec.layout, (n) => this.siteByName.get(n), this.codec, { start: 0, end: rec.size }, (f) => this.reportBadCopy(rec, f));
    const written = await writeSegment(
      body,
      this.p.hot,
      [],
      {
        blockSize: this.p.config.blockSize,
        maxSize: rec.size,
        expectedSize: rec.size,
        minReplicas: 0,
        beforeCommit: (d) => {
          if (rec.sha256 && d.sha256.toString('hex') !== rec.sha256) throw new EngineError('NO_GOOD_COPY', 'decoded bytes do not match the object SHA-256');
        },
      },
      this.p,
    );
    const next = await this.locks.run(objectLock(bucket, key), async () => {
      const cur = await this.p.namespace.getObject(bucket, key);
      if (!cur || cur.tier !== 'stub' || cur.etag !== rec.etag || cur.lastModified !== rec.lastModified) return undefined;
      const next: ObjectRecord = { ...cur, tier: 'coded', copies: [this.p.hot.name], segments: [written.segment], lastAccess: Date.now() };
      await this.replaceRecord(cur, next);
      return next;
    });
    if (!next) {
      await this.deleteBlobs([written.segment], [this.p.hot.name]);
      return this.p.namespace.getObject(bucket, key);
    }
    this.p.metrics.transitions.inc({ to: 'recalled' });
    return next;
  }

  /**
   * Note a read, coarsely: last access moves at most every quarter of the
   * stub delay (and at least hourly), so reads cost no namespace write.
   */
  private touch(rec: ObjectRecord): void {
    const now = Date.now();
    const every = Math.min(this.p.config.stubAfterMs / 4, 3_600_000);
    if (now - lastAccess(rec) < every) return;
    void this.updateObject(rec.bucket, rec.key, (cur) => (cur.etag === rec.etag ? { ...cur, lastAccess: Math.max(now, lastAccess(cur)) } : cur)).catch(
      () => undefined, // the object went away: nothing to note
    );
  }
}

const TIER_STATES: readonly TierState[] = ['replicated', 'coded', 'stub'];

/** Objects and bytes in total, per tier state and per site (bytes each site holds for them). */
class TierStats {
  objects = 0;
  bytes = 0;
  readonly byState: Record<TierState, { objects: number; bytes: number }> = {
    replicated: { objects: 0, bytes: 0 },
    coded: { objects: 0, bytes: 0 },
    stub: { objects: 0, bytes: 0 },
  };
  readonly bySite = new Map<string, { objects: number; bytes: number }>();

  add(rec: ObjectRecord, sign = 1): void {
    this.objects += sign;
    this.bytes += sign * rec.size;
    this.byState[rec.tier].objects += sign;
    this.byState[rec.tier].bytes += sign * rec.size;
    const onSite = new Map<string, number>();
    for (const c of rec.copies) onSite.set(c, (onSite.get(c) ?? 0) + rec.size);
    for (const sh of rec.layout?.shards ?? []) onSite.set(sh.site, (onSite.get(sh.site) ?? 0) + shardBytes(rec.layout!));
    for (const [site, bytes] of onSite) {
      const v = this.bySite.get(site) ?? { objects: 0, bytes: 0 };
      v.objects += sign;
      v.bytes += sign * bytes;
      this.bySite.set(site, v);
    }
  }

  remove(rec: ObjectRecord): void {
    this.add(rec, -1);
  }

  merge(o: TierStats): void {
    this.objects += o.objects;
    this.bytes += o.bytes;
    for (const st of TIER_STATES) {
      this.byState[st].objects += o.byState[st].objects;
      this.byState[st].bytes += o.byState[st].bytes;
    }
    for (const [site, v] of o.bySite) {
      const cur = this.bySite.get(site) ?? { objects: 0, bytes: 0 };
      this.bySite.set(site, { objects: cur.objects + v.objects, bytes: cur.bytes + v.bytes });
    }
  }

  siteBytes(site: string): number {
    return this.bySite.get(site)?.bytes ?? 0;
  }
}

/** Objects moved per namespace batch by renamePrefix. */
const RENAME_PAGE = 256;

function objectLock(bucket: string, key: string): string {
  return `o:${bucket}\0${key}`;
}

function unquote(etag: string): string {
  return etag.replace(/^"|"$/g, '');
}

function contentHeaders(h: ContentHeaders): ContentHeaders {
  const out: ContentHeaders = {};
  for (const k of ['contentType', 'contentEncoding', 'contentDisposition', 'contentLanguage', 'cacheControl', 'expires'] as const) {
    const v = h[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** S3's composite checksum of a multipart object: checksum of the part checksums, "-N". */
function compositeChecksum(algorithm: string | undefined, parts: PartRecord[]): ObjectRecord['checksum'] | undefined {
  if (!algorithm || !parts.every((p) => p.checksum?.algorithm === algorithm)) return undefined;
  if (algorithm !== 'SHA256' && algorithm !== 'SHA1') return undefined; // CRC composites need the door's CRC code
  const h = createHash(algorithm === 'SHA256' ? 'sha256' : 'sha1');
  for (const p of parts) h.update(Buffer.from(p.checksum!.value, 'base64'));
  return { algorithm, value: `${h.digest('base64')}-${parts.length}`, type: 'COMPOSITE' };
}
