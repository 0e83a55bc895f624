// A local site's small blobs, kept in one LevelDB under the site's root
// instead of a file each. A durable small write then costs a share of one
// grouped log fsync, where a file costs a creation, an fsync and a directory
// fsync: on the embedded default's single disk that is most of a small PUT.
// LevelDB's log is checksummed and replayed at open, so an acknowledged
// blob survives a crash and a torn write is never read back.
import { statSync } from 'node:fs';
import { Level } from 'level';
import { GroupCommit } from '../group-commit.js';

type Op = { type: 'put'; key: string; value: Buffer } | { type: 'del'; key: string };

/**
 * The size of the largest blob the store has ever taken (decimal text), kept
 * beside the blobs under a key no blob id can be, and written in the batch
 * that first stores a blob that large. A blob larger than that is a file,
 * so reads and checks that know a blob's size skip the store's lookup. The
 * record is added by the batch write itself, from the blobs that batch
 * holds: batches are written one at a time, so it only ever grows, and a
 * blob is never durable without a record that covers it (a failed batch
 * that raised it leaves it for the next batch to write).
 */
const LARGEST = '~largest';

export class SmallBlobStore {
  private readonly durable: GroupCommit<Op>;
  /** Lookups skip sizes above this: raised before a larger blob is written, never lowered (a delete leaves it), so it may only overstate. */
  private largest: number;

  private constructor(
    private readonly db: Level<string, Buffer>,
    private readonly path: string,
    private readonly identity: string,
    /** The record as written (see LARGEST). */
    private recorded: number,
  ) {
    this.durable = new GroupCommit(async (ops) => {
      if (!this.inPlace()) throw Object.assign(new Error(`${this.path} is gone or was replaced since it was opened`), { code: 'ENOENT' });
      const biggest = ops.reduce((n, op) => (op.type === 'put' ? Math.max(n, op.value.length) : n), 0);
      const record: Op[] = biggest > this.recorded ? [{ type: 'put', key: LARGEST, value: Buffer.from(String(biggest)) }] : [];
      await db.batch([...ops, ...record], { sync: true }).catch((err: Error) => {
        // LevelDB reports a full disk as a generic I/O error; a site's full disk must read as one (FLOWS raises a quota issue).
        throw /No space left on device/.test(err.message) ? Object.assign(err, { code: 'ENOSPC' }) : err;
      });
      this.recorded = Math.max(this.recorded, biggest);
    });
    this.largest = recorded;
  }

  /** `unknownLargest`: the size of blob a store that never recorded its largest may hold. */
  static async open(path: string, unknownLargest: number): Promise<SmallBlobStore> {
    // No compression: a museum's files (images, scans, archives) are compressed
    // already. Larger memtables than LevelDB's 4 MiB: values are kilobytes, not
    // bytes, and fewer, larger level-0 tables mean less compaction.
    const db = new Level<string, Buffer>(path, { keyEncoding: 'utf8', valueEncoding: 'buffer', compression: false, writeBufferSize: 16 << 20 });
    await db.open();
    const recorded = await db.get(LARGEST);
    // A store written before the record was kept, not empty: any size up to `unknownLargest` may be in it.
    const largest = recorded !== undefined ? Number(recorded.toString()) : (await db.keys({ limit: 1 }).all()).length > 0 ? unknownLargest : 0;
    return new SmallBlobStore(db, path, identityOf(path)!, largest);
  }

  /**
   * True while the store's directory is the one opened. LevelDB keeps its
   * files open, so a site directory removed, moved or replaced under a
   * running gateway would go on taking writes into files no one can see; a
   * site's files fail then, and so must its durable writes (checked once per
   * group). Reads need no check: what they serve is verified against its
   * checksums either way.
   */
  private inPlace(): boolean {
    return identityOf(this.path) === this.identity;
  }

  /** Resolves once the blob is durable; fails if the store's directory has gone (see inPlace). */
  put(id: string, data: Buffer): Promise<void> {
    this.largest = Math.max(this.largest, data.length); // before the blob can be read, so no lookup skips it
    return this.durable.commit([{ type: 'put', key: id, value: data }]);
  }

  /** False when the store cannot hold a blob of `size` bytes: it is a file, no lookup needed. */
  mayHold(size: number): boolean {
    return size <= this.largest;
  }

  /** `sync` answers on the event loop (from LevelDB's caches, for the hot tier) instead of the thread pool. */
  get(id: string, sync: boolean): Buffer | undefined | Promise<Buffer | undefined> {
    return sync ? this.db.getSync(id) : this.db.get(id);
  }

  /**
   * Removes the blob. Not synced unless `durable`: a delete lost in a crash
   * leaves a blob no record points to, which the FLOWS sweep clears.
   */
  del(id: string, durable = false): Promise<void> {
    return durable ? this.durable.commit([{ type: 'del', key: id }]) : this.db.del(id);
  }

  async *ids(): AsyncIterable<string> {
    for await (const id of this.db.keys()) if (id !== LARGEST) yield id;
  }

  close(): Promise<void> {
    return this.db.close();
  }
}

function identityOf(path: string): string | undefined {
  const st = statSync(path, { throwIfNoEntry: false });
  return st && `${st.dev}:${st.ino}`;
}
