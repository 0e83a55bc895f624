// Checking and rebuilding the stored copies of one object. A full copy is
// checked block by block against its CRC32s; a shard stripe by stripe against
// its per-stripe CRC32s. A rebuild reads only sources that pass their own
// checksums as they are read (a source that fails aborts the rebuild), writes
// the blob again under the same id (temp name, fsync, rename: a crash leaves
// the old blob or the new one), and is verified by reading it back.
import { crc32 } from 'node:zlib';
import type { Codec } from '../erasure/codec.js';
import { verifyShard } from '../erasure/encoder.js';
import { pieceSizeOf, shardBytes } from '../erasure/layout.js';
import type { Segment, ShardLayout } from '../namespace/records.js';
import type { BlobReader, Site } from '../sites/site.js';

/** What a check found: healthy, absent, or present with wrong bytes. */
export type Finding = { state: 'ok' } | { state: 'missing' | 'corrupt' | 'unreadable'; detail: string };

/** Called with the bytes read, so the caller can hold a rate. */
export type Pace = (bytes: number) => Promise<void>;

async function withReader<T>(site: Site, blob: string, fn: (r: BlobReader) => Promise<T>): Promise<T | Finding> {
  let reader: BlobReader | undefined;
  try {
    reader = await site.open(blob);
  } catch (err) {
    return { state: 'unreadable', detail: `site ${site.name}: ${(err as Error).message}` };
  }
  if (!reader) return { state: 'missing', detail: `blob ${blob} is missing from site ${site.name}` };
  try {
    return await fn(reader);
  } catch (err) {
    return { state: 'unreadable', detail: `site ${site.name}: ${(err as Error).message}` };
  } finally {
    await reader.close().catch(() => undefined);
  }
}

/** Bytes a check reads at once: several blocks or pieces per read, so a pass costs few syscalls and seeks. */
const CHECK_READ = 4 << 20;

/**
 * The blob reads of a pass's checks. At most `slots()` are in flight at
 * once (asked at each read, so the limit can follow client load): a local
 * site reads on libuv's thread pool (four threads by default), and a
 * client's read queues behind every scrub read already queued there. The
 * read buffers are reused from blob to blob, so a pass over small objects
 * makes no garbage of them.
 */
export class CheckReads {
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly spare: Buffer[] = [];

  constructor(private readonly slots: () => number) {}

  /** Reads in flight now (for tests and status). */
  get active(): number {
    return this.inFlight;
  }

  async read(r: BlobReader, offset: number, length: number, into: Buffer): Promise<Buffer> {
    if (this.inFlight < this.slots()) this.inFlight++;
    else await new Promise<void>((res) => this.waiting.push(res));
    try {
      return await r.read(offset, length, into);
    } finally {
      this.inFlight--;
      // Wake waiters while the limit (which may have risen) leaves room.
      while (this.waiting.length > 0 && this.inFlight < this.slots()) {
        this.inFlight++;
        this.waiting.shift()!();
      }
    }
  }

  /** A buffer of at least `bytes`; give it back once no read uses it. */
  take(bytes: number): Buffer {
    const buf = this.spare.pop();
    return buf && buf.length >= bytes ? buf : Buffer.allocUnsafe(Math.max(bytes, CHECK_READ + 1));
  }

  give(buf: Buffer): void {
    this.spare.push(buf);
  }
}

/**
 * A blob read front to back in large reads of whole units (blocks or
 * pieces, `stride` apart), the next read in flight while the caller checks
 * the units of the last, so the disk is never idle. Two buffers take turns:
 * a unit's bytes are valid until the caller moves two reads on. The last
 * read asks for one byte more than `total`, so a blob that is too long is
 * found without a read of its own.
 */
async function withUnits<T>(r: BlobReader, total: number, stride: number, reads: CheckReads, fn: (units: UnitReader) => Promise<T>): Promise<T> {
  const per = Math.max(1, Math.floor(CHECK_READ / stride)) * stride;
  const last = Math.max(0, Math.ceil(total / per) - 1);
  const bufs = [reads.take(per + 1), reads.take(per + 1)]; // + 1: room for the byte past the end
  const start = (c: number) => {
    const off = c * per;
    const len = Math.min(per, total - off) + (c === last ? 1 : 0);
    const read = reads.read(r, off, len, bufs[c % 2]!.subarray(0, len));
    read.catch(() => undefined); // a read-ahead nobody awaits must not crash the process
    return read;
  };
  let at = -1;
  let chunk: Buffer = Buffer.alloc(0);
  let next: Promise<Buffer> | undefined;
  const load = async (c: number) => {
    if (c === at) return;
    chunk = await (next && at === c - 1 ? next : start(c));
    at = c;
    next = c < last ? start(c + 1) : undefined;
  };
  try {
    return await fn({
      async unit(i, len) {
        const off = i * stride;
        const c = Math.floor(off / per);
        await load(c);
        const from = off - c * per;
        return chunk.subarray(from, from + len);
      },
      async longer() {
        await load(last);
        return last * per + chunk.length > total;
      },
    });
  } finally {
    await next?.catch(() => undefined); // its buffer goes back to the pool only once nothing writes into it
    for (const b of bufs) reads.give(b);
  }
}

interface UnitReader {
  /** Unit `i` (`len` bytes; shorter when the blob is); units are asked for in order. */
  unit(i: number, len: number): Promise<Buffer>;
  /** True when the blob holds more than `total` bytes; asked after the last unit. */
  longer(): Promise<boolean>;
}

/** Check one full copy of a segment on `site`. */
export async function checkCopy(site: Site, seg: Segment, reads: CheckReads, pace: Pace): Promise<Finding> {
  const crcs = Buffer.from(seg.crc32, 'base64');
  return withReader(site, seg.blob, (r) =>
    withUnits(r, seg.size, seg.blockSize, reads, async (blocks): Promise<Finding> => {
      for (let b = 0, off = 0; off < seg.size; b++, off += seg.blockSize) {
        const len = Math.min(seg.blockSize, seg.size - off);
        const buf = await blocks.unit(b, len);
        await pace(buf.length);
        if (buf.length !== len) return { state: 'corrupt', detail: `blob ${seg.blob} on site ${site.name} is short: ${off + buf.length} of ${seg.size} bytes` };
        if (crc32(buf) !== crcs.readUInt32BE(b * 4)) return { state: 'corrupt', detail: `blob ${seg.blob} on site ${site.name} fails its checksum at offset ${off}` };
      }
      if (await blocks.longer()) return { state: 'corrupt', detail: `blob ${seg.blob} on site ${site.name} is longer than ${seg.size} bytes` };
      return { state: 'ok' };
    }),
  );
}

/** Check shard `index` of a layout on its site. */
export async function checkShard(site: Site, layout: ShardLayout, index: number, reads: CheckReads, pace: Pace): Promise<Finding> {
  const shard = layout.shards[index]!;
  const crcs = Buffer.from(shard.crc32, 'base64');
  const size = shardBytes(layout);
  return withReader(site, shard.blob, (r) =>
    withUnits(r, size, layout.pieceSize, reads, async (pieces): Promise<Finding> => {
      for (let s = 0; s < layout.stripes; s++) {
        const len = pieceSizeOf(layout, s);
        const piece = await pieces.unit(s, len);
        await pace(piece.length);
        if (piece.length !== len || crc32(piece) !== crcs.readUInt32BE(s * 4)) {
          return { state: 'corrupt', detail: `shard ${index} (blob ${shard.blob}) on site ${site.name} fails its checksum at stripe ${s}` };
        }
      }
      if (await pieces.longer()) return { state: 'corrupt', detail: `shard ${index} (blob ${shard.blob}) on site ${site.name} is longer than ${size} bytes` };
      return { state: 'ok' };
    }),
  );
}

/**
 * Write `seg` onto `target` from the verified bytes `source` yields (a
 * healthy copy read through the engine's verifying reader, or decoded
 * shards), then read it back. Throws when the rebuild could not be verified.
 */
export async function rewriteCopy(target: Site, seg: Segment, source: AsyncIterable<Buffer>, reads: CheckReads, pace: Pace): Promise<void> {
  const writer = target.createWriter(seg.blob);
  try {
    let n = 0;
    for await (const chunk of source) {
      n += chunk.length;
      await writer.write(chunk);
      await pace(chunk.length);
    }
    if (n !== seg.size) throw new Error(`source gave ${n} of ${seg.size} bytes`);
    await writer.commit();
  } catch (err) {
    await writer.abort();
    throw err;
  }
  const back = await checkCopy(target, seg, reads, pace);
  if (back.state !== 'ok') throw new Error(`rebuilt copy read back wrong: ${back.detail}`);
}

/**
 * Rebuild the shards in `rebuild` from the shards in `sources` (at least k,
 * each checked piece by piece as it is read), stripe by stripe, then verify
 * each rebuilt shard by reading it back. Throws when that is not possible.
 */
export async function rebuildShards(
  layout: ShardLayout,
  siteOf: (name: string) => Site | undefined,
  codec: Codec,
  sources: readonly number[],
  rebuild: readonly number[],
  pace: Pace,
): Promise<void> {
  const { k, m } = layout;
  if (sources.length < k) throw new Error(`only ${sources.length} healthy shards; ${k} are needed to rebuild`);
  const used = sources.slice(0, k);
  const targets = Array.from({ length: k + m }, (_, i) => i).filter((i) => !used.includes(i));
  const site = (i: number) => {
    const s = siteOf(layout.shards[i]!.site);
    if (!s) throw new Error(`site ${layout.shards[i]!.site} is not configured`);
    return s;
  };
  const readers = new Map<number, BlobReader>();
  const writers = rebuild.map((i) => ({ i, w: site(i).createWriter(layout.shards[i]!.blob) }));
  try {
    for (const i of used) {
      const r = await site(i).open(layout.shards[i]!.blob);
      if (!r) throw new Error(`shard ${i} vanished during the rebuild`);
      readers.set(i, r);
    }
    for (let s = 0; s < layout.stripes; s++) {
      const piece = pieceSizeOf(layout, s);
      const data = Buffer.alloc(k * piece);
      const parity = Buffer.alloc(m * piece);
      const slot = (i: number) => (i < k ? data.subarray(i * piece, (i + 1) * piece) : parity.subarray((i - k) * piece, (i - k + 1) * piece));
      for (const i of used) {
        const buf = await readers.get(i)!.read(s * layout.pieceSize, piece);
        await pace(buf.length);
        if (buf.length !== piece || crc32(buf) !== Buffer.from(layout.shards[i]!.crc32, 'base64').readUInt32BE(s * 4)) {
          throw new Error(`source shard ${i} failed its checksum at stripe ${s}; not used`);
        }
        buf.copy(slot(i));
      }
      await codec.reconstruct(data, parity, piece, targets);
      for (const { i, w } of writers) {
        const out = Buffer.from(slot(i));
        if (crc32(out) !== Buffer.from(layout.shards[i]!.crc32, 'base64').readUInt32BE(s * 4)) throw new Error(`rebuilt piece ${i} of stripe ${s} does not match its checksum`);
        await w.write(out);
      }
    }
    for (const { w } of writers) await w.commit();
  } catch (err) {
    await Promise.all(writers.map(({ w }) => w.abort()));
    throw err;
  } finally {
    await Promise.all([...readers.values()].map((r) => r.close().catch(() => undefined)));
  }
  for (const i of rebuild) await verifyShard(site(i), layout, i);
}
