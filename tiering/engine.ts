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
import { keys } from './namespace/keys.js';
import type { BatchOp, ListPage, Namespace } from './namespace/namespace.js';
import type { BucketRecord, ContentHeaders, ObjectRecord, PartRecord, PosixAttrs, Segment, UploadRecord } from './namespace/records.js';
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
}

export const DEFAULT_ENGINE_CONFIG: EngineConfig = {
  blockSize: 1 << 20,
  maxObjectSize: 5 * 2 ** 40,
  maxPartSize: 5 * 2 ** 30,
  minPartSize: 5 * 2 ** 20,
  minReplicas: 2,
};

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

  private constructor(private readonly p: EngineParts) {
    this.siteByName = new Map([p.hot, ...p.sites].map((s) => [s.name, s]));
  }

  static async open(parts: EngineParts): Promise<Engine> {
    const engine = new Engine(parts);
    // Counting a large namespace takes a while; the gauges fill in when done.
    void engine.countStored().catch((err) => parts.log.warn({ err: String(err) }, 'could not count stored objects'));
    await engine.checkHealth();
    return engine;
  }

  get config(): EngineConfig {
    return this.p.config;
  }

  async close(): Promise<void> {
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

  /** Bytes of `rec` (or of `range` within it), verified as they are read. */
  readObject(rec: ObjectRecord, range?: ByteRange): Readable {
    const sources = rec.copies.map((n) => this.siteByName.get(n)).filter((s): s is Site => s !== undefined);
    const gen = readSegments(rec.segments, sources, range ?? { start: 0, end: rec.size }, (f) => this.reportBadCopy(rec, f));
    return Readable.from(gen, { objectMode: false, highWaterMark: 1 });
  }

  async deleteObject(bucket: string, key: string): Promise<void> {
    validateKey(key);
    await this.headBucket(bucket);
    await this.locks.run(objectLock(bucket, key), async () => {
      const old = await this.p.namespace.getObject(bucket, key);
      if (!old) return;
      await this.p.namespace.batch([{ type: 'del', key: keys.object(bucket, key) }]);
      this.adjustStored(-1, -old.size);
      await this.deleteBlobs(old.segments, old.copies);
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
      await this.p.namespace.batch([{ type: 'put', key: keys.object(bucket, key), value: next }]);
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
      await this.p.namespace.batch([
        { type: 'del', key: keys.object(bucket, from) },
        { type: 'put', key: keys.object(bucket, to), value: moved },
      ]);
      if (old) {
        this.adjustStored(-1, -old.size);
        await this.deleteBlobs(old.segments, old.copies);
      }
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
        const ops: BatchOp[] = [];
        const superseded: ObjectRecord[] = [];
        for (const [from, to] of names) {
          const rec = await this.p.namespace.getObject(bucket, from);
          if (!rec) continue; // deleted since the page was read
          const old = await this.p.namespace.getObject(bucket, to);
          if (old) superseded.push(old);
          ops.push({ type: 'del', key: keys.object(bucket, from) }, { type: 'put', key: keys.object(bucket, to), value: { ...rec, key: to } });
          moved++;
        }
        await this.p.namespace.batch(ops);
        for (const old of superseded) {
          this.adjustStored(-1, -old.size);
          await this.deleteBlobs(old.segments, old.copies);
        }
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
    await this.headBucket(bucket);
    const before = this.p.namespace.entriesScanned;
    const page = await this.p.namespace.listObjects(bucket, {
      prefix: q.prefix ?? '',
      ...(q.delimiter ? { delimiter: q.delimiter } : {}),
      ...(q.after !== undefined ? { after: q.after } : {}),
      maxKeys: q.maxKeys ?? 1000,
    });
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
      { log: this.p.log, metrics: this.p.metrics },
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
      if (!(await this.p.namespace.getBucket(rec.bucket))) throw new EngineError('NO_SUCH_BUCKET');
      const old = await this.p.namespace.getObject(rec.bucket, rec.key);
      await this.p.namespace.batch([{ type: 'put', key: keys.object(rec.bucket, rec.key), value: rec }, ...extra]);
      this.adjustStored(old ? 0 : 1, rec.size - (old?.size ?? 0));
      if (old) await this.deleteBlobs(old.segments, old.copies);
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

  private reportBadCopy(rec: ObjectRecord, f: CopyFailure): void {
    this.p.metrics.checksumFailures.inc({ site: f.site });
    this.p.log.warn({ bucket: rec.bucket, key: rec.key, ...f }, 'bad copy skipped; recorded for repair');
  }

  private stored = { objects: 0, bytes: 0 };

  private adjustStored(objects: number, bytes: number): void {
    this.stored.objects += objects;
    this.stored.bytes += bytes;
    this.p.metrics.objectsStored.set(this.stored.objects);
    this.p.metrics.bytesStored.set(this.stored.bytes);
  }

  /**
   * One snapshot scan at start; commits during the scan adjust the totals as
   * deltas, so the gauges are exact once it ends (they read low until then).
   */
  private async countStored(): Promise<void> {
    let objects = 0;
    let bytes = 0;
    for await (const size of this.p.namespace.objectSizes()) {
      objects++;
      bytes += size;
    }
    this.adjustStored(objects, bytes);
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
