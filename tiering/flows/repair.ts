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
import { unitsPerRead, type UnitCheck, type UnitChecksums } from '../sites/blob-check.js';
import type { BlobReader, Site } from '../sites/site.js';

/** What a check found: healthy, absent, or present with wrong bytes. */
export type Finding = { state: 'ok' } | { state: 'missing' | 'corrupt' | 'unreadable'; detail: string };

/** Called with the bytes read, so the caller can hold a rate. */
export type Pace = (bytes: number) => Promise<void>;

/**
 * The blob reads of a pass's checks that run on the event loop (blobs a
 * site cannot check off it: see Site.checkBlob). At most `slots()` are in
 * flight at once (asked at each read, so the limit can follow client load).
 * The read buffers are reused from blob to blob, so a pass over small
 * objects makes no garbage of them.
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
    const i = this.spare.findIndex((b) => b.length >= bytes);
    return i >= 0 ? this.spare.splice(i, 1)[0]! : Buffer.allocUnsafe(bytes);
  }

  give(buf: Buffer): void {
    this.spare.push(buf);
  }
}

/**
 * Check a blob against its units' CRC32s: off the event loop where the site
 * can, else read here front to back in large reads of whole units, the next
 * read in flight while the units of the last are checked. Two buffers take
 * turns. The last read asks for one byte more than the blob should hold, so
 * a blob that is too long is found without a read of its own.
 */
async function checkUnits(site: Site, blob: string, expect: UnitChecksums, reads: CheckReads, pace: Pace): Promise<UnitCheck> {
  let offLoop: UnitCheck | undefined;
  try {
    offLoop = await site.checkBlob(blob, expect);
  } catch (err) {
    return { state: 'unreadable', message: (err as Error).message };
  }
  if (offLoop) {
    await pace(bytesRead(offLoop, expect));
    return offLoop;
  }
  let r: BlobReader | undefined;
  try {
    r = await site.open(blob);
  } catch (err) {
    return { state: 'unreadable', message: (err as Error).message };
  }
  if (!r) return { state: 'missing' };
  const { size, unit, crcs } = expect;
  const expected = new DataView(crcs.buffer, crcs.byteOffset, crcs.byteLength);
  const per = unitsPerRead(unit) * unit;
  const last = Math.max(0, Math.ceil(size / per) - 1);
  const bufs = [reads.take(Math.min(per, size) + 1), reads.take(Math.min(per, size) + 1)]; // sized to the blob: a pass checks many small ones at once
  const start = (c: number) => {
    const off = c * per;
    const len = Math.min(per, size - off) + (c === last ? 1 : 0);
    const read = reads.read(r, off, len, bufs[c % 2]!.subarray(0, len));
    read.catch(() => undefined); // a read-ahead nobody awaits must not crash the process
    return read;
  };
  let next: Promise<Buffer> | undefined = start(0);
  try {
    for (let c = 0, u = 0; ; c++) {
      const chunk = await next!;
      next = c < last ? start(c + 1) : undefined;
      const off = c * per;
      const body = Math.min(per, size - off); // the bytes of this read's units
      for (let at = 0; at < Math.min(chunk.length, body); at += unit, u++) {
        const len = Math.min(unit, body - at);
        await pace(len);
        if (at + len > chunk.length) return { state: 'short', bytes: off + chunk.length };
        if (crc32(chunk.subarray(at, at + len)) !== expected.getUint32(u * 4)) return { state: 'mismatch', unit: u };
      }
      if (chunk.length < body) return { state: 'short', bytes: off + chunk.length };
      if (c === last) return chunk.length > body ? { state: 'long' } : { state: 'ok' };
    }
  } catch (err) {
    return { state: 'unreadable', message: (err as Error).message };
  } finally {
    await next?.catch(() => undefined); // its buffer goes back to the pool only once nothing writes into it
    for (const b of bufs) reads.give(b);
    await r.close().catch(() => undefined);
  }
}

/** The bytes a check off the event loop read before it knew (what the pace and a pass's byte count are told). */
function bytesRead(c: UnitCheck, { size, unit }: UnitChecksums): number {
  switch (c.state) {
    case 'ok':
    case 'long':
      return size;
    case 'short':
      return c.bytes;
    case 'mismatch':
      return Math.min(size, (c.unit + 1) * unit);
    default:
      return 0;
  }
}

/** Check one full copy of a segment on `site`. */
export async function checkCopy(site: Site, seg: Segment, reads: CheckReads, pace: Pace): Promise<Finding> {
  const c = await checkUnits(site, seg.blob, { size: seg.size, unit: seg.blockSize, crcs: Buffer.from(seg.crc32, 'base64') }, reads, pace);
  return findingOf(c, site, seg.blob, `blob ${seg.blob} on site ${site.name}`, seg.size, {
    short: (bytes) => `is short: ${bytes} of ${seg.size} bytes`,
    mismatch: (unit) => `fails its checksum at offset ${unit * seg.blockSize}`,
  });
}

/** Check shard `index` of a layout on its site. */
export async function checkShard(site: Site, layout: ShardLayout, index: number, reads: CheckReads, pace: Pace): Promise<Finding> {
  const shard = layout.shards[index]!;
  const size = shardBytes(layout);
  const c = await checkUnits(site, shard.blob, { size, unit: layout.pieceSize, crcs: Buffer.from(shard.crc32, 'base64') }, reads, pace);
  return findingOf(c, site, shard.blob, `shard ${index} (blob ${shard.blob}) on site ${site.name}`, size, {
    short: (bytes) => `fails its checksum at stripe ${Math.floor(bytes / layout.pieceSize)}`,
    mismatch: (unit) => `fails its checksum at stripe ${unit}`,
  });
}

/** A unit check as a finding about `what` (a copy or a shard), in the words of its kind for where it goes wrong. */
function findingOf(c: UnitCheck, site: Site, blob: string, what: string, size: number, words: { short(bytes: number): string; mismatch(unit: number): string }): Finding {
  switch (c.state) {
    case 'ok':
      return c;
    case 'missing':
      return { state: 'missing', detail: `blob ${blob} is missing from site ${site.name}` };
    case 'unreadable':
      return { state: 'unreadable', detail: `site ${site.name}: ${c.message}` };
    case 'short':
      return { state: 'corrupt', detail: `${what} ${words.short(c.bytes)}` };
    case 'mismatch':
      return { state: 'corrupt', detail: `${what} ${words.mismatch(c.unit)}` };
    case 'long':
      return { state: 'corrupt', detail: `${what} is longer than ${size} bytes` };
  }
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
