// The codec port: the only importer of the Reed-Solomon addon. A stripe is
// k data pieces and m parity pieces of equal size (a multiple of 8 bytes);
// the code is systematic, so the data pieces are the object's own bytes.
import { createRequire } from 'node:module';

interface ReedSolomonAddon {
  create(k: number, m: number): unknown;
  encode(
    context: unknown,
    sources: number,
    targets: number,
    buffer: Buffer,
    bufferOffset: number,
    bufferSize: number,
    parity: Buffer,
    parityOffset: number,
    paritySize: number,
    callback: (error?: Error) => void,
  ): void;
  MAX_K: number;
  MAX_M: number;
}

const addon = createRequire(import.meta.url)('@ronomon/reed-solomon') as ReedSolomonAddon;

export const PIECE_ALIGN = 8;

export class Codec {
  private readonly context: unknown;

  constructor(
    readonly k: number,
    readonly m: number,
  ) {
    if (!Number.isInteger(k) || !Number.isInteger(m) || k < 1 || m < 1 || k > addon.MAX_K || m > addon.MAX_M || k + m > 31) {
      throw new RangeError(`unsupported erasure geometry ${k}+${m}`);
    }
    this.context = addon.create(k, m);
  }

  /** Compute the m parity pieces of a stripe whose k data pieces lie back to back in `data`. */
  encode(data: Buffer, pieceSize: number): Promise<Buffer> {
    const parity = Buffer.alloc(pieceSize * this.m);
    return this.run(this.mask(0, this.k), this.mask(this.k, this.k + this.m), data, parity, pieceSize).then(() => parity);
  }

  /**
   * Rebuild the pieces listed in `missing` (indexes 0..k+m-1) in place, from
   * the others. `data` holds the k data pieces, `parity` the m parity pieces;
   * at least k pieces must be present.
   */
  reconstruct(data: Buffer, parity: Buffer, pieceSize: number, missing: readonly number[]): Promise<void> {
    if (missing.length === 0) return Promise.resolve();
    if (missing.length > this.m) return Promise.reject(new Error(`${missing.length} pieces missing; ${this.m} can be rebuilt`));
    let targets = 0;
    for (const i of missing) targets |= 1 << i;
    const sources = this.mask(0, this.k + this.m) & ~targets;
    return this.run(sources, targets, data, parity, pieceSize);
  }

  private mask(from: number, to: number): number {
    let bits = 0;
    for (let i = from; i < to; i++) bits |= 1 << i;
    return bits;
  }

  private run(sources: number, targets: number, data: Buffer, parity: Buffer, pieceSize: number): Promise<void> {
    if (pieceSize % PIECE_ALIGN !== 0) return Promise.reject(new RangeError('piece size must be a multiple of 8'));
    return new Promise((resolve, reject) =>
      addon.encode(this.context, sources, targets, data, 0, pieceSize * this.k, parity, 0, pieceSize * this.m, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
  }
}
