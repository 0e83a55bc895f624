// S3 flexible checksums: CRC32, CRC32C, CRC64NVME, SHA1, SHA256, each
// rendered as S3 returns it (base64 of the big-endian digest).
import { createHash, type Hash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { S3Error } from './errors.js';

export type ChecksumAlgorithm = 'CRC32' | 'CRC32C' | 'CRC64NVME' | 'SHA1' | 'SHA256';
export const CHECKSUM_ALGORITHMS: readonly ChecksumAlgorithm[] = ['CRC32', 'CRC32C', 'CRC64NVME', 'SHA1', 'SHA256'];

export interface Checksum { update(data: Buffer): void; digest(): string /* base64, as S3 returns it */ }

/** Digest size in bytes per algorithm. */
export const CHECKSUM_BYTES: Readonly<Record<ChecksumAlgorithm, number>> = {
  CRC32: 4, CRC32C: 4, CRC64NVME: 8, SHA1: 20, SHA256: 32,
};

/** `x-amz-checksum-crc32` etc. */
export function checksumHeaderName(algorithm: ChecksumAlgorithm): string {
  return `x-amz-checksum-${algorithm.toLowerCase()}`;
}

export function isChecksumAlgorithm(s: string): s is ChecksumAlgorithm {
  return (CHECKSUM_ALGORITHMS as readonly string[]).includes(s);
}

function u32be(v: number): string {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(v >>> 0, 0);
  return b.toString('base64');
}

// --- CRC32 (zlib) -----------------------------------------------------------

class Crc32 implements Checksum {
  private crc = 0;
  update(data: Buffer): void { this.crc = zlibCrc32(data, this.crc); }
  digest(): string { return u32be(this.crc); }
}

// --- CRC32C (Castagnoli), slicing-by-8 ---------------------------------------

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(8 * 256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  for (let i = 0; i < 256; i++) {
    for (let s = 1; s < 8; s++) {
      const prev = t[(s - 1) * 256 + i]!;
      t[s * 256 + i] = ((prev >>> 8) ^ t[prev & 0xff]!) >>> 0;
    }
  }
  return t;
})();

/** Updates a raw (pre-inverted) CRC32C register with `data`. */
function crc32cUpdate(crcIn: number, data: Uint8Array): number {
  const t = CRC32C_TABLE;
  let crc = crcIn;
  let i = 0;
  const n = data.length;
  const end8 = n - (n & 7);
  while (i < end8) {
    const a = crc ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24));
    crc = t[1792 + (a & 0xff)]! ^ t[1536 + ((a >>> 8) & 0xff)]! ^ t[1280 + ((a >>> 16) & 0xff)]! ^ t[1024 + (a >>> 24)]! ^
      t[768 + data[i + 4]!]! ^ t[512 + data[i + 5]!]! ^ t[256 + data[i + 6]!]! ^ t[data[i + 7]!]!;
    i += 8;
  }
  while (i < n) {
    crc = t[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
    i++;
  }
  return crc;
}

class Crc32c implements Checksum {
  private crc = 0xffffffff;
  update(data: Buffer): void { this.crc = crc32cUpdate(this.crc, data); }
  digest(): string { return u32be(~this.crc); }
}

// --- CRC64/NVME, slicing-by-8 over two uint32 halves ---------------------------

const CRC64_LO = new Uint32Array(8 * 256);
const CRC64_HI = new Uint32Array(8 * 256);
(() => {
  const polyLo = 0xac4bc9b5;
  const polyHi = 0x9a6c9329;
  for (let i = 0; i < 256; i++) {
    let lo = i;
    let hi = 0;
    for (let k = 0; k < 8; k++) {
      const odd = lo & 1;
      lo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0;
      hi = hi >>> 1;
      if (odd) { lo = (lo ^ polyLo) >>> 0; hi = (hi ^ polyHi) >>> 0; }
    }
    CRC64_LO[i] = lo;
    CRC64_HI[i] = hi;
  }
  for (let i = 0; i < 256; i++) {
    for (let s = 1; s < 8; s++) {
      const pLo = CRC64_LO[(s - 1) * 256 + i]!;
      const pHi = CRC64_HI[(s - 1) * 256 + i]!;
      const idx = pLo & 0xff;
      // (prev >> 8) ^ T0[prev & 0xff]
      CRC64_LO[s * 256 + i] = (((pLo >>> 8) | (pHi << 24)) ^ CRC64_LO[idx]!) >>> 0;
      CRC64_HI[s * 256 + i] = ((pHi >>> 8) ^ CRC64_HI[idx]!) >>> 0;
    }
  }
})();

class Crc64Nvme implements Checksum {
  // register, pre-inverted (init all-ones)
  private lo = 0xffffffff;
  private hi = 0xffffffff;

  update(data: Buffer): void {
    const TL = CRC64_LO;
    const TH = CRC64_HI;
    let lo = this.lo;
    let hi = this.hi;
    let i = 0;
    const n = data.length;
    const end8 = n - (n & 7);
    while (i < end8) {
      const xl = lo ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24));
      const xh = hi ^ (data[i + 4]! | (data[i + 5]! << 8) | (data[i + 6]! << 16) | (data[i + 7]! << 24));
      const b0 = 1792 + (xl & 0xff), b1 = 1536 + ((xl >>> 8) & 0xff), b2 = 1280 + ((xl >>> 16) & 0xff), b3 = 1024 + (xl >>> 24);
      const b4 = 768 + (xh & 0xff), b5 = 512 + ((xh >>> 8) & 0xff), b6 = 256 + ((xh >>> 16) & 0xff), b7 = xh >>> 24;
      lo = TL[b0]! ^ TL[b1]! ^ TL[b2]! ^ TL[b3]! ^ TL[b4]! ^ TL[b5]! ^ TL[b6]! ^ TL[b7]!;
      hi = TH[b0]! ^ TH[b1]! ^ TH[b2]! ^ TH[b3]! ^ TH[b4]! ^ TH[b5]! ^ TH[b6]! ^ TH[b7]!;
      i += 8;
    }
    while (i < n) {
      const idx = (lo ^ data[i]!) & 0xff;
      const nLo = (lo >>> 8) | (hi << 24);
      lo = nLo ^ TL[idx]!;
      hi = (hi >>> 8) ^ TH[idx]!;
      i++;
    }
    this.lo = lo;
    this.hi = hi;
  }

  digest(): string {
    const b = Buffer.allocUnsafe(8);
    b.writeUInt32BE(~this.hi >>> 0, 0);
    b.writeUInt32BE(~this.lo >>> 0, 4);
    return b.toString('base64');
  }
}

// --- SHA ------------------------------------------------------------------------

class ShaChecksum implements Checksum {
  private readonly hash: Hash;
  constructor(alg: 'sha1' | 'sha256') { this.hash = createHash(alg); }
  update(data: Buffer): void { this.hash.update(data); }
  /** Non-destructive: more data may follow. */
  digest(): string { return this.hash.copy().digest('base64'); }
}

export function createChecksum(algorithm: ChecksumAlgorithm): Checksum {
  switch (algorithm) {
    case 'CRC32': return new Crc32();
    case 'CRC32C': return new Crc32c();
    case 'CRC64NVME': return new Crc64Nvme();
    case 'SHA1': return new ShaChecksum('sha1');
    case 'SHA256': return new ShaChecksum('sha256');
    default: throw new S3Error('InvalidRequest', `Unsupported checksum algorithm "${String(algorithm)}".`);
  }
}

// --- Request parsing ---------------------------------------------------------------

export interface RequestedChecksum {
  algorithm: ChecksumAlgorithm;
  /** base64 value from a header, if sent up front */
  expected?: string;
  /** value will arrive in the trailer named x-amz-checksum-<alg> */
  inTrailer: boolean;
}

/** Headers in the x-amz-checksum- namespace that are not checksum values. */
const NOT_VALUES = new Set(['x-amz-checksum-algorithm', 'x-amz-checksum-type', 'x-amz-checksum-mode']);
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function headerString(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(',') : String(v);
}

function algorithmFromName(name: string): ChecksumAlgorithm {
  const alg = name.slice('x-amz-checksum-'.length).toUpperCase();
  if (!isChecksumAlgorithm(alg)) throw new S3Error('InvalidRequest', `Unsupported checksum algorithm in "${name.slice(0, 64)}".`);
  return alg;
}

/** Whether `value` is base64 of exactly the digest size of `algorithm`. */
export function isValidChecksumValue(algorithm: ChecksumAlgorithm, value: string): boolean {
  return BASE64.test(value) && Buffer.from(value, 'base64').length === CHECKSUM_BYTES[algorithm];
}

/**
 * From x-amz-checksum-<alg> headers, x-amz-trailer, x-amz-sdk-checksum-algorithm.
 * Throws S3Error('InvalidRequest') for an unknown algorithm or more than one
 * checksum header; InvalidDigest for a value that is not base64 of the right
 * length.
 */
export function requestedChecksum(headers: IncomingHttpHeaders): RequestedChecksum | undefined {
  let fromHeader: { algorithm: ChecksumAlgorithm; value: string } | undefined;
  for (const name of Object.keys(headers)) {
    if (!name.startsWith('x-amz-checksum-') || NOT_VALUES.has(name)) continue;
    const algorithm = algorithmFromName(name);
    if (fromHeader !== undefined) throw new S3Error('InvalidRequest', 'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.');
    const raw = headers[name];
    if (Array.isArray(raw) && raw.length !== 1) throw new S3Error('InvalidRequest', 'Expecting a single x-amz-checksum- header.');
    fromHeader = { algorithm, value: (headerString(headers, name) ?? '').trim() };
  }

  let fromTrailer: ChecksumAlgorithm | undefined;
  const trailer = headerString(headers, 'x-amz-trailer');
  if (trailer !== undefined) {
    const names = trailer.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== '');
    if (names.length > 1) throw new S3Error('InvalidRequest', 'Expecting a single x-amz-checksum- trailer.');
    const name = names[0];
    if (name !== undefined) {
      if (!name.startsWith('x-amz-checksum-') || NOT_VALUES.has(name)) {
        throw new S3Error('InvalidRequest', `Unsupported trailer "${name.slice(0, 64)}".`);
      }
      fromTrailer = algorithmFromName(name);
    }
  }

  let fromSdk: ChecksumAlgorithm | undefined;
  const sdk = headerString(headers, 'x-amz-sdk-checksum-algorithm');
  if (sdk !== undefined) {
    const alg = sdk.trim().toUpperCase();
    if (!isChecksumAlgorithm(alg)) throw new S3Error('InvalidRequest', 'Value for x-amz-sdk-checksum-algorithm header is invalid.');
    fromSdk = alg;
  }

  if (fromHeader !== undefined && fromTrailer !== undefined) {
    throw new S3Error('InvalidRequest', 'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.');
  }
  const algorithm = fromHeader?.algorithm ?? fromTrailer ?? fromSdk;
  if (algorithm === undefined) return undefined;
  if (fromSdk !== undefined && fromSdk !== algorithm) {
    throw new S3Error('InvalidRequest', 'Value for x-amz-sdk-checksum-algorithm header is invalid.');
  }
  if (fromHeader !== undefined) {
    if (!isValidChecksumValue(algorithm, fromHeader.value)) {
      throw new S3Error('InvalidDigest', `Value for ${checksumHeaderName(algorithm)} header is invalid.`);
    }
    return { algorithm, expected: fromHeader.value, inTrailer: false };
  }
  return { algorithm, inTrailer: fromTrailer !== undefined };
}
