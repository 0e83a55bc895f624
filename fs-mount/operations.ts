// The filesystem over the engine: buckets are top-level directories, keys
// with "/" are paths, directories exist implicitly (from keys under them) or
// as S3-style zero-byte "dir/" markers (made by mkdir, so an empty directory
// survives). Every answer comes from the namespace index; nothing here walks
// a disk or lists a bucket whole.
import { constants } from 'node:fs';
import type { Engine, Logger, ObjectRecord, PosixAttrs } from '../tiering/index.js';
import { EngineError } from '../tiering/index.js';
import {
  MAX_META_BYTES, PERMS, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, XATTR_CREATE, XATTR_REPLACE, XATTR_SITES, XATTR_TIER,
  classifyXattr, defaultPosix, dirStat, metaValue, posixOf, recordStat, statOf, systemXattr, validMetaKey, type Owner,
} from './attr.js';
import { FsError } from './errors.js';
import type { FsOps, Stat, StatFs } from './fuse-port.js';
import { ChunkQueue, HandleTable, ObjectReader, OpenFile, once, type FileAttrs } from './handles.js';
import type { MountMetrics } from './metrics.js';

export interface OperationsDeps {
  engine: Engine;
  /** Where open files keep their uncommitted bytes (inside the data dir). */
  tmpDir: string;
  owner: Owner;
  log: Logger;
  metrics: MountMetrics;
  /** A read that takes longer answers EIO (below fuse-native's own timeout). */
  readDeadlineMs: number;
}

interface Where {
  bucket?: string;
  key?: string;
}

const LIST_PAGE = 1000;

function where(path: string): Where {
  const rest = path.replace(/^\/+/, '');
  if (rest === '') return {};
  const i = rest.indexOf('/');
  if (i < 0) return { bucket: rest };
  return { bucket: rest.slice(0, i), key: rest.slice(i + 1) };
}

function parentPrefix(key: string): string {
  return key.slice(0, key.lastIndexOf('/') + 1);
}

export class MountedFs implements FsOps {
  readonly table = new HandleTable();

  constructor(private readonly d: OperationsDeps) {}

  // ---- lookups ----

  private head(bucket: string, key: string): Promise<ObjectRecord | undefined> {
    return this.d.engine.findObject(bucket, key);
  }

  /** Something lies under `prefix` (an object, a marker, a file being written). */
  private async hasChildren(bucket: string, prefix: string, ignoreMarker = false): Promise<boolean> {
    const page = await this.d.engine.listObjects(bucket, { prefix, maxKeys: 2 });
    if (page.objects.some((o) => !ignoreMarker || o.key !== prefix)) return true;
    return this.table.under(bucket, prefix).some((f) => !f.unlinked && f.key !== prefix);
  }

  private async kindOf(bucket: string, key: string): Promise<{ kind: 'file'; rec: ObjectRecord } | { kind: 'dir'; marker?: ObjectRecord } | undefined> {
    // The file and the directory marker are asked for at once (a directory's
    // attributes are asked for on every path walk through it).
    const [rec, marker] = await Promise.all([this.head(bucket, key), this.head(bucket, `${key}/`)]);
    if (rec) return { kind: 'file', rec };
    if (marker) return { kind: 'dir', marker };
    if (await this.hasChildren(bucket, `${key}/`)) return { kind: 'dir' };
    return undefined;
  }

  private fileStat(f: OpenFile): Stat {
    const committed = !f.dirty && f.base;
    return statOf(f.attrs.posix, f.size, committed ? f.base!.lastModified : f.lastWrite);
  }

  async getattr(path: string): Promise<Stat> {
    const { bucket, key } = where(path);
    if (!bucket) return dirStat(this.d.owner, 0);
    if (key === undefined) return dirStat(this.d.owner, (await this.d.engine.headBucket(bucket)).created);
    const open = this.table.file(bucket, key);
    if (open && !open.unlinked) return this.fileStat(open);
    const found = await this.kindOf(bucket, key);
    if (!found) throw new FsError('ENOENT');
    if (found.kind === 'file') return recordStat(found.rec, this.d.owner);
    return found.marker ? recordStat(found.marker, this.d.owner) : dirStat(this.d.owner, (await this.d.engine.headBucket(bucket)).created);
  }

  async readdir(path: string): Promise<string[]> {
    const { bucket, key } = where(path);
    if (!bucket) return ['.', '..', ...(await this.d.engine.listBuckets()).map((b) => b.name)];
    const prefix = key === undefined ? '' : `${key}/`;
    const names = new Set<string>(['.', '..']);
    // fuse-native takes a directory's names in one answer; they are gathered
    // from the index a page at a time (one directory, never the bucket).
    let after: string | undefined;
    for (;;) {
      const page = await this.d.engine.listObjects(bucket, { prefix, delimiter: '/', maxKeys: LIST_PAGE, ...(after !== undefined && { after }) });
      for (const o of page.objects) names.add(o.key.slice(prefix.length));
      for (const p of page.commonPrefixes) names.add(p.slice(prefix.length, -1));
      if (!page.isTruncated || page.last === undefined) break;
      after = page.last;
    }
    for (const f of this.table.under(bucket, prefix)) {
      const rest = f.key.slice(prefix.length);
      if (!f.unlinked && rest !== '' && !rest.includes('/')) names.add(rest);
    }
    names.delete(''); // the directory's own marker, or a key with "//"
    for (const n of names) if (n.includes('\0')) names.delete(n);
    return [...names];
  }

  async statfs(): Promise<StatFs> {
    const cap = (await this.d.engine.capacity()) ?? { total: 0, free: 0 };
    // Block counts are 32-bit in fuse-native: grow the block size until they fit.
    let frsize = 4096;
    while (cap.total / frsize > 0xffffffff) frsize *= 2;
    const blocks = Math.floor(cap.total / frsize);
    const free = Math.floor(cap.free / frsize);
    return { bsize: frsize, frsize, blocks, bfree: free, bavail: free, files: 0xffffffff, ffree: 0xffffffff, favail: 0xffffffff, namemax: 255 };
  }

  // ---- files ----

  private fileIn(path: string): { bucket: string; key: string } {
    const { bucket, key } = where(path);
    if (!bucket) throw new FsError('EISDIR');
    // Only directories (buckets) live at the top.
    if (key === undefined) throw new FsError('EPERM', 'files cannot be created at the top level; it holds buckets');
    return { bucket, key };
  }

  private attrsOf(rec: ObjectRecord): FileAttrs {
    return { meta: { ...rec.meta }, posix: { ...posixOf(rec, this.d.owner) }, ...(rec.contentType && { contentType: rec.contentType }) };
  }

  async create(path: string, mode: number): Promise<number> {
    const { bucket, key } = this.fileIn(path);
    await this.d.engine.headBucket(bucket);
    const file = this.table.addFile(new OpenFile(bucket, key, undefined, { meta: {}, posix: { mode: S_IFREG | (mode & PERMS), uid: this.d.owner.uid, gid: this.d.owner.gid } }));
    await file.materialize(this.d.engine, this.d.tmpDir, true);
    file.dirty = true;
    return this.opened(file, constants.O_RDWR);
  }

  async open(path: string, flags: number): Promise<number> {
    const { bucket, key } = this.fileIn(path);
    let file = this.table.file(bucket, key);
    if (!file || file.unlinked) {
      const rec = await this.head(bucket, key);
      if (!rec) throw new FsError((await this.kindOf(bucket, key)) ? 'EISDIR' : 'ENOENT');
      file = this.table.addFile(new OpenFile(bucket, key, rec, this.attrsOf(rec)));
    } else if (!file.dirty && !file.tmp) {
      // Readers share the file; pick up a newer version written over S3 meanwhile.
      const rec = await this.head(bucket, key);
      if (rec) file.base = rec;
    }
    if (file.base?.tier === 'stub') this.d.metrics.recalls.inc();
    const fh = this.opened(file, flags);
    if ((flags & constants.O_TRUNC) !== 0 && (flags & 3) !== constants.O_RDONLY) await this.truncateFile(file, 0);
    return fh;
  }

  private opened(file: OpenFile, flags: number): number {
    const fh = this.table.openHandle(file, flags);
    this.d.metrics.openHandles.set(this.table.size);
    return fh;
  }

  async read(_path: string, fh: number, buf: Buffer, len: number, pos: number): Promise<number> {
    const h = this.table.handle(fh);
    const f = h.file;
    let n: number;
    if (f.tmp) {
      n = await f.tmp.read(buf, len, pos);
    } else if (!f.base) {
      n = 0;
    } else {
      const reader = (h.reader ??= new ObjectReader(this.d.engine, f.base));
      n = await this.withDeadline(reader.read(buf, len, pos), f).catch((err: unknown) => {
        // A stalled or failed stream is dropped; the next read starts a new one.
        if (h.reader === reader) delete h.reader;
        void reader.close();
        throw err;
      });
    }
    this.d.metrics.bytesRead.inc(n);
    return n;
  }

  /** A read that fails or stalls answers EIO promptly, with the reason logged and counted. */
  private async withDeadline<T>(p: Promise<T>, f: OpenFile): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, rej) => {
      timer = setTimeout(() => rej(new FsError('EIO', `read did not complete within ${this.d.readDeadlineMs} ms`)), this.d.readDeadlineMs);
    });
    try {
      return await Promise.race([p, deadline]);
    } catch (err) {
      this.d.metrics.readFailures.inc();
      this.d.log.warn({ bucket: f.bucket, key: f.key, tier: f.base?.tier, err: String(err) }, 'read through the mount failed');
      throw err instanceof EngineError || err instanceof FsError ? err : new FsError('EIO', String(err));
    } finally {
      clearTimeout(timer);
    }
  }

  async write(_path: string, fh: number, buf: Buffer, len: number, pos: number): Promise<number> {
    const h = this.table.handle(fh);
    const f = h.file;
    await f.serial(async () => {
      const tmp = await f.materialize(this.d.engine, this.d.tmpDir);
      const at = (h.flags & constants.O_APPEND) !== 0 ? tmp.size : pos;
      if (at === 0 && tmp.size === 0 && !f.stream && !f.unlinked) this.startStream(f);
      const st = f.stream;
      // The stream needs its own copy: fuse-native reuses `buf` once this op answers.
      const pushed = st && at === st.next ? st.queue.push(Buffer.from(buf.subarray(0, len))) : undefined;
      if (st && !pushed) f.cancelStream();
      if (st && pushed) st.next += len;
      await tmp.write(buf, len, at);
      // A failed stream is simply dropped: close commits from the temp file.
      await pushed?.catch(() => f.stream === st && f.cancelStream());
      f.dirty = true;
      f.lastWrite = Date.now();
      delete f.attrs.posix.mtime; // new bytes: mtime follows the write again
    });
    this.d.metrics.bytesWritten.inc(len);
    return len;
  }

  private startStream(f: OpenFile): void {
    const queue = new ChunkQueue();
    const done = this.d.engine.putObject(f.bucket, f.key, queue, this.writeInput(f));
    done.catch((err: unknown) => queue.fail(err));
    f.stream = { queue, done, next: 0, attrs: JSON.stringify(f.attrs) };
  }

  private writeInput(f: OpenFile) {
    return { meta: { ...f.attrs.meta }, posix: { ...f.attrs.posix }, ...(f.attrs.contentType && { contentType: f.attrs.contentType }) };
  }

  private async truncateFile(f: OpenFile, size: number): Promise<void> {
    f.cancelStream();
    await f.serial(async () => {
      const tmp = await f.materialize(this.d.engine, this.d.tmpDir, size === 0);
      await tmp.truncate(size);
      f.dirty = true;
      f.lastWrite = Date.now();
      delete f.attrs.posix.mtime;
    });
  }

  /** Commit a file's bytes and attributes through the engine's write path. */
  private commit(f: OpenFile): Promise<void> {
    return f.serial(async () => {
      if (!f.dirty || f.unlinked) return;
      const tmp = await f.materialize(this.d.engine, this.d.tmpDir);
      if (await this.finishStream(f, tmp.size)) return;
      try {
        f.base = await this.d.engine.putObject(f.bucket, f.key, tmp.body(), { ...this.writeInput(f), expectedSize: tmp.size });
        f.dirty = false;
        this.d.metrics.commits.inc({ result: 'ok' });
      } catch (err) {
        this.d.metrics.commits.inc({ result: 'error' });
        this.d.log.error({ bucket: f.bucket, key: f.key, err: String(err) }, 'commit from the mount failed; the previous version stays');
        throw err;
      }
    });
  }

  /**
   * End a streaming commit that holds every byte of the file; true when it
   * committed. Attributes changed while it streamed (cp -p sets them just
   * before close) are applied to the committed record.
   */
  private async finishStream(f: OpenFile, size: number): Promise<boolean> {
    const st = f.stream;
    if (!st) return false;
    f.stream = undefined;
    if (st.next !== size) {
      st.queue.fail(new Error('streaming commit superseded'));
      return false;
    }
    st.queue.end();
    let rec: ObjectRecord;
    try {
      rec = await st.done;
    } catch (err) {
      this.d.log.warn({ bucket: f.bucket, key: f.key, err: String(err) }, 'streaming commit failed; committing from the temp file');
      return false;
    }
    if (JSON.stringify(f.attrs) !== st.attrs) {
      rec = await this.d.engine.updateObject(f.bucket, f.key, (cur) => ({ ...cur, ...this.writeInput(f) }));
    }
    f.base = rec;
    f.dirty = false;
    this.d.metrics.commits.inc({ result: 'ok' });
    return true;
  }

  async flush(_path: string, fh: number): Promise<void> {
    await this.commit(this.table.handle(fh).file);
  }

  async fsync(_path: string, fh: number): Promise<void> {
    await this.commit(this.table.handle(fh).file);
  }

  async release(_path: string, fh: number): Promise<void> {
    const { handle, last } = this.table.closeHandle(fh);
    this.d.metrics.openHandles.set(this.table.size);
    await handle.reader?.close();
    if (!last) return;
    try {
      await this.commit(handle.file);
    } finally {
      await handle.file.discard();
    }
  }

  /** Commit every open file (before an unmount). */
  async commitAll(): Promise<void> {
    await Promise.allSettled(this.table.all().map((f) => this.commit(f)));
  }

  async truncate(path: string, size: number): Promise<void> {
    const { bucket, key } = this.fileIn(path);
    const open = this.table.file(bucket, key);
    if (open && !open.unlinked) return this.truncateFile(open, size);
    const rec = await this.head(bucket, key);
    if (!rec) throw new FsError('ENOENT');
    const f = new OpenFile(bucket, key, rec, this.attrsOf(rec));
    try {
      await this.truncateFile(f, size);
      await this.commit(f);
    } finally {
      await f.discard();
    }
  }

  async ftruncate(_path: string, fh: number, size: number): Promise<void> {
    await this.truncateFile(this.table.handle(fh).file, size);
  }

  async unlink(path: string): Promise<void> {
    const { bucket, key } = this.fileIn(path);
    const open = this.table.file(bucket, key);
    const rec = await this.head(bucket, key);
    if (!rec && (!open || open.unlinked)) throw new FsError('ENOENT');
    if (open) open.unlinked = true;
    if (rec) await this.d.engine.deleteObject(bucket, key);
    await this.keepParent(bucket, key);
  }

  /**
   * Removing the last entry of an implicit directory would make the directory
   * vanish with it; a marker keeps it, as POSIX expects.
   */
  private async keepParent(bucket: string, key: string): Promise<void> {
    const parent = parentPrefix(key);
    if (parent === '' || (await this.hasChildren(bucket, parent))) return;
    await this.d.engine.putObject(bucket, parent, once(Buffer.alloc(0)), { meta: {}, posix: defaultPosix('dir', this.d.owner) });
  }

  // ---- directories ----

  async mkdir(path: string, mode: number): Promise<void> {
    const { bucket, key } = where(path);
    if (!bucket) throw new FsError('EEXIST');
    if (key === undefined) return this.d.engine.createBucket(bucket);
    await this.d.engine.headBucket(bucket);
    if (this.table.file(bucket, key) || (await this.kindOf(bucket, key))) throw new FsError('EEXIST');
    const posix: PosixAttrs = { mode: S_IFDIR | (mode & PERMS), uid: this.d.owner.uid, gid: this.d.owner.gid };
    await this.d.engine.putObject(bucket, `${key}/`, once(Buffer.alloc(0)), { meta: {}, posix });
  }

  async rmdir(path: string): Promise<void> {
    const { bucket, key } = where(path);
    if (!bucket) throw new FsError('EBUSY');
    if (key === undefined) return this.d.engine.deleteBucket(bucket);
    const prefix = `${key}/`;
    if (await this.hasChildren(bucket, prefix, true)) throw new FsError('ENOTEMPTY');
    const marker = await this.head(bucket, prefix);
    if (!marker) throw new FsError((await this.head(bucket, key)) ? 'ENOTDIR' : 'ENOENT');
    await this.d.engine.deleteObject(bucket, prefix);
    await this.keepParent(bucket, key);
  }

  async rename(from: string, to: string): Promise<void> {
    const s = where(from);
    const t = where(to);
    if (!s.bucket || !t.bucket || s.key === undefined || t.key === undefined) throw new FsError('EPERM', 'buckets cannot be renamed, nor files moved to the top level');
    if (s.bucket !== t.bucket) throw new FsError('EXDEV'); // mv copies across buckets
    const bucket = s.bucket;
    const open = this.table.file(bucket, s.key);
    // A file still being written is committed first, then moves like any other.
    if (open && !open.unlinked && open.dirty) await this.commit(open);
    const rec = await this.head(bucket, s.key);
    if (rec) {
      if ((await this.kindOf(bucket, t.key))?.kind === 'dir') throw new FsError('EISDIR');
      await this.d.engine.renameObject(bucket, s.key, t.key);
      if (open && !open.unlinked) this.table.move(open, t.key);
      else {
        const displaced = this.table.file(bucket, t.key);
        if (displaced) displaced.unlinked = true;
      }
    } else {
      const kind = await this.kindOf(bucket, s.key);
      if (!kind) throw new FsError('ENOENT');
      const target = await this.kindOf(bucket, t.key);
      if (target?.kind === 'file') throw new FsError('ENOTDIR');
      const fromPrefix = `${s.key}/`;
      const toPrefix = `${t.key}/`;
      if (target && (await this.hasChildren(bucket, toPrefix, true))) throw new FsError('ENOTEMPTY');
      for (const f of this.table.under(bucket, fromPrefix)) if (f.dirty && !f.unlinked) await this.commit(f);
      await this.d.engine.renamePrefix(bucket, fromPrefix, toPrefix);
      for (const f of this.table.under(bucket, fromPrefix)) this.table.move(f, toPrefix + f.key.slice(fromPrefix.length));
    }
    await this.keepParent(bucket, s.key);
  }

  // ---- attributes ----

  /**
   * Change a path's POSIX attributes or metadata: an open file keeps the
   * change for its next commit (and its committed record gets it now); a
   * directory without a marker gets one to hold them.
   */
  private async changeAttrs(path: string, change: (a: FileAttrs) => FileAttrs): Promise<void> {
    const { bucket, key } = where(path);
    if (!bucket || key === undefined) throw new FsError('EPERM', 'the top level and buckets keep no attributes');
    const open = this.table.file(bucket, key);
    if (open && !open.unlinked) {
      open.attrs = change(open.attrs);
      if (open.dirty || !open.base) return;
    }
    const found = await this.kindOf(bucket, key);
    if (!found) throw new FsError('ENOENT');
    const recKey = found.kind === 'file' ? key : `${key}/`;
    if (found.kind === 'dir' && !found.marker) {
      const a = change({ meta: {}, posix: defaultPosix('dir', this.d.owner) });
      await this.d.engine.putObject(bucket, recKey, once(Buffer.alloc(0)), { meta: a.meta, posix: a.posix });
      return;
    }
    const rec = await this.d.engine.updateObject(bucket, recKey, (cur) => {
      const a = change(this.attrsOf(cur));
      return { ...cur, meta: a.meta, posix: a.posix };
    });
    if (open && !open.unlinked) open.base = rec;
  }

  async chmod(path: string, mode: number): Promise<void> {
    if (where(path).key === undefined) return; // buckets: nothing to keep
    await this.changeAttrs(path, (a) => ({ ...a, posix: { ...a.posix, mode: (a.posix.mode & S_IFMT) | (mode & PERMS) } }));
  }

  async chown(path: string, uid: number, gid: number): Promise<void> {
    if (where(path).key === undefined) return;
    const keep = 0xffffffff; // -1: leave unchanged
    await this.changeAttrs(path, (a) => ({ ...a, posix: { ...a.posix, ...(uid !== keep && { uid }), ...(gid !== keep && { gid }) } }));
  }

  async utimens(path: string, _atime: number, mtime: number): Promise<void> {
    if (where(path).key === undefined) return;
    await this.changeAttrs(path, (a) => ({ ...a, posix: { ...a.posix, mtime } }));
  }

  async symlink(target: string, path: string): Promise<void> {
    const { bucket, key } = this.fileIn(path);
    if (await this.kindOf(bucket, key)) throw new FsError('EEXIST');
    // The target is also the object's body, as s3fs stores links.
    await this.d.engine.putObject(bucket, key, once(Buffer.from(target)), {
      meta: {},
      posix: { mode: S_IFLNK | 0o777, uid: this.d.owner.uid, gid: this.d.owner.gid, symlink: target },
    });
  }

  /**
   * Hard links are refused with EPERM, link(2)'s answer for a filesystem
   * that has none: an object has one name, and S3 has no way to give it two.
   */
  async link(): Promise<void> {
    throw new FsError('EPERM', 'hard links are not supported on the drive');
  }

  async readlink(path: string): Promise<string> {
    const { bucket, key } = this.fileIn(path);
    const rec = await this.head(bucket, key);
    if (!rec) throw new FsError('ENOENT');
    if (rec.posix?.symlink === undefined) throw new FsError('EINVAL');
    return rec.posix.symlink;
  }

  /** The record behind a path, for extended attributes (undefined for a file not yet committed). */
  private async recordAt(path: string): Promise<{ rec?: ObjectRecord; open?: OpenFile }> {
    const { bucket, key } = where(path);
    if (!bucket || key === undefined) return {};
    const open = this.table.file(bucket, key);
    if (open && !open.unlinked && (open.dirty || !open.base)) return { open };
    const found = await this.kindOf(bucket, key);
    if (!found) throw new FsError('ENOENT');
    return found.kind === 'file' ? { rec: found.rec } : found.marker ? { rec: found.marker } : {};
  }

  async getxattr(path: string, name: string): Promise<Buffer | undefined> {
    const { rec, open } = await this.recordAt(path);
    const meta = open?.attrs.meta ?? rec?.meta ?? {};
    const x = classifyXattr(name);
    if (x.kind === 'reserved') {
      const v = rec && systemXattr(rec, name);
      return v === undefined ? undefined : Buffer.from(v);
    }
    if (x.kind !== 'meta') return undefined;
    const v = meta[x.key];
    return v === undefined ? undefined : Buffer.from(v);
  }

  async listxattr(path: string): Promise<string[]> {
    const { rec, open } = await this.recordAt(path);
    const meta = open?.attrs.meta ?? rec?.meta ?? {};
    return [...(rec ? [XATTR_TIER, XATTR_SITES] : []), ...Object.keys(meta).map((k) => `user.${k}`)];
  }

  async setxattr(path: string, name: string, value: Buffer, flags: number): Promise<void> {
    const x = classifyXattr(name);
    if (x.kind === 'reserved') throw new FsError('EPERM', `${name} is computed by the gateway`);
    if (x.kind === 'unsupported') throw new FsError('EOPNOTSUPP');
    if (!validMetaKey(x.key)) throw new FsError('EINVAL', 'S3 metadata names are HTTP header tokens');
    const v = metaValue(value);
    if (v === undefined) throw new FsError('EINVAL', 'S3 metadata values are UTF-8 text without control characters');
    await this.changeAttrs(path, (a) => {
      const has = a.meta[x.key] !== undefined;
      if ((flags & XATTR_CREATE) !== 0 && has) throw new FsError('EEXIST');
      if ((flags & XATTR_REPLACE) !== 0 && !has) throw new FsError('ENODATA');
      const meta = { ...a.meta, [x.key]: v };
      if (Buffer.byteLength(JSON.stringify(meta)) > MAX_META_BYTES) throw new FsError('E2BIG', 'user metadata is limited to 8 KiB');
      return { ...a, meta };
    });
  }

  async removexattr(path: string, name: string): Promise<void> {
    const x = classifyXattr(name);
    if (x.kind === 'reserved') throw new FsError('EPERM');
    if (x.kind !== 'meta') throw new FsError('ENODATA');
    await this.changeAttrs(path, (a) => {
      if (a.meta[x.key] === undefined) throw new FsError('ENODATA');
      const { [x.key]: _gone, ...meta } = a.meta;
      return { ...a, meta };
    });
  }
}
