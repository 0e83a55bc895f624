// Server-side AWS Signature Version 4 verification for the S3 door.
//
// Both forms S3 accepts are handled: the `Authorization` header and presigned
// query parameters. The canonical request follows the S3 flavour of SigV4:
// the path is re-encoded segment by segment but never normalised, the query
// is decoded and re-encoded, and the payload hash is whatever the client put
// in `x-amz-content-sha256` (or UNSIGNED-PAYLOAD for presigned URLs).
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { S3Error } from './errors.js';

export type Role = 'admin' | 'readwrite' | 'readonly';
export interface Credential { accessKey: string; secretKey: string; role: Role }
export type CredentialLookup = (accessKey: string) => Credential | undefined;

export interface SignedRequest {
  method: string;
  /** Request target exactly as received on the wire: path + optional '?' + query, still percent-encoded. */
  url: string;
  headers: IncomingHttpHeaders; // node's lower-cased headers
  /**
   * Optional: node's `rawHeaders` (alternating name, value). When given, a
   * header sent several times is canonicalised from its individual values
   * (joined with ','), exactly as the client signed it, instead of from
   * node's ', '-joined combination.
   */
  rawHeaders?: readonly string[];
}

export type PayloadMode =
  | { mode: 'signed'; sha256: string } // hex sha256 of body given in x-amz-content-sha256; body must be checked against it
  | { mode: 'unsigned' } // UNSIGNED-PAYLOAD (also all presigned URLs)
  | { mode: 'streaming-signed'; trailer: boolean } // STREAMING-AWS4-HMAC-SHA256-PAYLOAD / STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER
  | { mode: 'streaming-unsigned-trailer' }; // STREAMING-UNSIGNED-PAYLOAD-TRAILER

export interface AuthContext {
  credential: Credential;
  payload: PayloadMode;
  /** Present for streaming-signed: what chunk/trailer signatures chain from. */
  signing?: { key: Buffer; amzDate: string; scope: string; seedSignature: string };
}

export interface AuthOptions { now?: Date; maxSkewMs?: number /* default 15 min */ }

export const ALGORITHM = 'AWS4-HMAC-SHA256';
export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
export const STREAMING_SIGNED = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD';
export const STREAMING_SIGNED_TRAILER = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER';
export const STREAMING_UNSIGNED_TRAILER = 'STREAMING-UNSIGNED-PAYLOAD-TRAILER';
/** Hex sha256 of the empty string. */
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

const DEFAULT_MAX_SKEW_MS = 15 * 60 * 1000;
const MAX_PRESIGN_EXPIRES = 604800;
const HEX64 = /^[0-9a-fA-F]{64}$/;
const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

// ---------------------------------------------------------------------------
// Encoding building blocks

const UNRESERVED = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  if (/[A-Za-z0-9\-_.~]/.test(ch)) UNRESERVED[c] = 1;
}
const HEX_UPPER = '0123456789ABCDEF';
const PLAIN = /^[A-Za-z0-9\-_.~]*$/;
const PLAIN_SLASH = /^[A-Za-z0-9\-_.~/]*$/;

/**
 * S3's URI encoding: RFC 3986 unreserved characters (A-Z a-z 0-9 - _ . ~) are
 * kept, every other UTF-8 byte becomes %XX (upper-case hex); '/' is kept when
 * `keepSlash`.
 */
export function uriEncode(str: string, keepSlash: boolean): string {
  if ((keepSlash ? PLAIN_SLASH : PLAIN).test(str)) return str;
  const bytes = Buffer.from(str, 'utf8');
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if ((b < 128 && UNRESERVED[b] === 1) || (keepSlash && b === 0x2f)) out += String.fromCharCode(b);
    else out += '%' + HEX_UPPER[b >> 4]! + HEX_UPPER[b & 15]!;
  }
  return out;
}

function decodeComponent(s: string): string {
  if (s.indexOf('%') === -1) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    throw new S3Error('InvalidArgument', 'The request URI contains invalid percent-encoding.');
  }
}

/** Splits a request target into its raw path and raw query (without '?'). */
export function splitTarget(url: string): { path: string; query: string } {
  let target = url;
  if (!target.startsWith('/')) {
    // absolute-form request target: strip scheme://authority
    const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/.exec(target);
    if (m) target = target.slice(m[0].length) || '/';
  }
  const hash = target.indexOf('#');
  if (hash !== -1) target = target.slice(0, hash);
  const q = target.indexOf('?');
  return q === -1 ? { path: target, query: '' } : { path: target.slice(0, q), query: target.slice(q + 1) };
}

/** Canonical URI: each '/'-separated segment decoded and re-encoded; no normalisation. */
export function canonicalUri(rawPath: string): string {
  if (rawPath === '') return '/';
  if (PLAIN_SLASH.test(rawPath)) return rawPath;
  return rawPath.split('/').map((seg) => uriEncode(decodeComponent(seg), false)).join('/');
}

/** Decodes a raw query string into [name, value] pairs ('+' is NOT a space). */
export function parseQuery(rawQuery: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (rawQuery === '') return out;
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const k = eq === -1 ? part : part.slice(0, eq);
    const v = eq === -1 ? '' : part.slice(eq + 1);
    out.push([decodeComponent(k), decodeComponent(v)]);
  }
  return out;
}

/** Canonical query string: names/values re-encoded, sorted by name then value. */
export function canonicalQuery(rawQuery: string, exclude?: string): string {
  const pairs: Array<[string, string]> = [];
  for (const [k, v] of parseQuery(rawQuery)) {
    if (exclude !== undefined && k === exclude) continue;
    pairs.push([uriEncode(k, false), uriEncode(v, false)]);
  }
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

function trimValue(v: string): string {
  return v.trim().replace(/\s+/g, ' ');
}

/**
 * The canonical value of one header, or undefined if the request lacks it.
 * Values of a repeated header are trimmed individually and joined with ','.
 */
function headerValue(name: string, headers: IncomingHttpHeaders, rawHeaders?: readonly string[]): string | undefined {
  if (rawHeaders !== undefined) {
    let values: string[] | undefined;
    for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
      if (rawHeaders[i]!.toLowerCase() === name) (values ??= []).push(trimValue(rawHeaders[i + 1]!));
    }
    if (values !== undefined) return values.join(',');
  }
  const v = headers[name];
  if (v === undefined) return undefined;
  if (Array.isArray(v)) return v.map(trimValue).join(',');
  return trimValue(String(v));
}

export interface CanonicalRequestInput {
  method: string;
  /** Request target as on the wire (path + optional '?' + query, percent-encoded). */
  url: string;
  headers: IncomingHttpHeaders;
  rawHeaders?: readonly string[];
  /** Lower-cased names of the signed headers. */
  signedHeaders: readonly string[];
  /** The hashed payload line (hex sha256, UNSIGNED-PAYLOAD, STREAMING-...). */
  payloadHash: string;
  /** Query parameter left out of the canonical query (X-Amz-Signature for presigned URLs). */
  excludeQueryParam?: string;
}

/**
 * Builds the S3 SigV4 canonical request. Throws S3Error('InvalidArgument') for
 * malformed percent-encoding and S3Error('SignatureDoesNotMatch') when a
 * signed header is missing from the request.
 */
export function canonicalRequest(input: CanonicalRequestInput): string {
  const { path, query } = splitTarget(input.url);
  const names = [...new Set(input.signedHeaders.map((h) => h.toLowerCase()))].sort();
  let canonHeaders = '';
  for (const name of names) {
    const value = headerValue(name, input.headers, input.rawHeaders);
    if (value === undefined) {
      throw new S3Error('SignatureDoesNotMatch', `The signed header '${name}' is missing from the request.`);
    }
    canonHeaders += `${name}:${value}\n`;
  }
  return [
    input.method.toUpperCase(),
    canonicalUri(path),
    canonicalQuery(query, input.excludeQueryParam),
    canonHeaders,
    names.join(';'),
    input.payloadHash,
  ].join('\n');
}

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** `AWS4-HMAC-SHA256\n{amzDate}\n{scope}\n{hex sha256(canonical request)}` */
export function stringToSign(amzDate: string, scope: string, canonicalRequestText: string): string {
  return `${ALGORITHM}\n${amzDate}\n${scope}\n${sha256Hex(canonicalRequestText)}`;
}

const SIGNING_KEY_CACHE_MAX = 256;
const signingKeyCache = new Map<string, Buffer>();

/**
 * kSigning = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request").
 * Cached per (secret, date, region, service) in a bounded map; the returned
 * buffer is shared and must not be modified.
 */
export function deriveSigningKey(secret: string, date: string, region: string, service: string): Buffer {
  const cacheKey = `${date}\0${region}\0${service}\0${secret}`;
  const hit = signingKeyCache.get(cacheKey);
  if (hit !== undefined) return hit;
  const kDate = createHmac('sha256', 'AWS4' + secret).update(date).digest();
  const kRegion = createHmac('sha256', kDate).update(region).digest();
  const kService = createHmac('sha256', kRegion).update(service).digest();
  const kSigning = createHmac('sha256', kService).update('aws4_request').digest();
  if (signingKeyCache.size >= SIGNING_KEY_CACHE_MAX) {
    const oldest = signingKeyCache.keys().next();
    if (oldest.done !== true) signingKeyCache.delete(oldest.value);
  }
  signingKeyCache.set(cacheKey, kSigning);
  return kSigning;
}

/** Hex HMAC-SHA256 of a string to sign. */
export function computeSignature(signingKey: Buffer, toSign: string): string {
  return createHmac('sha256', signingKey).update(toSign).digest('hex');
}

/** Constant-time comparison of two 64-hex signatures (case-insensitive). */
export function signaturesEqual(expectedHex: string, providedHex: string): boolean {
  if (!HEX64.test(expectedHex) || !HEX64.test(providedHex)) return false;
  return timingSafeEqual(Buffer.from(expectedHex, 'hex'), Buffer.from(providedHex, 'hex'));
}

// ---------------------------------------------------------------------------
// Request authentication

function single(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(',') : String(v);
}

/** Parses `YYYYMMDDTHHMMSSZ`; undefined if malformed. */
export function parseAmzDate(s: string): Date | undefined {
  const m = AMZ_DATE.exec(s);
  if (!m) return undefined;
  const [y, mo, d, h, mi, se] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const t = Date.UTC(y, mo - 1, d, h, mi, se);
  const date = new Date(t);
  // reject rolled-over values such as month 13 or second 61
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d ||
      date.getUTCHours() !== h || date.getUTCMinutes() !== mi || date.getUTCSeconds() !== se) return undefined;
  return date;
}

/** Formats a Date as `YYYYMMDDTHHMMSSZ`. */
export function formatAmzDate(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

interface ParsedCredential { accessKey: string; date: string; region: string; service: string; scope: string }

function parseCredential(value: string, fail: (msg: string) => S3Error): ParsedCredential {
  const parts = value.split('/');
  if (parts.length < 5) throw fail(`The credential '${value}' is malformed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".`);
  const terminator = parts.pop()!;
  const service = parts.pop()!;
  const region = parts.pop()!;
  const date = parts.pop()!;
  const accessKey = parts.join('/');
  if (accessKey === '') throw fail('The credential is missing the access key.');
  if (!/^\d{8}$/.test(date)) throw fail(`Invalid credential date "${date}". This date is not the same as X-Amz-Date.`);
  if (region === '') throw fail('The credential is missing the region.');
  if (service !== 's3') throw fail(`The credential is mal-formed; incorrect service "${service}". This endpoint belongs to "s3".`);
  if (terminator !== 'aws4_request') throw fail(`The credential is mal-formed; incorrect terminal "${terminator}". This endpoint uses "aws4_request".`);
  return { accessKey, date, region, service, scope: `${date}/${region}/${service}/aws4_request` };
}

function parseSignedHeaders(value: string, fail: (msg: string) => S3Error): string[] {
  const names = value.split(';');
  for (const n of names) {
    if (n === '' || !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(n)) throw fail(`Invalid SignedHeaders "${value}".`);
  }
  const lower = names.map((n) => n.toLowerCase());
  if (!lower.includes('host')) throw fail('SignedHeaders must include the host header.');
  return lower;
}

function payloadModeFor(hash: string): PayloadMode {
  switch (hash) {
    case UNSIGNED_PAYLOAD: return { mode: 'unsigned' };
    case STREAMING_SIGNED: return { mode: 'streaming-signed', trailer: false };
    case STREAMING_SIGNED_TRAILER: return { mode: 'streaming-signed', trailer: true };
    case STREAMING_UNSIGNED_TRAILER: return { mode: 'streaming-unsigned-trailer' };
    default:
      if (HEX64.test(hash)) return { mode: 'signed', sha256: hash.toLowerCase() };
      if (hash.startsWith('STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD')) {
        throw new S3Error('NotImplemented', 'SigV4a streaming payloads are not supported.');
      }
      throw new S3Error('InvalidArgument', `x-amz-content-sha256 must be UNSIGNED-PAYLOAD, ${STREAMING_SIGNED}, ${STREAMING_SIGNED_TRAILER}, ${STREAMING_UNSIGNED_TRAILER} or a valid sha256 value.`, { ArgumentName: 'x-amz-content-sha256', ArgumentValue: hash.slice(0, 128) });
  }
}

/** S3 requires every x-amz-* header the request carries to be signed. */
function checkAmzHeadersSigned(req: SignedRequest, signed: readonly string[], exempt: readonly string[]): void {
  const unsigned: string[] = [];
  for (const name of Object.keys(req.headers)) {
    if (name.startsWith('x-amz-') && !signed.includes(name) && !exempt.includes(name)) unsigned.push(name);
  }
  if (unsigned.length > 0) {
    throw new S3Error('AccessDenied', 'There were headers present in the request which were not signed', { HeadersNotSigned: unsigned.sort().join(', ') });
  }
}

function lookupCredential(lookup: CredentialLookup, accessKey: string): Credential {
  const credential = lookup(accessKey);
  if (credential === undefined) throw new S3Error('InvalidAccessKeyId', undefined, { AWSAccessKeyId: accessKey });
  return credential;
}

function verify(expectedHex: string, provided: string, toSign: string, accessKey: string): void {
  if (!signaturesEqual(expectedHex, provided)) {
    throw new S3Error('SignatureDoesNotMatch', undefined, { AWSAccessKeyId: accessKey, StringToSign: toSign });
  }
}

/**
 * Authenticates a SigV4 request (Authorization header or presigned URL).
 * Throws S3Error on every failure; returns who signed and how the body is
 * to be decoded/verified.
 */
export function authenticate(req: SignedRequest, lookup: CredentialLookup, opts: AuthOptions = {}): AuthContext {
  const now = (opts.now ?? new Date()).getTime();
  const maxSkewMs = opts.maxSkewMs ?? DEFAULT_MAX_SKEW_MS;
  const authorization = single(req.headers, 'authorization');
  const { query } = splitTarget(req.url);
  const hasPresign = /(^|&)X-Amz-(Algorithm|Signature|Credential)=/.test(query);

  if (authorization !== undefined && hasPresign) {
    throw new S3Error('InvalidArgument', 'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified.');
  }
  if (authorization !== undefined) return authenticateHeader(req, authorization, lookup, now, maxSkewMs);
  if (hasPresign) return authenticatePresigned(req, query, lookup, now, maxSkewMs);
  throw new S3Error('AccessDenied', 'Anonymous access is not allowed.');
}

function authenticateHeader(req: SignedRequest, authorization: string, lookup: CredentialLookup, now: number, maxSkewMs: number): AuthContext {
  const malformed = (msg: string) => new S3Error('AuthorizationHeaderMalformed', msg);
  const auth = authorization.trim();
  const sp = auth.indexOf(' ');
  const algorithm = sp === -1 ? auth : auth.slice(0, sp);
  if (algorithm !== ALGORITHM) {
    if (algorithm === 'AWS') throw new S3Error('InvalidRequest', 'The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.');
    throw malformed(`Unsupported authorization algorithm "${algorithm.slice(0, 64)}"; expecting AWS4-HMAC-SHA256.`);
  }
  const fields = new Map<string, string>();
  for (const piece of auth.slice(sp + 1).split(',')) {
    const p = piece.trim();
    if (p === '') continue;
    const eq = p.indexOf('=');
    if (eq <= 0) throw malformed(`The authorization header is malformed; "${p.slice(0, 64)}" is not a key=value pair.`);
    const k = p.slice(0, eq);
    if (k !== 'Credential' && k !== 'SignedHeaders' && k !== 'Signature') throw malformed(`The authorization header is malformed; unexpected field "${k.slice(0, 64)}".`);
    if (fields.has(k)) throw malformed(`The authorization header is malformed; duplicate field "${k}".`);
    fields.set(k, p.slice(eq + 1));
  }
  const credentialField = fields.get('Credential');
  const signedHeadersField = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (credentialField === undefined || signedHeadersField === undefined || signature === undefined) {
    throw malformed('The authorization header is malformed; it must contain Credential, SignedHeaders and Signature.');
  }
  if (!HEX64.test(signature)) throw malformed('The authorization header is malformed; the signature must be 64 hexadecimal characters.');
  const cred = parseCredential(credentialField, malformed);
  const signedHeaders = parseSignedHeaders(signedHeadersField, malformed);

  // S3 requires the payload hash header on every SigV4 header-signed request.
  const contentSha = single(req.headers, 'x-amz-content-sha256');
  if (contentSha === undefined) {
    throw new S3Error('InvalidRequest', 'Missing required header for this request: x-amz-content-sha256');
  }
  const payload = payloadModeFor(contentSha);

  // Request time: x-amz-date, else Date.
  let amzDate: string;
  let requestTime: Date | undefined;
  const xAmzDate = single(req.headers, 'x-amz-date');
  if (xAmzDate !== undefined) {
    amzDate = xAmzDate.trim();
    requestTime = parseAmzDate(amzDate);
  } else {
    const dateHeader = single(req.headers, 'date');
    if (dateHeader !== undefined) {
      const t = Date.parse(dateHeader);
      if (Number.isFinite(t)) requestTime = new Date(Math.floor(t / 1000) * 1000);
    }
    amzDate = requestTime !== undefined ? formatAmzDate(requestTime) : '';
  }
  if (requestTime === undefined) {
    throw new S3Error('AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header');
  }

  const credential = lookupCredential(lookup, cred.accessKey);
  if (cred.date !== amzDate.slice(0, 8)) {
    throw malformed(`Invalid credential date "${cred.date}". This date is not the same as X-Amz-Date: "${amzDate.slice(0, 8)}".`);
  }
  if (Math.abs(now - requestTime.getTime()) > maxSkewMs) {
    throw new S3Error('RequestTimeTooSkewed', undefined, {
      RequestTime: amzDate,
      ServerTime: new Date(now).toISOString(),
      MaxAllowedSkewMilliseconds: String(maxSkewMs),
    });
  }
  checkAmzHeadersSigned(req, signedHeaders, []);

  const creq = canonicalRequest({
    method: req.method, url: req.url, headers: req.headers, rawHeaders: req.rawHeaders,
    signedHeaders, payloadHash: contentSha,
  });
  const sts = stringToSign(amzDate, cred.scope, creq);
  const key = deriveSigningKey(credential.secretKey, cred.date, cred.region, cred.service);
  const expected = computeSignature(key, sts);
  verify(expected, signature, sts, cred.accessKey);

  const ctx: AuthContext = { credential, payload };
  if (payload.mode === 'streaming-signed') {
    ctx.signing = { key, amzDate, scope: cred.scope, seedSignature: expected };
  }
  return ctx;
}

function authenticatePresigned(req: SignedRequest, rawQuery: string, lookup: CredentialLookup, now: number, maxSkewMs: number): AuthContext {
  const bad = (msg: string) => new S3Error('AuthorizationQueryParametersError', msg);
  const params = new Map<string, string>();
  for (const [k, v] of parseQuery(rawQuery)) {
    if (k.startsWith('X-Amz-')) {
      if (params.has(k)) throw bad(`Duplicate query parameter "${k}".`);
      params.set(k, v);
    }
  }
  const algorithm = params.get('X-Amz-Algorithm');
  const credentialParam = params.get('X-Amz-Credential');
  const dateParam = params.get('X-Amz-Date');
  const expiresParam = params.get('X-Amz-Expires');
  const signedHeadersParam = params.get('X-Amz-SignedHeaders');
  const signature = params.get('X-Amz-Signature');
  if (algorithm === undefined || credentialParam === undefined || dateParam === undefined ||
      expiresParam === undefined || signedHeadersParam === undefined || signature === undefined) {
    throw bad('Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.');
  }
  if (algorithm !== ALGORITHM) throw bad('X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"');
  if (!HEX64.test(signature)) throw bad('X-Amz-Signature must be 64 hexadecimal characters.');
  if (!/^\d{1,7}$/.test(expiresParam)) throw bad('X-Amz-Expires should be a number');
  const expires = Number(expiresParam);
  if (expires < 1) throw bad('X-Amz-Expires must be non-negative');
  if (expires > MAX_PRESIGN_EXPIRES) throw bad('X-Amz-Expires must be less than a week (in seconds) that is 604800');
  const requestTime = parseAmzDate(dateParam);
  if (requestTime === undefined) throw bad(`X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd'T'HHmmss'Z'"`);
  const cred = parseCredential(credentialParam, bad);
  const signedHeaders = parseSignedHeaders(signedHeadersParam, bad);

  // Payload hash: X-Amz-Content-Sha256 query parameter, else a signed
  // x-amz-content-sha256 header, else UNSIGNED-PAYLOAD.
  let payloadHash = params.get('X-Amz-Content-Sha256');
  if (payloadHash === undefined && signedHeaders.includes('x-amz-content-sha256')) {
    payloadHash = single(req.headers, 'x-amz-content-sha256');
  }
  payloadHash ??= UNSIGNED_PAYLOAD;
  const payload = payloadModeFor(payloadHash);
  if (payload.mode !== 'signed' && payload.mode !== 'unsigned') {
    throw new S3Error('InvalidArgument', 'Streaming payloads cannot be used with presigned URLs.', { ArgumentName: 'X-Amz-Content-Sha256' });
  }

  const credential = lookupCredential(lookup, cred.accessKey);
  if (cred.date !== dateParam.slice(0, 8)) {
    throw bad(`Invalid credential date "${cred.date}". This date is not the same as X-Amz-Date: "${dateParam.slice(0, 8)}".`);
  }
  const start = requestTime.getTime();
  if (now < start - maxSkewMs) throw new S3Error('AccessDenied', 'Request is not valid yet');
  if (now > start + expires * 1000) {
    throw new S3Error('AccessDenied', 'Request has expired', {
      Expires: new Date(start + expires * 1000).toISOString(),
      ServerTime: new Date(now).toISOString(),
      'X-Amz-Expires': expiresParam,
    });
  }
  checkAmzHeadersSigned(req, signedHeaders, ['x-amz-content-sha256']);

  const creq = canonicalRequest({
    method: req.method, url: req.url, headers: req.headers, rawHeaders: req.rawHeaders,
    signedHeaders, payloadHash, excludeQueryParam: 'X-Amz-Signature',
  });
  const sts = stringToSign(dateParam, cred.scope, creq);
  const key = deriveSigningKey(credential.secretKey, cred.date, cred.region, cred.service);
  verify(computeSignature(key, sts), signature, sts, cred.accessKey);
  return { credential, payload };
}
