// Reading a coded object from its shards, stripe by stripe, streaming. The
// healthy path reads the k data pieces of each stripe in parallel and sends
// them as they are (systematic code: no decoding). A piece that is missing,
// unreadable or fails its CRC32 is reported, its shard is skipped for the rest
// of the read, and the stripe is rebuilt from the parity pieces. Fewer than k
// good pieces in a stripe is NO_GOOD_COPY: a clear error, never wrong bytes.
// The next stripe is fetched while the current one is being sent.
import { crc32 } from 'node:zlib';
import { EngineError } from '../errors.js';
import type { ShardLayout } from '../namespace/records.js';
import type { ByteRange, CopyFailure } from '../read/segment-reader.js';
import type { BlobReader, Site } from '../sites/site.js';
import type { Codec } from './codec.js';
import { pieceSizeOf, stripeBytes, stripesCovering } from './layout.js';

export interface DecodeReport {
  /** Set once any stripe needed parity: the read took the degraded path. */
  degraded: boolean;
}

export async function* readCoded(
  layout: ShardLayout,
  siteOf: (name: string) => Site | undefined,
  codec: Codec,
  range: ByteRange,
  onFailure: (f: CopyFailure) => void,
  report: DecodeReport = { degraded: false },
): AsyncGenerator<Buffer> {
  if (range.end <= range.start) return;
  const shards = new ShardReaders(layout, siteOf, onFailure);
  const per = stripeBytes(layout);
  try {
    const { first, last } = stripesCovering(layout, range.start, range.end);
    const fetch = (s: number) => {
      const p = readStripe(layout, shards, codec, s, report);
      p.catch(() => undefined); // a read-ahead the consumer never awaits must not crash the process
      return p;
    };
    let next = fetch(first);
    for (let s = first; s <= last; s++) {
      const data = await next;
      if (s < last) next = fetch(s + 1);
      const base = s * per;
      yield data.subarray(Math.max(range.start - base, 0), Math.min(range.end - base, per));
    }
  } finally {
    await shards.close();
  }
}

/**
 * The k data pieces of stripe `s`, back to back, rebuilt from parity if need
 * be. Pieces are read straight into their slots; parity space is made only
 * when a stripe needs it.
 */
async function readStripe(layout: ShardLayout, shards: ShardReaders, codec: Codec, s: number, report: DecodeReport): Promise<Buffer> {
  const { k, m } = layout;
  const pieceSize = pieceSizeOf(layout, s);
  // Every byte is overwritten: by a read piece, or by the rebuild of a piece that could not be read.
  const data = Buffer.allocUnsafe(k * pieceSize);
  let parity: Buffer | undefined;
  const slot = (i: number) => (i < k ? data.subarray(i * pieceSize, (i + 1) * pieceSize) : parity!.subarray((i - k) * pieceSize, (i - k + 1) * pieceSize));
  const good = new Set<number>();
  const tryPieces = async (indexes: number[]) => {
    await Promise.all(
      indexes.map(async (i) => {
        if (await shards.readPiece(i, s, slot(i))) good.add(i);
      }),
    );
  };
  await tryPieces(range(0, k));
  if (good.size === k) return data;
  report.degraded = true;
  parity = Buffer.allocUnsafe(m * pieceSize);
  await tryPieces(range(k, k + m));
  if (good.size < k) {
    throw new EngineError('NO_GOOD_COPY', `stripe ${s}: only ${good.size} of the ${k} pieces needed could be read intact`);
  }
  const missing = range(0, k + m).filter((i) => !good.has(i));
  await codec.reconstruct(data, parity, pieceSize, missing);
  return data;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

/** One lazily opened reader per shard; a shard that fails once is not asked again in this read. */
class ShardReaders {
  private readonly readers = new Map<number, Promise<BlobReader | undefined>>();
  private readonly failed = new Set<number>();
  private readonly crcs: Buffer[];

  constructor(
    private readonly layout: ShardLayout,
    private readonly siteOf: (name: string) => Site | undefined,
    private readonly onFailure: (f: CopyFailure) => void,
  ) {
    this.crcs = layout.shards.map((sh) => Buffer.from(sh.crc32, 'base64'));
  }

  /** Reads piece `i` of stripe `s` into `slot` and verifies it; false (reported) when it cannot be had. */
  async readPiece(i: number, s: number, slot: Buffer): Promise<boolean> {
    if (this.failed.has(i)) return false;
    const shard = this.layout.shards[i]!;
    let reason: string;
    try {
      const site = this.siteOf(shard.site);
      if (!site) throw new Error(`site ${shard.site} is not configured`);
      let reader = this.readers.get(i);
      if (!reader) {
        reader = site.open(shard.blob);
        this.readers.set(i, reader);
      }
      const r = await reader;
      if (!r) {
        reason = 'missing';
      } else {
        const size = pieceSizeOf(this.layout, s);
        const piece = await r.read(s * this.layout.pieceSize, size, slot);
        const expected = this.crcs[i]!.readUInt32BE(s * 4);
        if (piece.length === size && crc32(piece) === expected) {
          if (piece.buffer !== slot.buffer || piece.byteOffset !== slot.byteOffset) piece.copy(slot); // a backend that did not read into it
          return true;
        }
        reason = piece.length === size ? `checksum mismatch in stripe ${s}` : `short read in stripe ${s}`;
      }
    } catch (err) {
      reason = `unreadable: ${(err as Error).message}`;
    }
    this.failed.add(i);
    this.onFailure({ site: shard.site, blob: shard.blob, reason: `shard ${i}: ${reason}` });
    return false;
  }

  async close(): Promise<void> {
    await Promise.all(
      [...this.readers.values()].map(async (r) => (await r.catch(() => undefined))?.close().catch(() => undefined)),
    );
    this.readers.clear();
  }
}
