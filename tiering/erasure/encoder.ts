// Encoding one object into shards. The object's verified bytes stream in once;
// each stripe's k data pieces and m parity pieces go to their k+m sites as it
// fills. Only after every shard is committed (fsynced) and read back against
// its per-stripe CRC32 does the caller get a layout to commit; on any failure
// every shard written is removed and nothing changes.
import { crc32 } from 'node:zlib';
import { EngineError } from '../errors.js';
import type { ShardLayout } from '../namespace/records.js';
import type { BlobWriter, Site } from '../sites/site.js';
import { newBlobId } from '../write/segment-writer.js';
import type { Codec } from './codec.js';
import { pieceSizeOf, planStripes, shardBytes, type Geometry } from './layout.js';

export async function encodeObject(
  source: AsyncIterable<Buffer>,
  size: number,
  geometry: Geometry,
  siteOf: (name: string) => Site | undefined,
  codec: Codec,
): Promise<ShardLayout> {
  const { k, m } = geometry;
  const { pieceSize, lastPieceSize, stripes } = planStripes(size, geometry);
  const targets = geometry.sites.map((name) => {
    const site = siteOf(name);
    if (!site) throw new EngineError('SITE_UNAVAILABLE', `erasure geometry names unknown site ${name}`);
    return { site, blob: newBlobId(), crcs: Buffer.alloc(stripes * 4) };
  });
  const writers: BlobWriter[] = targets.map((t) => t.site.createWriter(t.blob, shardBytes({ pieceSize, lastPieceSize, stripes })));
  let stripe = Buffer.allocUnsafe(k * pieceSize);
  let filled = 0;
  let stripeNo = 0;
  let received = 0;
  // One stripe is encoded and written while the next one fills.
  let inflight: Promise<void> = Promise.resolve();

  const writeStripe = async (buf: Buffer, fill: number, no: number) => {
    const piece = no === stripes - 1 ? lastPieceSize : pieceSize;
    const data = buf.subarray(0, k * piece).fill(0, fill); // the last stripe is zero-padded
    const parity = await codec.encode(data, piece);
    const pieces = [...splitPieces(data, k, piece), ...splitPieces(parity, m, piece)];
    await Promise.all(
      pieces.map((p, i) => {
        targets[i]!.crcs.writeUInt32BE(crc32(p), no * 4);
        return writers[i]!.write(p).catch((err) => {
          throw siteError(targets[i]!.site, 'write', err);
        });
      }),
    );
  };
  const flushStripe = async () => {
    const [buf, fill, no] = [stripe, filled, stripeNo++];
    stripe = Buffer.allocUnsafe(k * pieceSize); // the full one belongs to its write now
    filled = 0;
    await inflight;
    inflight = writeStripe(buf, fill, no);
    inflight.catch(() => undefined); // awaited before the next stripe or at the end
  };

  try {
    for await (const chunk of source) {
      received += chunk.length;
      for (let off = 0; off < chunk.length; ) {
        const n = Math.min(stripe.length - filled, chunk.length - off);
        chunk.copy(stripe, filled, off, off + n);
        filled += n;
        off += n;
        if (filled === stripe.length) await flushStripe();
      }
    }
    if (filled > 0) await flushStripe();
    await inflight;
    if (received !== size || stripeNo !== stripes) throw new EngineError('NO_GOOD_COPY', `read ${received} of ${size} bytes while coding`);
    await Promise.all(
      writers.map((w, i) =>
        w.commit().catch((err) => {
          throw siteError(targets[i]!.site, 'commit', err);
        }),
      ),
    );
    const layout: ShardLayout = {
      k,
      m,
      pieceSize,
      lastPieceSize,
      stripes,
      shards: targets.map((t) => ({ site: t.site.name, blob: t.blob, crc32: t.crcs.toString('base64') })),
    };
    await Promise.all(targets.map((t, i) => verifyShard(t.site, layout, i)));
    return layout;
  } catch (err) {
    await inflight.catch(() => undefined);
    await Promise.all(targets.map((t, i) => writers[i]!.abort().then(() => t.site.delete(t.blob)).catch(() => undefined)));
    throw err;
  }
}

/** Views into the stripe: each stripe has a buffer of its own, never reused. */
function splitPieces(buf: Buffer, n: number, pieceSize: number): Buffer[] {
  return Array.from({ length: n }, (_, i) => buf.subarray(i * pieceSize, (i + 1) * pieceSize));
}

/** Read a committed shard back and check every piece against its CRC32. */
export async function verifyShard(site: Site, layout: ShardLayout, index: number): Promise<void> {
  const shard = layout.shards[index]!;
  const crcs = Buffer.from(shard.crc32, 'base64');
  const reader = await site.open(shard.blob);
  if (!reader) throw new EngineError('SITE_UNAVAILABLE', `shard ${index} vanished from site ${site.name} before it was verified`);
  const into = Buffer.allocUnsafe(layout.pieceSize); // one buffer for every piece: each is only checked
  try {
    for (let s = 0; s < layout.stripes; s++) {
      const size = pieceSizeOf(layout, s);
      const piece = await reader.read(s * layout.pieceSize, size, into);
      if (piece.length !== size || crc32(piece) !== crcs.readUInt32BE(s * 4)) {
        throw new EngineError('SITE_UNAVAILABLE', `shard ${index} on site ${site.name} read back wrong at stripe ${s}`);
      }
    }
  } finally {
    await reader.close();
  }
}

function siteError(site: Site, op: string, err: unknown): EngineError {
  if (err instanceof EngineError) return err;
  return new EngineError('SITE_UNAVAILABLE', `site ${site.name} failed to ${op} a shard: ${(err as Error).message}`, { cause: err });
}
