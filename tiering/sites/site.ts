// A Site holds blobs — opaque byte strings named by generated ids — in one
// place (a local directory, a remote S3 bucket, memory). Everything above the
// site speaks this interface only. The abstract base validates arguments once
// and calls the small protected methods each backend implements.

import type { UnitCheck, UnitChecksums } from './blob-check.js';

/** Blob ids are generated (see newBlobId), never derived from object keys. */
const BLOB_ID = /^[0-9a-f]{32}$/;

export interface BlobWriter {
  /** Append bytes; resolves when the backend has taken them (backpressure). */
  write(chunk: Buffer): Promise<void>;
  /** Make the blob durable under its final name. After this resolves the blob survives a crash. */
  commit(): Promise<void>;
  /** Drop everything written; never leaves a visible blob. Safe to call more than once. */
  abort(): Promise<void>;
}

export interface BlobReader {
  /**
   * Read up to `length` bytes at `offset`; a shorter buffer means end of blob.
   * With `into` (at least `length` bytes) a backend may read into it and
   * return a view of it, so a caller streaming a whole blob (the scrub)
   * reuses its buffers instead of making garbage of one per read.
   */
  read(offset: number, length: number, into?: Buffer): Promise<Buffer>;
  close(): Promise<void>;
}

export interface SiteSupports {
  /** Writes are fsynced and renamed into place (local disk) rather than uploaded. */
  durableRename: boolean;
}

export abstract class Site {
  abstract readonly supports: SiteSupports;
  private readonly writeFailureListeners: ((err: unknown, bytes: number) => void)[] = [];
  constructor(readonly name: string) {}

  /**
   * A writer for a new blob. `expectedBytes`, when the caller knows it, is
   * what a failed write reports as the bytes it needed.
   */
  createWriter(id: string, expectedBytes?: number): BlobWriter {
    assertBlobId(id);
    const writer = this._createWriter(id);
    return this.writeFailureListeners.length === 0 ? writer : reportingFailure(writer, expectedBytes, (err, bytes) => this.writeFailureListeners.forEach((l) => l(err, bytes)));
  }

  /**
   * Hear of every write to this site that fails, whoever wrote (objects,
   * shards, repairs, recalls), with the bytes it needed (declared, else taken
   * so far): FLOWS reports a full site from it.
   */
  onWriteFailure(listener: (err: unknown, bytes: number) => void): void {
    this.writeFailureListeners.push(listener);
  }
  /** Resolves undefined when the blob does not exist. */
  async open(id: string): Promise<BlobReader | undefined> {
    assertBlobId(id);
    return this._open(id);
  }
  async delete(id: string): Promise<void> {
    assertBlobId(id);
    return this._delete(id);
  }
  async stat(id: string): Promise<{ size: number } | undefined> {
    assertBlobId(id);
    return this._stat(id);
  }
  /**
   * Check a blob against the CRC32s of its units without bringing its bytes
   * onto the event loop, where the backend can (blob-check.ts). Undefined:
   * it cannot for this blob; read it through open().
   */
  async checkBlob(id: string, expect: UnitChecksums): Promise<UnitCheck | undefined> {
    assertBlobId(id);
    return this._checkBlob(id, expect);
  }
  /** Every blob id the site holds (for reconciliation; order unspecified). */
  list(): AsyncIterable<string> {
    return this._list();
  }
  /** Remove temp files of writes started more than `olderThanMs` ago; resolves with how many. Backends without temp files have none. */
  async clearStaleTemp(_olderThanMs: number): Promise<number> {
    return 0;
  }
  /** True when the site answers and accepts I/O. */
  abstract health(): Promise<boolean>;
  /** Bytes free for new blobs, if the backend can tell. */
  abstract capacity(): Promise<{ total: number; free: number } | undefined>;
  abstract close(): Promise<void>;

  protected abstract _createWriter(id: string): BlobWriter;
  protected abstract _open(id: string): Promise<BlobReader | undefined>;
  protected abstract _delete(id: string): Promise<void>;
  protected abstract _stat(id: string): Promise<{ size: number } | undefined>;
  protected abstract _list(): AsyncIterable<string>;
  protected async _checkBlob(_id: string, _expect: UnitChecksums): Promise<UnitCheck | undefined> {
    return undefined;
  }
}

/** `writer`, telling `report` once when a write or the commit fails. */
function reportingFailure(writer: BlobWriter, expectedBytes: number | undefined, report: (err: unknown, bytes: number) => void): BlobWriter {
  let taken = 0;
  let reported = false;
  const failed = (err: unknown): never => {
    if (!reported) {
      reported = true;
      report(err, expectedBytes ?? taken);
    }
    throw err;
  };
  return {
    write: (chunk) => {
      taken += chunk.length;
      return writer.write(chunk).catch(failed);
    },
    commit: () => writer.commit().catch(failed),
    abort: () => writer.abort(),
  };
}

export function assertBlobId(id: string): void {
  if (!BLOB_ID.test(id)) throw new TypeError(`not a blob id: ${JSON.stringify(id).slice(0, 80)}`);
}

export function isBlobId(id: string): boolean {
  return BLOB_ID.test(id);
}
