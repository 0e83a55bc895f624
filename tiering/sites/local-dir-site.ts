// A site in a local directory: the embedded default for sites A, B, C and the
// hot tier. Layout under the root:
//   blobs/<first two hex digits of id>/<id>   committed blobs
//   tmp/<id>.<nonce>                          writes in progress (cleared at open)
//   small/                                    blobs up to `smallBlobBytes`, in LevelDB (small-blob-store.ts)
// A write goes to tmp, is fsynced, renamed into blobs/ and the directory is
// fsynced, so a crash leaves either no blob or a whole one. A blob of at most
// SMALL_BLOB bytes (most files) is kept in memory until commit: it goes to
// the small-blob store when it fits there, else straight to its final name,
// its fsync and the directory's running together: one round of syncs instead
// of two. A crash during that commit can leave a partial blob under its
// final name, but no record points at it (records commit after the blob is
// durable), so it is an orphan that the FLOWS sweep clears like any other.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { access, mkdir, readdir, rename, rm, stat, statfs, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { fileChecker, type UnitCheck, type UnitChecksums } from './blob-check.js';
import { Site, type BlobReader, type BlobWriter, type SiteSupports } from './site.js';
import { SmallBlobStore } from './small-blob-store.js';

// Blob I/O on plain descriptors: a FileHandle costs several times more main-
// thread time per call, which a small object pays on every hop.
const fd = {
  open: promisify(fs.open),
  read: promisify(fs.read),
  write: promisify(fs.write),
  fsync: promisify(fs.fsync),
  close: promisify(fs.close),
};

export interface LocalDirSiteOptions {
  /**
   * Open, close and read up to INLINE_READ_BYTES on the event loop instead of
   * the thread pool, as nginx reads files: for a directory on local disk
   * whose small blobs sit in the page cache (the hot tier), where the three
   * thread-pool round trips of a small GET cost more than the reads. Never
   * for a directory that may be a network mount.
   */
  inlineSmallReads?: boolean;
  /**
   * Blobs up to this many bytes go to the site's small-blob store instead of
   * a file each (see the header). Unset or 0: every blob is a file.
   */
  smallBlobBytes?: number;
}

const INLINE_READ_BYTES = 64 * 1024;

/** A blob file is always new: never open over one that is there (a repair's rewrite goes through tmp). */
const NEW_FILE = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL;

/** The largest blob written whole at commit (see the header). */
const SMALL_BLOB = 1 << 20;

async function writeAll(f: number, chunk: Buffer): Promise<void> {
  let off = 0;
  while (off < chunk.length) off += (await fd.write(f, chunk, off, chunk.length - off)).bytesWritten;
}

export class LocalDirSite extends Site {
  readonly supports: SiteSupports = { durableRename: true };
  private readonly blobDir: string;
  private readonly tmpDir: string;
  private readonly dirSyncs = new Map<string, CoalescedSync>();
  private small: SmallBlobStore | undefined;

  private constructor(
    name: string,
    readonly root: string,
    private readonly opts: LocalDirSiteOptions,
  ) {
    super(name);
    this.blobDir = join(root, 'blobs');
    this.tmpDir = join(root, 'tmp');
  }

  /** Opens (creating if needed) the site; clears writes left by a crash. */
  static async open(name: string, root: string, opts: LocalDirSiteOptions = {}): Promise<LocalDirSite> {
    const site = new LocalDirSite(name, root, opts);
    const smallDir = join(root, 'small');
    // Opened whenever it exists, so the blobs it holds stay readable after the option is turned off.
    const hasSmall = await access(smallDir).then(() => true, () => false);
    if ((opts.smallBlobBytes ?? 0) > 0 || hasSmall) site.small = await SmallBlobStore.open(smallDir, SMALL_BLOB);
    await rm(site.tmpDir, { recursive: true, force: true });
    await mkdir(site.tmpDir, { recursive: true });
    await Promise.all(
      Array.from({ length: 256 }, (_, i) => mkdir(join(site.blobDir, i.toString(16).padStart(2, '0')), { recursive: true })),
    );
    return site;
  }

  private pathOf(id: string): string {
    return join(this.blobDir, id.slice(0, 2), id);
  }

  private syncDir(dir: string): Promise<void> {
    let sync = this.dirSyncs.get(dir);
    if (!sync) {
      sync = new CoalescedSync(dir);
      this.dirSyncs.set(dir, sync);
    }
    return sync.sync();
  }

  protected _createWriter(id: string): BlobWriter {
    let tmpPath = ''; // named when first needed: most blobs never touch tmp
    const finalPath = this.pathOf(id);
    let opened: Promise<number> | undefined;
    let open = false; // the descriptor is ours to close (never close a number the kernel may have reused)
    let done = false;
    // The writes so far, kept (copied) while the blob may still be small.
    let held: Buffer[] = [];
    let heldBytes = 0;
    const file = () => {
      if (!opened) {
        tmpPath = join(this.tmpDir, `${id}.${randomBytes(4).toString('hex')}`);
        opened = fd.open(tmpPath, NEW_FILE, 0o640).then((n) => {
          open = true;
          return n;
        });
      }
      return opened;
    };
    const closeFile = async () => {
      if (!open) return;
      open = false;
      await fd.close(await opened!);
    };
    // From here on the blob goes through the temp file, starting with what was held.
    const spill = async (): Promise<number> => {
      const f = await file();
      for (const b of held) await writeAll(f, b);
      held = [];
      heldBytes = 0;
      return f;
    };
    return {
      write: async (chunk) => {
        if (done) throw new Error(`blob ${id} was already committed or aborted`);
        if (!opened && heldBytes + chunk.length <= SMALL_BLOB) {
          held.push(Buffer.from(chunk));
          heldBytes += chunk.length;
          return;
        }
        await writeAll(await spill(), chunk);
      },
      commit: async () => {
        if (done) throw new Error(`blob ${id} was already committed or aborted`);
        // Only a blob held whole (at most SMALL_BLOB bytes, the store's largest) can go to the store or have a copy there.
        const wasHeld = !opened;
        const size = heldBytes; // spill() below empties the count
        let written = false;
        if (wasHeld) {
          const data = held.length === 1 ? held[0]! : Buffer.concat(held, heldBytes);
          if (this.small && heldBytes <= (this.opts.smallBlobBytes ?? 0)) {
            await this.small.put(id, data);
            done = true;
            held = [];
            return;
          }
          try {
            await this.writeWhole(finalPath, data);
            done = written = true;
            held = [];
          } catch (err) {
            // A repair rewrites a blob that is there but bad: replace it through tmp and rename.
            if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
          }
        }
        if (!written) {
          await fd.fsync(await spill());
          await closeFile();
          await rename(tmpPath, finalPath);
          done = true;
          await this.syncDir(dirname(finalPath));
        }
        if (wasHeld) await this.dropSmallCopy(id, size);
      },
      abort: async () => {
        held = [];
        if (done) return;
        done = true;
        if (!opened) return;
        await opened.catch(() => undefined);
        await closeFile().catch(() => undefined);
        await unlink(tmpPath).catch(() => undefined);
      },
    };
  }

  /**
   * A blob is in the small-blob store or a file, never both: the store is read
   * first, so a copy left there from a larger `smallBlobBytes` (now written
   * again as a file, a repair) must go, durably, before the file is trusted.
   */
  private async dropSmallCopy(id: string, size: number): Promise<void> {
    if (this.small?.mayHold(size) && (await this.small.get(id, false)) !== undefined) await this.small.del(id, true);
  }

  /** A small blob straight to its final name; the directory is synced while the bytes are. */
  private async writeWhole(path: string, data: Buffer): Promise<void> {
    const f = await fd.open(path, NEW_FILE, 0o640);
    const entrySynced = this.syncDir(dirname(path));
    entrySynced.catch(() => undefined); // awaited below; a write failure must not leave it unhandled
    try {
      await writeAll(f, data);
      await Promise.all([fd.fsync(f), entrySynced]);
    } catch (err) {
      await fd.close(f).catch(() => undefined);
      await unlink(path).catch(() => undefined);
      throw err;
    }
    await fd.close(f);
  }

  protected async _open(id: string): Promise<BlobReader | undefined> {
    const path = this.pathOf(id);
    const inline = this.opts.inlineSmallReads === true;
    const small = await this.small?.get(id, inline);
    if (small) return bufferReader(small);
    let f: number;
    try {
      f = inline ? fs.openSync(path, 'r') : await fd.open(path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    let closed = false;
    return {
      read: async (offset, length, into) => {
        const buf = into && into.length >= length ? into : Buffer.allocUnsafe(length);
        let got = 0;
        while (got < length) {
          const n = length - got;
          const bytesRead = inline && n <= INLINE_READ_BYTES ? fs.readSync(f, buf, got, n, offset + got) : (await fd.read(f, buf, got, n, offset + got)).bytesRead;
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        return got === buf.length ? buf : buf.subarray(0, got);
      },
      close: async () => {
        if (closed) return;
        closed = true;
        if (inline) fs.closeSync(f);
        else await fd.close(f);
      },
    };
  }

  /** A file is checked by the worker; a blob the small-blob store holds (in memory: no worker needed) is read. */
  protected override async _checkBlob(id: string, expect: UnitChecksums): Promise<UnitCheck | undefined> {
    // Looked up as _open does: on the event loop only for a site that reads there (a lookup may wait on the disk).
    if (this.small?.mayHold(expect.size) && (await this.small.get(id, this.opts.inlineSmallReads === true)) !== undefined) return undefined;
    return fileChecker.check(this.pathOf(id), expect);
  }

  protected async _delete(id: string): Promise<void> {
    await Promise.all([
      this.small?.del(id),
      unlink(this.pathOf(id)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      }),
    ]);
  }

  protected async _stat(id: string): Promise<{ size: number } | undefined> {
    const small = await this.small?.get(id, false);
    if (small) return { size: small.length };
    try {
      return { size: (await stat(this.pathOf(id))).size };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  protected async *_list(): AsyncIterable<string> {
    if (this.small) yield* this.small.ids();
    for (const shard of (await readdir(this.blobDir)).sort()) {
      for (const name of await readdir(join(this.blobDir, shard))) yield name;
    }
  }

  override async clearStaleTemp(olderThanMs: number): Promise<number> {
    const cutoff = Date.now() - olderThanMs;
    let n = 0;
    for (const name of await readdir(this.tmpDir)) {
      const path = join(this.tmpDir, name);
      const st = await stat(path).catch(() => undefined);
      if (st && st.mtimeMs < cutoff) {
        await unlink(path).catch(() => undefined);
        n++;
      }
    }
    return n;
  }

  async health(): Promise<boolean> {
    try {
      await stat(this.tmpDir);
      return true;
    } catch {
      return false;
    }
  }

  async capacity(): Promise<{ total: number; free: number }> {
    const s = await statfs(this.root);
    // As df counts it: blocks reserved for root (or otherwise unavailable) are neither used nor free to us.
    return { total: (s.blocks - s.bfree + s.bavail) * s.bsize, free: s.bavail * s.bsize };
  }

  async close(): Promise<void> {
    await this.small?.close();
    this.small = undefined;
  }
}

/** A reader over a blob already in memory (from the small-blob store). */
function bufferReader(data: Buffer): BlobReader {
  return {
    read: async (offset, length, into) => {
      const part = data.subarray(offset, offset + length);
      if (!into) return part;
      part.copy(into);
      return into.subarray(0, part.length);
    },
    close: async () => {},
  };
}

/**
 * fsync of one directory, shared by concurrent callers: whoever arrives while
 * a sync runs waits for the next one (which starts after their rename), so a
 * burst of writes into one directory costs two fsyncs, not one each.
 */
class CoalescedSync {
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  constructor(private readonly dir: string) {}

  sync(): Promise<void> {
    if (!this.running) {
      this.running = this.run().finally(() => (this.running = undefined));
      return this.running;
    }
    this.queued ??= this.running.catch(() => undefined).then(() => {
      this.queued = undefined;
      return this.sync();
    });
    return this.queued;
  }

  private async run(): Promise<void> {
    const d = await fd.open(this.dir, 'r');
    try {
      await fd.fsync(d);
    } finally {
      await fd.close(d);
    }
  }
}
