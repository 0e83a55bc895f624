// An export's output bytes, written in place into a Buffer and handed on in
// ~CHUNK pieces: no string per row, no long concatenated string to flatten
// and encode again for each chunk.

/** Large pieces: fewer writes to the socket and fewer trips through the stream machinery. */
export const CHUNK = 256 * 1024;
/** Room past CHUNK: a piece is handed on once it holds CHUNK bytes, so a usual row never makes the buffer grow. */
const SLACK = 64 * 1024;

export class Out {
  buf = Buffer.allocUnsafe(CHUNK + SLACK);
  pos = 0;

  /** Makes room for `n` more bytes (a row's upper bound: only a huge one grows the buffer). */
  room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(bigger, 0, 0, this.pos);
    this.buf = bigger;
  }

  /** Appends a string as UTF-8. */
  text(s: string): void {
    this.room(s.length * 3); // a UTF-16 unit is at most 3 bytes of UTF-8
    this.pos += this.buf.write(s, this.pos);
  }

  get full(): boolean {
    return this.pos >= CHUNK;
  }

  /** The bytes so far; later writes go to a new buffer (the socket may still hold this one). */
  take(): Buffer {
    const b = this.buf.subarray(0, this.pos);
    this.buf = Buffer.allocUnsafe(CHUNK + SLACK);
    this.pos = 0;
    return b;
  }
}
