// The write path for one run of bytes: a single pass over the body, teed into
// every target site, hashing (MD5 for the ETag, SHA-256, a CRC32 per block)
// as it goes. Each site makes its copy durable (on a local disk: temp name,
// fsync, rename; small blobs written whole) only once the whole body has arrived and the caller has accepted the
// digests; any failure before that aborts every copy, leaving nothing behind.
//
// Failure policy: the hot tier must take the write. Of the replica sites,
// `minReplicas` must commit; a site that fails is dropped from the copy list
// and the write carries on with the rest, so a site vanishing mid-write costs
// that copy, not the write, when the policy allows it.
import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { EngineError } from '../errors.js';
import type { Logger } from '../log.js';
import type { EngineMetrics } from '../metrics.js';
import type { Segment } from '../namespace/records.js';
import type { BlobWriter, Site } from '../sites/site.js';

/** Bytes gathered before a write is issued to the sites (fewer, larger syscalls). */
const FLUSH_BYTES = 1 << 20;

export interface Digests {
  size: number;
  md5: Buffer;
  sha256: Buffer;
}

export interface SegmentWriteOptions {
  blockSize: number;
  maxSize: number;
  /** Bytes the client declared; a body that ends short is IncompleteBody. */
  expectedSize?: number;
  /** Called after the last byte, before anything commits: throw to refuse the body. */
  beforeCommit?: (digests: Digests) => void | Promise<void>;
  /** Replica sites that must commit (the hot tier always must). */
  minReplicas: number;
}

export interface WrittenSegment {
  segment: Segment;
  /** Names of the sites that hold the committed blob, hot tier first. */
  copies: string[];
  digests: Digests;
}

/**
 * A new blob id: 32 hex digits. Sites shard blobs into directories by the
 * first two, so those come from the clock (they move on every ~65 s and
 * cycle through all 256 in under five hours): blobs written together land in
 * one directory and share its fsync, and the directories still fill evenly.
 */
export function newBlobId(): string {
  const shard = Math.floor(Date.now() / 65_536) & 0xff;
  return shard.toString(16).padStart(2, '0') + randomBytes(15).toString('hex');
}

interface WriteDeps {
  log: Logger;
  metrics: EngineMetrics;
}

interface Target {
  site: Site;
  writer: BlobWriter;
  error?: unknown;
}

export async function writeSegment(
  body: AsyncIterable<Buffer>,
  hot: Site,
  replicas: readonly Site[],
  opts: SegmentWriteOptions,
  deps: WriteDeps,
): Promise<WrittenSegment> {
  const id = newBlobId();
  const targets: Target[] = [hot, ...replicas].map((site) => ({ site, writer: site.createWriter(id, opts.expectedSize) }));
  const md5 = createHash('md5');
  const sha256 = createHash('sha256');
  const crcs: number[] = [];
  let crc = 0;
  let inBlock = 0;
  let size = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let inflight: Promise<void> = Promise.resolve();

  const fail = (t: Target, err: unknown) => {
    if (t.error) return;
    t.error = err;
    deps.metrics.siteWriteFailures.inc({ site: t.site.name });
    deps.log.warn({ site: t.site.name, blob: id, err: String(err) }, 'site write failed');
    void t.writer.abort();
  };
  const live = () => targets.filter((t) => !t.error);
  const checkQuorum = () => {
    const ok = live();
    if (ok[0]?.site !== hot || ok.length - 1 < opts.minReplicas) {
      throw new EngineError('SITE_UNAVAILABLE', `too few sites took the write (${ok.map((t) => t.site.name).join(',') || 'none'})`);
    }
  };
  const flush = async () => {
    if (pendingBytes === 0) return;
    const data = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    await inflight; // keep at most one write in flight while the next is gathered
    inflight = Promise.all(live().map((t) => t.writer.write(data).catch((err) => fail(t, err)))).then(checkQuorum);
  };

  try {
    for await (const chunk of body) {
      size += chunk.length;
      if (size > opts.maxSize) throw new EngineError('ENTITY_TOO_LARGE');
      md5.update(chunk);
      sha256.update(chunk);
      for (let off = 0; off < chunk.length; ) {
        const n = Math.min(opts.blockSize - inBlock, chunk.length - off);
        crc = crc32(chunk.subarray(off, off + n), crc);
        inBlock += n;
        off += n;
        if (inBlock === opts.blockSize) {
          crcs.push(crc);
          crc = 0;
          inBlock = 0;
        }
      }
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes >= FLUSH_BYTES) await flush();
    }
    if (inBlock > 0) crcs.push(crc);
    await flush();
    await inflight;
    if (opts.expectedSize !== undefined && size !== opts.expectedSize) {
      throw new EngineError('INCOMPLETE_BODY', `received ${size} of ${opts.expectedSize} bytes`);
    }
    const digests: Digests = { size, md5: md5.digest(), sha256: sha256.digest() };
    await opts.beforeCommit?.(digests);
    await Promise.all(
      live().map(async (t) => {
        const end = deps.metrics.siteWriteSeconds.startTimer({ site: t.site.name });
        try {
          await t.writer.commit();
          end();
        } catch (err) {
          fail(t, err);
        }
      }),
    );
    checkQuorum();
    const crcBuf = Buffer.alloc(crcs.length * 4);
    crcs.forEach((c, i) => crcBuf.writeUInt32BE(c, i * 4));
    return {
      segment: {
        blob: id,
        size,
        md5: digests.md5.toString('hex'),
        sha256: digests.sha256.toString('hex'),
        blockSize: opts.blockSize,
        crc32: crcBuf.toString('base64'),
      },
      copies: live().map((t) => t.site.name),
      digests,
    };
  } catch (err) {
    await inflight.catch(() => undefined);
    // Committed copies of a refused write are removed too: nothing half-visible.
    await Promise.all(targets.map((t) => t.writer.abort().then(() => t.site.delete(id)).catch(() => undefined)));
    if (err instanceof EngineError) throw err;
    if (isAbort(err)) throw new EngineError('ABORTED', 'the client went away before the body ended', { cause: err });
    throw err;
  }
}

function isAbort(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || (err as Error | undefined)?.message === 'aborted';
}
