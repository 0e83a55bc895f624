// Reusable buffers for full blocks. To V8 every fresh block is external
// memory, and at hundreds of MiB/s that growth alone triggers a full
// mark-compact of the heap several times a second. A block its reader hands
// back once it has been sent is read into again instead.

export class BlockPool {
  private readonly free: ArrayBuffer[] = [];
  /** Buffers out on loan: only these are taken back, so a stray buffer never enters the pool. */
  private readonly lent = new WeakSet<ArrayBuffer>();

  constructor(
    readonly blockSize: number,
    private readonly keep: number,
  ) {}

  /** A buffer of `length` bytes; from the pool when it is a full block. */
  take(length: number): Buffer {
    if (length !== this.blockSize) return Buffer.allocUnsafe(length);
    const ab = this.free.pop() ?? Buffer.allocUnsafeSlow(this.blockSize).buffer;
    this.lent.add(ab);
    return Buffer.from(ab, 0, this.blockSize);
  }

  /**
   * Hand back a buffer from `take`, or a view of one, once nothing reads it
   * any more. Anything else, and a second hand-back, is ignored; a block
   * never handed back is simply left to the garbage collector.
   */
  give(buf: Buffer): void {
    const ab = buf.buffer as ArrayBuffer;
    if (!this.lent.delete(ab)) return;
    if (this.free.length < this.keep) this.free.push(ab);
  }
}
