// The read path for replicated bytes: blocks are read from the first copy in
// order (hot tier, then site A, then site B), each checked against its CRC32
// before it is served. A copy that is missing, unreadable or wrong is
// reported and skipped, and the read carries on from the next copy at the
// same block, so a bad byte is never sent silently. One block is read ahead
// while the previous one is being sent. With a pool, full blocks are read
// into its buffers, and the consumer hands each back once it is sent.
import { crc32 } from 'node:zlib';
import { EngineError } from '../errors.js';
import type { Segment } from '../namespace/records.js';
import type { BlobReader, Site } from '../sites/site.js';
import type { BlockPool } from './block-pool.js';

export interface CopyFailure {
  site: string;
  blob: string;
  reason: string;
}

export interface ByteRange {
  start: number; // inclusive
  end: number; // exclusive
}

/** Yields the bytes of `range` across `segments`, verified block by block. */
export async function* readSegments(
  segments: readonly Segment[],
  sources: readonly Site[],
  range: ByteRange,
  onFailure: (f: CopyFailure) => void,
  pool?: BlockPool,
): AsyncGenerator<Buffer> {
  let base = 0;
  for (const seg of segments) {
    const segStart = Math.max(range.start - base, 0);
    const segEnd = Math.min(range.end - base, seg.size);
    base += seg.size;
    if (segStart >= segEnd) continue;
    yield* readSegment(seg, sources, segStart, segEnd, onFailure, pool);
  }
}

async function* readSegment(
  seg: Segment,
  sources: readonly Site[],
  start: number,
  end: number,
  onFailure: (f: CopyFailure) => void,
  pool: BlockPool | undefined,
): AsyncGenerator<Buffer> {
  const crcs = Buffer.from(seg.crc32, 'base64');
  const copies = new CopyCursor(seg, sources, onFailure, pool);
  try {
    const first = Math.floor(start / seg.blockSize);
    const last = Math.floor((end - 1) / seg.blockSize);
    const readBlock = (b: number): Promise<Buffer> => {
      const off = b * seg.blockSize;
      const len = Math.min(seg.blockSize, seg.size - off);
      const read = copies.readVerified(off, len, crcs.readUInt32BE(b * 4));
      read.catch(() => undefined); // a read-ahead the consumer never awaits must not crash the process
      return read;
    };
    let next = readBlock(first);
    for (let b = first; b <= last; b++) {
      const block = await next;
      if (b < last) next = readBlock(b + 1);
      const off = b * seg.blockSize;
      yield block.subarray(Math.max(start - off, 0), Math.min(end - off, block.length));
    }
  } finally {
    await copies.close();
  }
}

/** The copy currently read from, moving to the next one when it fails. */
class CopyCursor {
  private index = 0;
  private reader: Promise<BlobReader | undefined> | undefined;

  constructor(
    private readonly seg: Segment,
    private readonly sources: readonly Site[],
    private readonly onFailure: (f: CopyFailure) => void,
    private readonly pool: BlockPool | undefined,
  ) {}

  async readVerified(offset: number, length: number, expected: number): Promise<Buffer> {
    const into = this.pool?.take(length);
    while (this.index < this.sources.length) {
      const site = this.sources[this.index]!;
      let reason: string;
      try {
        this.reader ??= site.open(this.seg.blob);
        const reader = await this.reader;
        if (!reader) {
          reason = 'missing';
        } else {
          const buf = await reader.read(offset, length, into);
          if (buf.length === length && crc32(buf) === expected) return buf;
          reason = buf.length === length ? `checksum mismatch at offset ${offset}` : `short read at offset ${offset}`;
        }
      } catch (err) {
        reason = `unreadable: ${(err as Error).message}`;
      }
      this.onFailure({ site: site.name, blob: this.seg.blob, reason });
      await this.advance();
    }
    if (into) this.pool!.give(into);
    throw new EngineError('NO_GOOD_COPY', `no copy of blob ${this.seg.blob} could be read intact`);
  }

  private async advance(): Promise<void> {
    await this.close();
    this.index++;
  }

  async close(): Promise<void> {
    const r = this.reader;
    this.reader = undefined;
    await (await r?.catch(() => undefined))?.close().catch(() => undefined);
  }
}
