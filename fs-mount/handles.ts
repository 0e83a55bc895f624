// Open files and their handles. Every path open on the mount has one
// OpenFile shared by all its handles, so two handles see each other's writes
// (POSIX-like). Writes go to one scratch copy (memory while small, then a
// temp file in the data dir), filled from the object only when an existing
// file is first changed; the
// file commits through the engine's write path on flush/fsync and when its
// last handle is released. Last commit wins: two writers of one path each
// commit the shared temp file, so the final object is what was written last
// before the last close.
import { randomBytes } from 'node:crypto';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Engine, ObjectRecord, PosixAttrs } from '../tiering/index.js';
import { FsError } from './errors.js';

/** How far ahead of a sequential reader's position a read may land and still reuse its stream. */
const READ_AHEAD_SKIP = 8 << 20;
/** Bytes a reader keeps behind its position for reads that arrive out of order. */
const READ_WINDOW = 4 << 20;
/** Bytes a reader pulls ahead of the last read, in the background. */
const READ_AHEAD = 4 << 20;
/** A file being written stays in memory up to this size (one kernel write), then moves to a temp file. */
const SCRATCH_IN_MEMORY = 128 * 1024;

/**
 * The uncommitted bytes of a file being written. Most files written on a
 * drive are small: they stay in memory and cost no temp file (no create,
 * write, close and unlink in the data dir's filesystem beside the commit's
 * fsyncs). A file that grows past SCRATCH_IN_MEMORY, or is written
 * sparsely beyond it, moves to a temp file under `dir` for good. Memory held
 * is at most SCRATCH_IN_MEMORY per open file.
 */
export class Scratch {
  private mem: Buffer | undefined = Buffer.alloc(0);
  private file: { path: string; fh: FileHandle } | undefined;
  private length = 0;

  constructor(private readonly dir: string) {}

  get size(): number {
    return this.length;
  }

  async read(buf: Buffer, len: number, pos: number): Promise<number> {
    const n = Math.max(0, Math.min(len, this.length - pos));
    if (n === 0) return 0;
    if (this.mem) return this.mem.copy(buf, 0, pos, pos + n);
    return (await this.file!.fh.read(buf, 0, n, pos)).bytesRead;
  }

  async write(buf: Buffer, len: number, pos: number): Promise<void> {
    const end = pos + len;
    if (this.mem && end > SCRATCH_IN_MEMORY) await this.spill();
    if (this.mem) {
      if (end > this.mem.length) {
        // Grow by doubling (zero-filled: a sparse write reads back zeros in the gap).
        const grown = Buffer.alloc(Math.min(SCRATCH_IN_MEMORY, Math.max(end, this.mem.length * 2)));
        this.mem.copy(grown, 0, 0, this.length);
        this.mem = grown;
      }
      if (pos > this.length) this.mem.fill(0, this.length, pos);
      buf.copy(this.mem, pos, 0, len);
    } else {
      let done = 0;
      while (done < len) done += (await this.file!.fh.write(buf, done, len - done, pos + done)).bytesWritten;
    }
    this.length = Math.max(this.length, end);
  }

  async truncate(size: number): Promise<void> {
    if (this.mem && size > SCRATCH_IN_MEMORY) await this.spill();
    if (this.mem) {
      if (size > this.length) await this.write(Buffer.alloc(size - this.length), size - this.length, this.length);
    } else await this.file!.fh.truncate(size);
    this.length = size;
  }

  /** Every byte, in order (the body of a commit). */
  body(): AsyncIterable<Buffer> {
    if (this.mem) return once(Buffer.from(this.mem.subarray(0, this.length)));
    if (this.length === 0) return once(Buffer.alloc(0));
    return this.file!.fh.createReadStream({ start: 0, end: this.length - 1, autoClose: false, highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>;
  }

  private async spill(): Promise<void> {
    const path = join(this.dir, randomBytes(12).toString('hex'));
    const fh = await open(path, 'w+', 0o600);
    try {
      if (this.length > 0) await fh.write(this.mem!, 0, this.length, 0);
    } catch (err) {
      await fh.close();
      await rm(path, { force: true });
      throw err;
    }
    this.file = { path, fh };
    this.mem = undefined;
  }

  async discard(): Promise<void> {
    this.mem = undefined;
    const f = this.file;
    this.file = undefined;
    if (!f) return;
    await f.fh.close().catch(() => undefined);
    await rm(f.path, { force: true });
  }
}

/** A body of one buffer (no chunk at all when it is empty). */
export async function* once(buf: Buffer): AsyncGenerator<Buffer> {
  if (buf.length > 0) yield buf;
}

export interface FileAttrs {
  meta: Record<string, string>;
  posix: PosixAttrs;
  contentType?: string;
}

/**
 * A file written from its first byte onwards streams into the engine's
 * write path as it is written, so close only waits for the tail of the
 * commit instead of the whole of it. Any other write (a seek, a truncate)
 * cancels the stream (nothing is committed by a cancelled stream) and the
 * file commits from its temp file on close as usual.
 */
export interface StreamingCommit {
  queue: ChunkQueue;
  done: Promise<ObjectRecord>;
  /** Bytes pushed so far: the only offset the next write may start at. */
  next: number;
  /** The attributes the stream was started with (applied again if they change before close). */
  attrs: string;
}

export class OpenFile {
  refs = 0;
  stream: StreamingCommit | undefined;
  /** Bytes not yet committed (a new file, a write, a truncate). */
  dirty = false;
  unlinked = false;
  tmp: Scratch | undefined;
  /** When the last write happened (mtime of uncommitted bytes). */
  lastWrite = Date.now();
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    public bucket: string,
    public key: string,
    /** The committed object this file was opened on (undefined for a new file). */
    public base: ObjectRecord | undefined,
    public attrs: FileAttrs,
  ) {}

  get size(): number {
    return this.tmp?.size ?? this.base?.size ?? 0;
  }

  /** Run `fn` after every earlier write, truncate and commit of this file. */
  serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.catch(() => undefined).then(fn);
    this.tail = next;
    return next;
  }

  /** Make sure a scratch copy exists, holding the object's bytes unless `empty`. */
  async materialize(engine: Engine, tmpDir: string, empty = false): Promise<Scratch> {
    if (this.tmp) return this.tmp;
    const tmp = new Scratch(tmpDir);
    try {
      if (!empty && this.base && this.base.size > 0) {
        for await (const chunk of engine.readObject(this.base) as AsyncIterable<Buffer>) await tmp.write(chunk, chunk.length, tmp.size);
      }
    } catch (err) {
      await tmp.discard();
      throw err;
    }
    this.tmp = tmp;
    return tmp;
  }

  cancelStream(): void {
    const st = this.stream;
    this.stream = undefined;
    st?.queue.fail(new Error('streaming commit cancelled'));
  }

  async discard(): Promise<void> {
    this.cancelStream();
    const t = this.tmp;
    this.tmp = undefined;
    await t?.discard();
  }
}

export interface Handle {
  file: OpenFile;
  flags: number;
  reader?: ObjectReader;
}

/** The open files by path and the handles on them. */
export class HandleTable {
  private readonly files = new Map<string, OpenFile>();
  private readonly handles = new Map<number, Handle>();
  private nextFh = 1;

  static id(bucket: string, key: string): string {
    return `${bucket}\0${key}`;
  }

  get size(): number {
    return this.handles.size;
  }

  file(bucket: string, key: string): OpenFile | undefined {
    return this.files.get(HandleTable.id(bucket, key));
  }

  addFile(file: OpenFile): OpenFile {
    this.files.set(HandleTable.id(file.bucket, file.key), file);
    return file;
  }

  openHandle(file: OpenFile, flags: number): number {
    const fh = this.nextFh++;
    if (this.nextFh > 0x7fffffff) this.nextFh = 1;
    file.refs++;
    this.handles.set(fh, { file, flags });
    return fh;
  }

  handle(fh: number): Handle {
    const h = this.handles.get(fh);
    if (!h) throw new FsError('EBADF');
    return h;
  }

  /** Drop a handle; returns its file when that was the file's last handle. */
  closeHandle(fh: number): { handle: Handle; last: boolean } {
    const h = this.handle(fh);
    this.handles.delete(fh);
    h.file.refs--;
    const last = h.file.refs === 0;
    if (last && this.files.get(HandleTable.id(h.file.bucket, h.file.key)) === h.file) this.files.delete(HandleTable.id(h.file.bucket, h.file.key));
    return { handle: h, last };
  }

  /** Open files in `bucket` whose key starts with `prefix` ('' for all). */
  under(bucket: string, prefix: string): OpenFile[] {
    return [...this.files.values()].filter((f) => f.bucket === bucket && f.key.startsWith(prefix));
  }

  all(): OpenFile[] {
    return [...this.files.values()];
  }

  /** Follow a rename: the open file at `from` now lives at `to`. */
  move(file: OpenFile, to: string): void {
    this.files.delete(HandleTable.id(file.bucket, file.key));
    file.key = to;
    const displaced = this.files.get(HandleTable.id(file.bucket, to));
    if (displaced) displaced.unlinked = true;
    this.files.set(HandleTable.id(file.bucket, to), file);
  }
}

/**
 * Reads a committed object for one handle. The kernel reads 128 KiB at a
 * time, in order but sometimes a little shuffled; one engine stream serves a
 * run of sequential reads (verifying each block once) and is pulled up to
 * READ_AHEAD past the last read in the background, so block reads overlap
 * with serving; a window of recent bytes absorbs reads that arrive out of
 * order. A jump elsewhere starts a new stream at that offset.
 */
export class ObjectReader {
  private it: AsyncIterator<Buffer> | undefined;
  private chunks: { start: number; buf: Buffer }[] = [];
  private pos = 0; // end of the bytes pulled so far
  private eof = false;
  private failed: unknown;
  private want = 0; // the pump pulls until pos reaches this
  private pump: Promise<void> | undefined;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly engine: Engine,
    private readonly rec: ObjectRecord,
  ) {}

  read(buf: Buffer, len: number, offset: number): Promise<number> {
    const next = this.tail.catch(() => undefined).then(() => this.readNow(buf, len, offset));
    this.tail = next;
    return next;
  }

  private get windowStart(): number {
    return this.chunks[0]?.start ?? this.pos;
  }

  /** Pull chunks in order until `until` (one pump at a time; a restart orphans the old one). */
  private pull(until: number): Promise<void> {
    this.want = Math.max(this.want, until);
    if (!this.pump) {
      // Cleared only once settled (never synchronously), so a finished pump is never reused.
      const p = this.runPump();
      this.pump = p;
      void p.finally(() => {
        if (this.pump === p) this.pump = undefined;
      });
    }
    return this.pump;
  }

  private async runPump(): Promise<void> {
    const it = this.it;
    try {
      while (it && it === this.it && !this.eof && this.pos < this.want) {
        const r = await it.next();
        if (it !== this.it) return;
        if (r.done) this.eof = true;
        else {
          this.chunks.push({ start: this.pos, buf: r.value });
          this.pos += r.value.length;
        }
      }
    } catch (err) {
      // A failed stream is never read from again: the next read starts afresh (and fails afresh).
      if (it === this.it) {
        this.failed = err;
        this.it = undefined;
      }
    }
  }

  private async readNow(buf: Buffer, len: number, offset: number): Promise<number> {
    const end = Math.min(offset + len, this.rec.size);
    if (offset >= end) return 0;
    if (!this.it || offset < this.windowStart || offset > this.pos + READ_AHEAD_SKIP) await this.restart(offset);
    while (this.pos < end && !this.eof && this.it) await this.pull(end);
    if (this.pos < end && !this.eof) {
      const err = this.failed ?? new Error('object stream ended early');
      this.failed = undefined;
      throw err;
    }
    // Keep at most READ_WINDOW behind this read.
    while (this.chunks.length > 1 && this.chunks[0]!.start + this.chunks[0]!.buf.length <= offset - READ_WINDOW) this.engine.releaseChunk(this.chunks.shift()!.buf);
    let copied = 0;
    for (const c of this.chunks) {
      const from = Math.max(offset, c.start);
      const to = Math.min(end, c.start + c.buf.length);
      if (from >= to) continue;
      c.buf.copy(buf, from - offset, from - c.start, to - c.start);
      copied = Math.max(copied, to - offset);
    }
    void this.pull(end + READ_AHEAD);
    return copied;
  }

  private async restart(offset: number): Promise<void> {
    await this.close();
    this.it = (this.engine.readObject(this.rec, { start: offset, end: this.rec.size }) as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    this.pos = offset;
    this.want = offset;
    this.eof = false;
    this.failed = undefined;
  }

  async close(): Promise<void> {
    const it = this.it;
    this.it = undefined;
    this.pump = undefined;
    // Reads copy out of the window synchronously, so nothing holds these now.
    for (const c of this.chunks.splice(0)) this.engine.releaseChunk(c.buf);
    await it?.return?.().catch(() => undefined);
  }
}

/**
 * The body of a streaming commit: chunks pushed by FUSE writes, consumed by
 * the engine's write path. push() waits while more than `highWater` bytes
 * are queued, so a writer runs at the speed of the commit.
 */
export class ChunkQueue implements AsyncIterable<Buffer> {
  private chunks: Buffer[] = [];
  private bytes = 0;
  private ended = false;
  private error: unknown;
  private wakeReader: (() => void) | undefined;
  private wakeWriters: (() => void)[] = [];

  constructor(private readonly highWater = 8 << 20) {}

  async push(chunk: Buffer): Promise<void> {
    if (this.error !== undefined) throw this.error;
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    this.wake();
    while (this.bytes > this.highWater && this.error === undefined) await new Promise<void>((r) => this.wakeWriters.push(r));
    if (this.error !== undefined) throw this.error;
  }

  end(): void {
    this.ended = true;
    this.wake();
  }

  fail(err: unknown): void {
    this.error ??= err;
    this.wake();
    for (const w of this.wakeWriters.splice(0)) w();
  }

  private wake(): void {
    const w = this.wakeReader;
    this.wakeReader = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    try {
      for (;;) {
        if (this.error !== undefined) throw this.error;
        const c = this.chunks.shift();
        if (c) {
          this.bytes -= c.length;
          if (this.bytes <= this.highWater) for (const w of this.wakeWriters.splice(0)) w();
          yield c;
          continue;
        }
        if (this.ended) return;
        await new Promise<void>((r) => (this.wakeReader = r));
      }
    } finally {
      // The consumer stopped (done or failed): writers must not wait for it.
      if (!this.ended) this.fail(new Error('the commit stopped reading'));
    }
  }
}
