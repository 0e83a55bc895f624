// Pieces every handler family shares: the injected parts, how a request body
// becomes an engine write (one pass, every digest checked before commit),
// and how an object record becomes response headers.
import type { Engine, Logger, ObjectRecord, WriteInput } from '../../../tiering/index.js';
import { decodePayload } from '../payload.js';
import { createChecksum, requestedChecksum, type ChecksumAlgorithm } from '../checksums.js';
import type { CredentialLookup } from '../auth.js';
import { S3Error } from '../errors.js';
import { decodeComponent, httpDate, type S3Call } from '../request.js';

export interface S3Options {
  region: string;
  /** Cap on XML request bodies (CompleteMultipartUpload, DeleteObjects, Tagging). */
  maxXmlBytes: number;
}

export interface S3Deps {
  engine: Engine;
  credentials: CredentialLookup;
  options: S3Options;
  log: Logger;
}

export type Handler = (call: S3Call, deps: S3Deps) => Promise<void>;

/** The body of a PUT/UploadPart as the engine wants it, with the door's checks attached. */
export function bodyForWrite(call: S3Call): Pick<WriteInput, 'expectedSize' | 'beforeCommit'> & { body: AsyncIterable<Buffer> } {
  const headers = call.req.headers;
  const decoded = decodePayload(call.req.raw, call.auth, headers);
  // The decoder may fail (a forged chunk) before the engine starts reading;
  // the error stays on the stream and is thrown to whoever iterates it.
  decoded.stream.on('error', () => undefined);
  const requested = requestedChecksum(headers);
  const hasher = requested && createChecksum(requested.algorithm);
  const contentMd5 = parseContentMd5(headers['content-md5']);
  const payload = call.auth.payload;
  async function* body(): AsyncGenerator<Buffer> {
    for await (const chunk of decoded.stream as AsyncIterable<Buffer>) {
      hasher?.update(chunk);
      yield chunk;
    }
  }
  return {
    body: body(),
    ...(decoded.declaredLength !== undefined && { expectedSize: decoded.declaredLength }),
    beforeCommit: (d) => {
      if (payload.mode === 'signed' && d.sha256.toString('hex') !== payload.sha256.toLowerCase()) {
        throw new S3Error('XAmzContentSHA256Mismatch');
      }
      if (contentMd5 && !contentMd5.equals(d.md5)) throw new S3Error('BadDigest', 'The Content-MD5 you specified did not match what was received.');
      if (!requested || !hasher) return {};
      const actual = hasher.digest();
      const name = `x-amz-checksum-${requested.algorithm.toLowerCase()}`;
      const expected = requested.expected ?? decoded.trailers()[name];
      if (requested.inTrailer && expected === undefined) throw new S3Error('InvalidRequest', `The trailer ${name} was announced but not sent.`);
      if (expected !== undefined && expected !== actual) {
        throw new S3Error('BadDigest', `The ${requested.algorithm} checksum you specified did not match what was received.`);
      }
      return { checksum: { algorithm: requested.algorithm, value: actual, type: 'FULL_OBJECT' as const } };
    },
  };
}

function parseContentMd5(v: string | string[] | undefined): Buffer | undefined {
  if (v === undefined) return undefined;
  const buf = Buffer.from(String(v), 'base64');
  if (buf.length !== 16) throw new S3Error('InvalidDigest', 'The Content-MD5 you specified is not valid.');
  return buf;
}

const CONTENT_HEADERS = [
  ['contentType', 'content-type'],
  ['contentEncoding', 'content-encoding'],
  ['contentDisposition', 'content-disposition'],
  ['contentLanguage', 'content-language'],
  ['cacheControl', 'cache-control'],
  ['expires', 'expires'],
] as const;

/** Content headers, user metadata and tags a write request carries. */
export function writeInputFromHeaders(call: S3Call): Omit<WriteInput, 'expectedSize' | 'beforeCommit'> {
  const h = call.req.headers;
  const input: Omit<WriteInput, 'expectedSize' | 'beforeCommit'> = { meta: {} };
  for (const [field, header] of CONTENT_HEADERS) {
    let v = h[header];
    if (typeof v !== 'string') continue;
    if (header === 'content-encoding') {
      // aws-chunked is transport framing, never part of the stored object.
      v = v.split(',').map((s) => s.trim()).filter((s) => s && s !== 'aws-chunked').join(',');
      if (!v) continue;
    }
    input[field] = v;
  }
  for (const [name, value] of Object.entries(h)) {
    if (name.startsWith('x-amz-meta-') && typeof value === 'string') input.meta[name.slice(11)] = value;
  }
  if (Buffer.byteLength(JSON.stringify(input.meta)) > 8192) throw new S3Error('InvalidArgument', 'User metadata is larger than 8 KiB.');
  const tagging = h['x-amz-tagging'];
  if (typeof tagging === 'string') input.tags = parseTagQuery(tagging);
  return input;
}

export function parseTagQuery(s: string): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const pair of s.split('&')) {
    if (!pair) continue;
    const eq = pair.indexOf('=');
    const k = decodeComponent((eq < 0 ? pair : pair.slice(0, eq)).replace(/\+/g, ' '));
    const v = eq < 0 ? '' : decodeComponent(pair.slice(eq + 1).replace(/\+/g, ' '));
    tags[k] = v;
  }
  return validateTags(tags);
}

export function validateTags(tags: Record<string, string>): Record<string, string> {
  const entries = Object.entries(tags);
  if (entries.length > 10) throw new S3Error('InvalidArgument', 'Object tags cannot be greater than 10.');
  for (const [k, v] of entries) {
    if (k.length === 0 || k.length > 128) throw new S3Error('InvalidArgument', 'The tag key must be 1 to 128 characters.');
    if (v.length > 256) throw new S3Error('InvalidArgument', 'The tag value must be at most 256 characters.');
  }
  return tags;
}

export const STORAGE_CLASS = 'STANDARD';
/**
 * What listings and HEAD call a stub: S3's class for archived objects that
 * still read instantly, so clients read it like any other (no restore first).
 */
export const STUB_STORAGE_CLASS = 'GLACIER_IR';

export function storageClass(rec: Pick<ObjectRecord, 'tier'>): string {
  return rec.tier === 'stub' ? STUB_STORAGE_CLASS : STORAGE_CLASS;
}

/** Tier state as S3 headers: x-valentine-tier, the storage class of stubs, and recall progress as x-amz-restore. */
export function tierHeaders(rec: ObjectRecord, engine: Engine): Record<string, string> {
  const out: Record<string, string> = { 'x-valentine-tier': rec.tier };
  if (rec.tier === 'stub') out['x-amz-storage-class'] = STUB_STORAGE_CLASS;
  if (engine.recalling(rec.bucket, rec.key)) out['x-amz-restore'] = 'ongoing-request="true"';
  else if (rec.tier === 'coded') {
    const until = (rec.lastAccess ?? rec.lastModified) + engine.config.stubAfterMs;
    out['x-amz-restore'] = `ongoing-request="false", expiry-date="${httpDate(until)}"`;
  }
  return out;
}

/** Headers describing a stored object on GET and HEAD. */
export function objectHeaders(rec: ObjectRecord, checksumMode: boolean, engine: Engine): Record<string, string> {
  const out: Record<string, string> = {
    'content-type': rec.contentType ?? 'binary/octet-stream',
    etag: rec.etag,
    'last-modified': httpDate(rec.lastModified),
    'accept-ranges': 'bytes',
    ...tierHeaders(rec, engine),
  };
  for (const [field, header] of CONTENT_HEADERS) {
    const v = rec[field];
    if (v !== undefined && field !== 'contentType') out[header] = v;
  }
  for (const [k, v] of Object.entries(rec.meta)) out[`x-amz-meta-${k}`] = v;
  const tagCount = Object.keys(rec.tags).length;
  if (tagCount > 0) out['x-amz-tagging-count'] = String(tagCount);
  if (checksumMode && rec.checksum) {
    out[`x-amz-checksum-${rec.checksum.algorithm.toLowerCase()}`] = rec.checksum.value;
    out['x-amz-checksum-type'] = rec.checksum.type;
  }
  return out;
}

export function isChecksumAlgorithm(s: string): s is ChecksumAlgorithm {
  return ['CRC32', 'CRC32C', 'CRC64NVME', 'SHA1', 'SHA256'].includes(s);
}
