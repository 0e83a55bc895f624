// A site in a local directory: the embedded default for sites A, B, C and the
// hot tier. Layout under the root:
//   blobs/<first two hex digits of id>/<id>   committed blobs
//   tmp/<id>.<nonce>                          writes in progress (cleared at open)
// A write goes to tmp, is fsynced, renamed into blobs/ and the directory is
// fsynced, so a crash leaves either no blob or a whole one.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, statfs, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Site, type BlobReader, type BlobWriter, type SiteSupports } from './site.js';

export class LocalDirSite extends Site {
  readonly supports: SiteSupports = { durableRename: true };
  private readonly blobDir: string;
  private readonly tmpDir: string;
  private readonly dirSyncs = new Map<string, CoalescedSync>();

  private constructor(name: string, readonly root: string) {
    super(name);
    this.blobDir = join(root, 'blobs');
    this.tmpDir = join(root, 'tmp');
  }

  /** Opens (creating if needed) the site; clears writes left by a crash. */
  static async open(name: string, root: string): Promise<LocalDirSite> {
    const site = new LocalDirSite(name, root);
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
    const tmpPath = join(this.tmpDir, `${id}.${randomBytes(4).toString('hex')}`);
    const finalPath = this.pathOf(id);
    let handle: Promise<FileHandle> | undefined;
    let done = false;
    const fh = () => (handle ??= open(tmpPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o640));
    return {
      write: async (chunk) => {
        if (done) throw new Error(`blob ${id} was already committed or aborted`);
        const h = await fh();
        let off = 0;
        while (off < chunk.length) {
          const { bytesWritten } = await h.write(chunk, off, chunk.length - off);
          off += bytesWritten;
        }
      },
      commit: async () => {
        if (done) throw new Error(`blob ${id} was already committed or aborted`);
        const h = await fh();
        await h.sync();
        await h.close();
        await rename(tmpPath, finalPath);
        done = true;
        await this.syncDir(join(this.blobDir, id.slice(0, 2)));
      },
      abort: async () => {
        if (done) return;
        done = true;
        if (!handle) return;
        await (await handle.catch(() => undefined))?.close().catch(() => undefined);
        await unlink(tmpPath).catch(() => undefined);
      },
    };
  }

  protected async _open(id: string): Promise<BlobReader | undefined> {
    let h: FileHandle;
    try {
      h = await open(this.pathOf(id), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    return {
      read: async (offset, length, into) => {
        const buf = into && into.length >= length ? into : Buffer.allocUnsafe(length);
        let got = 0;
        while (got < length) {
          const { bytesRead } = await h.read(buf, got, length - got, offset + got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        return got === buf.length ? buf : buf.subarray(0, got);
      },
      close: () => h.close(),
    };
  }

  protected async _delete(id: string): Promise<void> {
    await unlink(this.pathOf(id)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }

  protected async _stat(id: string): Promise<{ size: number } | undefined> {
    try {
      return { size: (await stat(this.pathOf(id))).size };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  protected async *_list(): AsyncIterable<string> {
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

  async close(): Promise<void> {}
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
    const h = await open(this.dir, 'r');
    try {
      await h.sync();
    } finally {
      await h.close();
    }
  }
}
