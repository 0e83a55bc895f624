// Request body decoder for the S3 door: plain bodies pass through, aws-chunked
// bodies (signed or unsigned, with or without trailers) are de-framed in a
// single streaming pass, every chunk signature checked before its bytes are
// released downstream.
import { createHash, createHmac, type Hash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { EMPTY_SHA256, signaturesEqual, type AuthContext } from './auth.js';
import { S3Error } from './errors.js';

export interface DecodedBody {
  /** The object bytes, decoded. Errors (S3Error) are emitted on this stream. */
  stream: Readable;
  /** After `stream` has ended: trailing headers, names lower-cased (e.g. {'x-amz-checksum-crc32': 'base64=='}). Empty if none. */
  trailers(): Record<string, string>;
  /** Declared decoded length (x-amz-decoded-content-length or content-length), if any. */
  declaredLength: number | undefined;
}

/** Longest chunk-header or trailer line accepted (bytes, without CRLF). */
export const MAX_LINE = 4096;
/** Largest signed chunk: its bytes are held until its signature is verified. */
export const MAX_SIGNED_CHUNK = 16 * 1024 * 1024;
/** Largest unsigned chunk (S3's single-PUT maximum). */
export const MAX_UNSIGNED_CHUNK = 5 * 1024 * 1024 * 1024;
const MAX_TRAILERS = 64;

const CR = 0x0d;
const LF = 0x0a;

function headerString(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(',') : String(v);
}

function parseLength(value: string | undefined): number | undefined | S3Error {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (!/^\d{1,16}$/.test(v)) return new S3Error('InvalidArgument', `Invalid length "${v.slice(0, 32)}".`);
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : new S3Error('InvalidArgument', `Invalid length "${v.slice(0, 32)}".`);
}

/**
 * The Content-Encoding to store with the object: the request's, with the
 * transport-only `aws-chunked` token removed; undefined if nothing is left.
 */
export function storedContentEncoding(headers: IncomingHttpHeaders): string | undefined {
  const v = headerString(headers, 'content-encoding');
  if (v === undefined) return undefined;
  const rest = v.split(',').map((s) => s.trim()).filter((s) => s !== '' && s.toLowerCase() !== 'aws-chunked');
  return rest.length > 0 ? rest.join(',') : undefined;
}

/**
 * Decodes a request body according to the payload mode authentication found.
 * Never buffers the whole body; for signed chunked bodies at most one chunk
 * is held (until its signature has been verified).
 */
export function decodePayload(raw: Readable, ctx: AuthContext, headers: IncomingHttpHeaders): DecodedBody {
  const p = ctx.payload;
  const chunked = p.mode === 'streaming-signed' || p.mode === 'streaming-unsigned-trailer';
  const lengthOrError = chunked
    ? parseLength(headerString(headers, 'x-amz-decoded-content-length'))
    : parseLength(headerString(headers, 'content-length'));
  const declared = lengthOrError instanceof S3Error ? undefined : lengthOrError;

  let stream: PlainBody | ChunkedDecoder;
  if (p.mode === 'streaming-signed') {
    stream = new ChunkedDecoder({ signing: ctx.signing, trailer: p.trailer, declared });
  } else if (p.mode === 'streaming-unsigned-trailer') {
    stream = new ChunkedDecoder({ signing: undefined, trailer: true, declared });
  } else {
    stream = new PlainBody(declared);
  }
  const body = stream;

  if (lengthOrError instanceof S3Error) {
    process.nextTick(() => body.destroy(lengthOrError));
  } else if (p.mode === 'streaming-signed' && ctx.signing === undefined) {
    process.nextTick(() => body.destroy(new S3Error('InternalError', 'Streaming signature context missing.')));
  } else {
    connect(raw, body);
  }
  return {
    stream: body,
    trailers: () => (body instanceof ChunkedDecoder ? body.trailerMap : {}),
    declaredLength: declared,
  };
}

/** Pipes raw into the decoder, turning source failures into IncompleteBody. */
function connect(raw: Readable, dest: Transform): void {
  let rawEnded = false;
  const fail = (err?: unknown) => {
    if (dest.destroyed) return;
    dest.destroy(err instanceof S3Error ? err : new S3Error('IncompleteBody'));
  };
  raw.once('end', () => { rawEnded = true; });
  raw.on('error', fail);
  raw.once('aborted', () => fail());
  raw.once('close', () => { if (!rawEnded) fail(); });
  dest.once('close', () => {
    // consumer gave up or decoding failed: stop reading the source
    if (!rawEnded) raw.unpipe(dest);
  });
  raw.pipe(dest);
}

/** Pass-through that counts bytes and checks them against the declared length. */
class PlainBody extends Transform {
  private count = 0;
  constructor(private readonly declared: number | undefined) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.count += chunk.length;
    if (this.declared !== undefined && this.count > this.declared) {
      cb(new S3Error('IncompleteBody', 'The request body is longer than the Content-Length header.'));
      return;
    }
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    if (this.declared !== undefined && this.count !== this.declared) cb(new S3Error('IncompleteBody'));
    else cb();
  }
}

const enum State {
  Header, // reading "hex-size[;ext]\r\n"
  Data, // reading chunk bytes
  DataCrlf, // reading the "\r\n" after chunk bytes
  Trailer, // reading trailer lines after the final chunk
  FinalCrlf, // final "\r\n" after the last chunk (no trailer)
  Done,
}

interface DecoderOptions {
  signing: AuthContext['signing'];
  trailer: boolean;
  declared: number | undefined;
}

/** aws-chunked decoder (signed or unsigned framing, optional trailer). */
class ChunkedDecoder extends Transform {
  readonly trailerMap: Record<string, string> = {};
  private readonly signing: AuthContext['signing'];
  private readonly hasTrailer: boolean;
  private readonly declared: number | undefined;
  private readonly maxChunk: number;

  private state = State.Header;
  /** Partial line carried across input buffers. */
  private line: Buffer[] = [];
  private lineLength = 0;
  private remaining = 0; // bytes left in the current chunk
  private crlfSeen = 0; // bytes of a CRLF already matched
  private chunkSignature = ''; // signature claimed by the current chunk header
  private previousSignature = '';
  private hash: Hash | undefined;
  private held: Buffer[] = []; // data of the current signed chunk, pending verification
  private decoded = 0;
  private finalSeen = false;
  private trailerCount = 0;
  private trailerCanonical = '';
  private trailerSignature: string | undefined;

  constructor(opts: DecoderOptions) {
    super();
    this.signing = opts.signing;
    this.hasTrailer = opts.trailer;
    this.declared = opts.declared;
    this.maxChunk = opts.signing !== undefined ? MAX_SIGNED_CHUNK : MAX_UNSIGNED_CHUNK;
    if (opts.signing !== undefined) this.previousSignature = opts.signing.seedSignature;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.consume(chunk);
      cb();
    } catch (err) {
      cb(err instanceof S3Error ? err : new S3Error('InternalError'));
    }
  }

  override _flush(cb: TransformCallback): void {
    let ok = this.state === State.Done;
    // Tolerate a body that stops right where only the closing CRLF is missing.
    if (this.state === State.FinalCrlf && this.crlfSeen === 0) ok = true;
    if (this.state === State.Trailer && this.lineLength === 0 &&
        (this.signing === undefined || this.trailerSignature !== undefined)) ok = true;
    if (!ok) {
      cb(new S3Error('IncompleteBody', 'The aws-chunked request body ended prematurely.'));
      return;
    }
    if (this.declared !== undefined && this.decoded !== this.declared) {
      cb(new S3Error('IncompleteBody', 'The decoded body length does not match x-amz-decoded-content-length.'));
      return;
    }
    cb();
  }

  private consume(buf: Buffer): void {
    let pos = 0;
    const len = buf.length;
    while (pos < len) {
      switch (this.state) {
        case State.Header:
        case State.Trailer: {
          const nl = buf.indexOf(LF, pos);
          const end = nl === -1 ? len : nl;
          if (this.lineLength + (end - pos) > MAX_LINE + 1) {
            throw new S3Error('InvalidRequest', 'aws-chunked framing: line too long.');
          }
          if (nl === -1) {
            this.line.push(buf.subarray(pos, len));
            this.lineLength += len - pos;
            pos = len;
            break;
          }
          let lineBuf: Buffer;
          if (this.lineLength === 0) {
            lineBuf = buf.subarray(pos, nl);
          } else {
            this.line.push(buf.subarray(pos, nl));
            lineBuf = Buffer.concat(this.line);
            this.line = [];
            this.lineLength = 0;
          }
          pos = nl + 1;
          if (this.state === State.Header) this.onHeaderLine(lineBuf);
          else this.onTrailerLine(lineBuf);
          break;
        }
        case State.Data: {
          const n = Math.min(this.remaining, len - pos);
          const slice = buf.subarray(pos, pos + n);
          pos += n;
          this.remaining -= n;
          if (this.hash !== undefined) {
            this.hash.update(slice);
            this.held.push(slice);
          } else {
            this.push(slice);
          }
          if (this.remaining === 0) {
            this.state = State.DataCrlf;
            this.crlfSeen = 0;
          }
          break;
        }
        case State.DataCrlf:
        case State.FinalCrlf: {
          const expected = this.crlfSeen === 0 ? CR : LF;
          if (buf[pos] !== expected) {
            throw new S3Error('InvalidRequest', 'aws-chunked framing: expected CRLF after chunk data.');
          }
          pos++;
          if (++this.crlfSeen === 2) {
            this.crlfSeen = 0;
            if (this.state === State.DataCrlf) {
              this.endChunk();
              this.state = State.Header;
            } else {
              this.state = State.Done;
            }
          }
          break;
        }
        case State.Done:
          throw new S3Error('InvalidRequest', 'aws-chunked framing: unexpected data after the final chunk.');
      }
    }
  }

  private onHeaderLine(lineBuf: Buffer): void {
    if (lineBuf.length === 0 || lineBuf[lineBuf.length - 1] !== CR) {
      throw new S3Error('InvalidRequest', 'aws-chunked framing: malformed chunk header.');
    }
    const line = lineBuf.toString('latin1', 0, lineBuf.length - 1);
    const semi = line.indexOf(';');
    const sizeText = semi === -1 ? line : line.slice(0, semi);
    if (!/^[0-9a-fA-F]{1,16}$/.test(sizeText)) {
      throw new S3Error('InvalidRequest', 'aws-chunked framing: invalid chunk size.');
    }
    const size = parseInt(sizeText, 16);
    if (!Number.isSafeInteger(size) || size > this.maxChunk) {
      throw new S3Error('InvalidRequest', 'aws-chunked framing: chunk too large.');
    }
    if (this.signing !== undefined) {
      const m = semi === -1 ? null : /^chunk-signature=([0-9a-f]{64})$/.exec(line.slice(semi + 1));
      if (m === null) throw new S3Error('InvalidRequest', 'aws-chunked framing: missing or malformed chunk-signature.');
      this.chunkSignature = m[1]!;
      this.hash = createHash('sha256');
    } else if (semi !== -1 && !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+(=[^;]*)?(;[!#$%&'*+\-.^_`|~0-9A-Za-z]+(=[^;]*)?)*$/.test(line.slice(semi + 1))) {
      throw new S3Error('InvalidRequest', 'aws-chunked framing: malformed chunk extension.');
    }
    if (this.declared !== undefined && this.decoded + size > this.declared) {
      throw new S3Error('IncompleteBody', 'The decoded body is longer than x-amz-decoded-content-length.');
    }
    this.decoded += size;
    if (size > 0) {
      this.remaining = size;
      this.state = State.Data;
      return;
    }
    // final chunk
    this.finalSeen = true;
    if (this.signing !== undefined) this.verifyChunk(EMPTY_SHA256);
    this.hash = undefined;
    this.state = this.hasTrailer ? State.Trailer : State.FinalCrlf;
    this.crlfSeen = 0;
  }

  /** Chunk data and its CRLF fully read: verify (signed) and release held bytes. */
  private endChunk(): void {
    if (this.hash === undefined) return;
    this.verifyChunk(this.hash.digest('hex'));
    this.hash = undefined;
    const held = this.held;
    this.held = [];
    for (const b of held) this.push(b);
  }

  private verifyChunk(dataSha256: string): void {
    const s = this.signing!;
    const toSign = `AWS4-HMAC-SHA256-PAYLOAD\n${s.amzDate}\n${s.scope}\n${this.previousSignature}\n${EMPTY_SHA256}\n${dataSha256}`;
    const expected = createHmac('sha256', s.key).update(toSign).digest('hex');
    if (!signaturesEqual(expected, this.chunkSignature)) {
      this.held = [];
      throw new S3Error('SignatureDoesNotMatch', 'The chunk signature we calculated does not match the signature you provided.');
    }
    this.previousSignature = expected;
  }

  private onTrailerLine(lineBuf: Buffer): void {
    let end = lineBuf.length;
    if (end > 0 && lineBuf[end - 1] === CR) end--;
    if (end === 0) {
      // blank line: end of trailer section
      if (this.signing !== undefined && this.trailerSignature === undefined) {
        throw new S3Error('InvalidRequest', 'aws-chunked framing: missing x-amz-trailer-signature.');
      }
      this.state = State.Done;
      return;
    }
    if (this.trailerSignature !== undefined) {
      throw new S3Error('InvalidRequest', 'aws-chunked framing: trailer after x-amz-trailer-signature.');
    }
    const line = lineBuf.toString('latin1', 0, end);
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon).trim().toLowerCase() : '';
    if (name === '' || !/^[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(name)) {
      throw new S3Error('InvalidRequest', 'aws-chunked framing: malformed trailer.');
    }
    const value = line.slice(colon + 1).trim();
    if (name === 'x-amz-trailer-signature') {
      if (this.signing === undefined) return; // unsigned framing: ignore
      if (!/^[0-9a-f]{64}$/.test(value)) throw new S3Error('InvalidRequest', 'aws-chunked framing: malformed x-amz-trailer-signature.');
      this.trailerSignature = value;
      const s = this.signing;
      const toSign = `AWS4-HMAC-SHA256-TRAILER\n${s.amzDate}\n${s.scope}\n${this.previousSignature}\n${createHash('sha256').update(this.trailerCanonical, 'latin1').digest('hex')}`;
      const expected = createHmac('sha256', s.key).update(toSign).digest('hex');
      if (!signaturesEqual(expected, value)) {
        throw new S3Error('SignatureDoesNotMatch', 'The trailer signature we calculated does not match the signature you provided.');
      }
      this.previousSignature = expected;
      return;
    }
    if (++this.trailerCount > MAX_TRAILERS) throw new S3Error('InvalidRequest', 'aws-chunked framing: too many trailers.');
    this.trailerCanonical += `${name}:${value}\n`;
    this.trailerMap[name] = value;
  }

  /** For diagnostics/tests: whether the terminating zero-length chunk was read. */
  get sawFinalChunk(): boolean {
    return this.finalSeen;
  }
}
