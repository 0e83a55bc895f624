// A site in a bucket of any S3-compatible store (Ceph RGW, MinIO, AWS S3,
// another Valentine), addressed path-style. Layout under the bucket:
//   <prefix>blobs/<first two hex digits of id>/<id>
// Nothing half-written is ever visible: a blob that fits in one part goes up
// as a single PUT at commit; a larger one becomes a multipart upload whose
// parts are sent as the buffer fills (memory stays at a few parts) and
// which turns into an object only at CompleteMultipartUpload. Every body is
// sent with Content-MD5 and its SHA-256 in the signature, so the remote
// refuses bytes that changed on the way.
//
// Requests are signed with @smithy/signature-v4 (the AWS SDK's signer) and
// sent through one undici Pool with connect, headers and body timeouts. A
// request that meets a network error or a 5xx/429 answer is sent again a
// bounded number of times with exponential backoff. Every request here is
// safe to repeat: GET, HEAD, DELETE and the PUT of a whole object or part are
// idempotent; a repeated CreateMultipartUpload leaves an extra upload that
// never becomes visible; a repeated CompleteMultipartUpload that finds its
// upload gone (the first one did complete) is settled by a HEAD of the object.
// (Retries live here rather than in undici's retry interceptor so that each
// attempt is signed afresh and the final error says how many were made.)
// Every failure becomes a SiteRequestError naming the site, the operation,
// the HTTP status and the remote's S3 error code.
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import { Pool } from 'undici';
import { SiteRequestError } from '../errors.js';
import { isBlobId, Site, type BlobReader, type BlobWriter, type SiteSupports } from './site.js';

export interface S3SiteOptions {
  /** http(s)://host[:port][/base-path] of the S3 service. */
  endpoint: string;
  bucket: string;
  /** Prepended to every object key, e.g. "valentine/site-c/". */
  prefix?: string;
  region: string;
  accessKey: string;
  secretKey: string;
  /** Bytes buffered before a multipart part goes up (S3 requires at least 5 MiB). */
  partSize?: number;
  connections?: number;
  connectTimeoutMs?: number;
  headersTimeoutMs?: number;
  bodyTimeoutMs?: number;
  /** Extra attempts for an idempotent request after the first one fails. */
  retries?: number;
  /** First backoff; doubled on every retry. */
  retryDelayMs?: number;
  /** health() gives up after this long and answers false. */
  healthTimeoutMs?: number;
}

export const S3_SITE_DEFAULTS = {
  prefix: '',
  partSize: 8 * 2 ** 20,
  connections: 16,
  connectTimeoutMs: 5_000,
  headersTimeoutMs: 30_000,
  bodyTimeoutMs: 30_000,
  retries: 3,
  retryDelayMs: 100,
  healthTimeoutMs: 2_000,
} as const;

const MIN_PART_SIZE = 5 * 2 ** 20;
/** Parts of one blob uploading at once: memory per writer stays under (1 + this) parts. */
const PARTS_IN_FLIGHT = 2;
const EMPTY_SHA256 = createHash('sha256').digest('hex');
/** Answers worth another try: the remote was busy or briefly broken. */
const RETRY_STATUS = new Set([429, 500, 502, 503, 504]);

type Method = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE';

interface S3Request {
  /** S3 operation name, for errors. */
  op: string;
  method: Method;
  /** Object key; absent for a bucket-level request. */
  key?: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: Buffer;
  /** Statuses that are answers rather than failures (404 on HEAD, say). */
  accept?: readonly number[];
  retries?: number;
  signal?: AbortSignal;
}

interface S3Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export class S3Site extends Site {
  readonly supports: SiteSupports = { durableRename: false };
  private readonly opts: Required<S3SiteOptions>;
  private readonly url: URL;
  private readonly basePath: string;
  private readonly pool: Pool;
  private readonly signer: SignatureV4;

  constructor(name: string, options: S3SiteOptions) {
    super(name);
    const opts = { ...S3_SITE_DEFAULTS, ...options, prefix: options.prefix ?? '' };
    let url: URL;
    try {
      url = new URL(opts.endpoint);
    } catch {
      throw new TypeError(`site ${name}: endpoint ${JSON.stringify(opts.endpoint)} is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`site ${name}: endpoint must be http or https`);
    if (!opts.bucket) throw new TypeError(`site ${name}: bucket is required`);
    if (!(opts.partSize >= MIN_PART_SIZE)) throw new TypeError(`site ${name}: partSize must be at least ${MIN_PART_SIZE}`);
    this.opts = opts;
    this.url = url;
    this.basePath = url.pathname.replace(/\/+$/, '');
    this.pool = new Pool(url.origin, {
      connections: opts.connections,
      connect: { timeout: opts.connectTimeoutMs },
      headersTimeout: opts.headersTimeoutMs,
      bodyTimeout: opts.bodyTimeoutMs,
    });
    this.signer = new SignatureV4({
      service: 's3',
      region: opts.region,
      credentials: { accessKeyId: opts.accessKey, secretAccessKey: opts.secretKey },
      sha256: Sha256,
      uriEscapePath: false, // S3 signs the path as sent, encoded once
    });
  }

  private keyOf(id: string): string {
    return `${this.opts.prefix}blobs/${id.slice(0, 2)}/${id}`;
  }

  protected _createWriter(id: string): BlobWriter {
    return new S3BlobWriter(this.name, this.keyOf(id), this.opts.partSize, (r) => this.request(r));
  }

  protected async _open(id: string): Promise<BlobReader | undefined> {
    const key = this.keyOf(id);
    const size = await this.headSize(key);
    if (size === undefined) return undefined;
    return {
      read: async (offset, length) => {
        const end = Math.min(offset + length, size);
        if (end <= offset) return Buffer.alloc(0); // at or past the end: nothing to fetch (S3 would answer 416)
        const res = await this.request({ op: 'GetObject', method: 'GET', key, headers: { range: `bytes=${offset}-${end - 1}` } });
        // Take what was asked from what came back: a server may ignore Range
        // (200, the whole blob) or send more than asked (s3rver for bytes=0-0);
        // Content-Range says where its bytes start.
        const from = res.status === 206 ? Number(/^bytes (\d+)-/.exec(String(res.headers['content-range']))?.[1] ?? NaN) : 0;
        const body = from <= offset ? res.body.subarray(offset - from, end - from) : Buffer.alloc(0);
        if (body.length !== end - offset) {
          throw new SiteRequestError({ site: this.name, operation: `GetObject ${key}`, status: res.status, detail: `expected ${end - offset} bytes at offset ${offset}, got ${body.length}` });
        }
        return body;
      },
      close: async () => {},
    };
  }

  protected async _delete(id: string): Promise<void> {
    await this.request({ op: 'DeleteObject', method: 'DELETE', key: this.keyOf(id), accept: [404] });
  }

  protected async _stat(id: string): Promise<{ size: number } | undefined> {
    const size = await this.headSize(this.keyOf(id));
    return size === undefined ? undefined : { size };
  }

  private async headSize(key: string): Promise<number | undefined> {
    const res = await this.request({ op: 'HeadObject', method: 'HEAD', key, accept: [404] });
    if (res.status === 404) return undefined;
    const size = Number(res.headers['content-length']);
    if (!Number.isSafeInteger(size)) throw new SiteRequestError({ site: this.name, operation: `HeadObject ${key}`, status: res.status, detail: 'no Content-Length' });
    return size;
  }

  protected async *_list(): AsyncIterable<string> {
    const prefix = `${this.opts.prefix}blobs/`;
    let token: string | undefined;
    for (;;) {
      const query: Record<string, string> = { 'list-type': '2', prefix, 'max-keys': '1000' };
      if (token !== undefined) query['continuation-token'] = token;
      const xml = (await this.request({ op: 'ListObjectsV2', method: 'GET', query })).body.toString('utf8');
      for (const key of xmlValues(xml, 'Key')) {
        const id = key.slice(key.lastIndexOf('/') + 1);
        if (isBlobId(id) && key === this.keyOf(id)) yield id;
      }
      token = xmlValues(xml, 'NextContinuationToken')[0];
      if (xmlValues(xml, 'IsTruncated')[0] !== 'true' || !token) return;
    }
  }

  /** A HEAD of the bucket with a short timeout; false for any failure. */
  async health(): Promise<boolean> {
    try {
      const res = await this.request({ op: 'HeadBucket', method: 'HEAD', retries: 0, signal: AbortSignal.timeout(this.opts.healthTimeoutMs) });
      return res.status === 200;
    } catch {
      return false;
    }
  }

  async capacity(): Promise<undefined> {
    return undefined;
  }

  async close(): Promise<void> {
    await this.pool.close();
  }

  /** Sends one signed request, again after a transient failure (bounded); throws SiteRequestError for anything not accepted. */
  private async request(r: S3Request): Promise<S3Response> {
    const path = `${this.basePath}/${rfc3986(this.opts.bucket)}${r.key !== undefined ? `/${r.key.split('/').map(rfc3986).join('/')}` : ''}`;
    const query = r.query ?? {};
    const search = Object.keys(query)
      .sort()
      .map((k) => `${rfc3986(k)}=${rfc3986(query[k]!)}`)
      .join('&');
    const headers: Record<string, string> = { ...r.headers, host: this.url.host };
    if (r.body) {
      headers['content-length'] = String(r.body.length);
      headers['content-md5'] = createHash('md5').update(r.body).digest('base64');
    }
    headers['x-amz-content-sha256'] = r.body ? createHash('sha256').update(r.body).digest('hex') : EMPTY_SHA256;
    const operation = r.key !== undefined ? `${r.op} ${r.key}` : `${r.op} ${this.opts.bucket}`;
    const retries = r.retries ?? this.opts.retries;
    for (let attempt = 0; ; attempt++) {
      let res: S3Response | undefined;
      let failure: unknown;
      try {
        const signed = await this.signer.sign({
          method: r.method,
          protocol: this.url.protocol,
          hostname: this.url.hostname,
          ...(this.url.port && { port: Number(this.url.port) }),
          path,
          query,
          headers,
        });
        const answer = await this.pool.request({
          method: r.method,
          path: search ? `${path}?${search}` : path,
          headers: signed.headers,
          ...(r.body && { body: r.body }),
          ...(r.signal && { signal: r.signal }),
        });
        res = { status: answer.statusCode, headers: answer.headers, body: Buffer.from(await answer.body.arrayBuffer()) };
      } catch (err) {
        failure = err;
      }
      if (res && ((res.status >= 200 && res.status < 300) || r.accept?.includes(res.status))) return res;
      const transient = res ? RETRY_STATUS.has(res.status) : !r.signal?.aborted;
      if (transient && attempt < retries) {
        await sleep(this.opts.retryDelayMs * 2 ** attempt * (0.5 + Math.random() / 2));
        continue;
      }
      const tries = attempt > 0 ? ` (after ${attempt + 1} attempts)` : '';
      if (res) throw answerError(this.name, operation, res, tries);
      const e = failure as NodeJS.ErrnoException;
      throw new SiteRequestError({ site: this.name, operation, detail: `${e.code ? `${e.code} ` : ''}${e.message} at ${this.url.origin}${tries}` }, { cause: failure });
    }
  }
}

/**
 * Buffers a blob and uploads it: one PUT at commit when it fits in a part,
 * otherwise a multipart upload with parts sent as they fill. Operations run
 * one at a time, so abort() waits for a part in flight before it cancels.
 * After any failure the writer only accepts abort(): bytes already taken from
 * the buffer are gone, so carrying on could commit a blob with a hole.
 */
class S3BlobWriter implements BlobWriter {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private uploadId: string | undefined;
  private readonly parts: { number: number; etag: string }[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private state: 'open' | 'failed' | 'committed' | 'aborted' = 'open';
  private busy: Promise<unknown> = Promise.resolve();
  private total = 0;

  constructor(
    private readonly site: string,
    private readonly key: string,
    private readonly partSize: number,
    private readonly send: (r: S3Request) => Promise<S3Response>,
  ) {}

  write(chunk: Buffer): Promise<void> {
    return this.serial(async () => {
      this.checkOpen();
      this.chunks.push(Buffer.from(chunk)); // a copy: the caller may reuse its buffer once we resolve
      this.buffered += chunk.length;
      this.total += chunk.length;
      while (this.buffered >= this.partSize) await this.uploadPart(this.take(this.partSize));
    });
  }

  commit(): Promise<void> {
    return this.serial(async () => {
      this.checkOpen();
      if (this.uploadId === undefined) {
        await this.send({ op: 'PutObject', method: 'PUT', key: this.key, body: this.take(this.buffered) });
      } else {
        if (this.buffered > 0) await this.uploadPart(this.take(this.buffered));
        await this.settleParts();
        await this.complete();
      }
      this.state = 'committed';
    });
  }

  private async complete(): Promise<void> {
    const xml =
      '<CompleteMultipartUpload>' +
      this.parts.map((p) => `<Part><PartNumber>${p.number}</PartNumber><ETag>${xmlEscape(p.etag)}</ETag></Part>`).join('') +
      '</CompleteMultipartUpload>';
    const operation = `CompleteMultipartUpload ${this.key}`;
    const res = await this.send({
      op: 'CompleteMultipartUpload',
      method: 'POST',
      key: this.key,
      query: { uploadId: this.uploadId! },
      headers: { 'content-type': 'application/xml' },
      body: Buffer.from(xml),
      accept: [404],
    });
    if (res.status === 404) {
      // NoSuchUpload: lost, or completed by an attempt whose answer was lost. The object says which.
      const head = await this.send({ op: 'HeadObject', method: 'HEAD', key: this.key, accept: [404] });
      if (head.status === 404 || Number(head.headers['content-length']) !== this.total) throw answerError(this.site, operation, res, '');
    } else if (/<Error>/.test(res.body.toString('utf8'))) {
      throw answerError(this.site, operation, res, ''); // S3 may answer 200 and still report an error in the body
    }
  }

  /** Never rejects: an upload the remote never completes is invisible, and stale ones are the bucket lifecycle's to reap. */
  async abort(): Promise<void> {
    if (this.state === 'committed' || this.state === 'aborted') return;
    this.state = 'aborted';
    this.chunks = [];
    this.buffered = 0;
    await this.busy.catch(() => undefined);
    await Promise.allSettled(this.inFlight);
    if (this.uploadId === undefined) return;
    await this.send({ op: 'AbortMultipartUpload', method: 'DELETE', key: this.key, query: { uploadId: this.uploadId }, accept: [404] }).catch(() => undefined);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.busy.catch(() => undefined).then(fn);
    this.busy = run;
    return run.catch((err: unknown) => {
      if (this.state === 'open') this.state = 'failed';
      throw err;
    });
  }

  private checkOpen(): void {
    if (this.state !== 'open') throw new SiteRequestError({ site: this.site, operation: `write ${this.key}`, detail: `the writer has ${this.state === 'failed' ? 'failed' : `been ${this.state}`}` });
  }

  /** The first `n` buffered bytes as one buffer; the rest stays buffered. */
  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
    this.chunks = n < all.length ? [all.subarray(n)] : [];
    this.buffered = all.length - n;
    return all.subarray(0, n);
  }

  /**
   * Starts uploading the next part and returns once fewer than
   * PARTS_IN_FLIGHT are on the wire, so the next part fills while earlier
   * ones travel; a failed part rejects here or at commit.
   */
  private async uploadPart(body: Buffer): Promise<void> {
    if (this.uploadId === undefined) {
      const res = await this.send({ op: 'CreateMultipartUpload', method: 'POST', key: this.key, query: { uploads: '' } });
      const uploadId = xmlValues(res.body.toString('utf8'), 'UploadId')[0];
      if (!uploadId) throw new SiteRequestError({ site: this.site, operation: `CreateMultipartUpload ${this.key}`, status: res.status, detail: 'no UploadId in the answer' });
      this.uploadId = uploadId;
    }
    const uploadId = this.uploadId;
    const number = this.parts.length + 1;
    const part = { number, etag: '' };
    this.parts.push(part);
    const upload = (async () => {
      const res = await this.send({ op: 'UploadPart', method: 'PUT', key: this.key, query: { partNumber: String(number), uploadId }, body });
      const etag = res.headers.etag;
      if (typeof etag !== 'string') throw new SiteRequestError({ site: this.site, operation: `UploadPart ${this.key}`, status: res.status, detail: 'no ETag in the answer' });
      part.etag = etag;
    })();
    upload.catch(() => undefined); // observed by settleParts or the race below
    this.inFlight.add(upload);
    void upload.finally(() => this.inFlight.delete(upload)).catch(() => undefined);
    if (this.inFlight.size >= PARTS_IN_FLIGHT) await Promise.race(this.inFlight);
  }

  /** Waits for every part on the wire; rejects if any failed. */
  private async settleParts(): Promise<void> {
    await Promise.all(this.inFlight);
  }

}

/** The error a remote's answer describes: its status, and the Code and Message of its S3 error document. */
function answerError(site: string, operation: string, res: S3Response, suffix: string): SiteRequestError {
  const text = res.body.toString('utf8');
  const remoteCode = xmlValues(text, 'Code')[0];
  const message = xmlValues(text, 'Message')[0] ?? (text.length > 0 && !text.startsWith('<') ? text.slice(0, 200) : 'no error document');
  return new SiteRequestError({ site, operation, status: res.status, ...(remoteCode && { remoteCode }), detail: `${message}${suffix}` });
}

/** RFC 3986 percent-encoding, as SigV4 canonicalises paths and queries. */
function rfc3986(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** Text of every <tag> element in an S3 answer (flat, known shapes only: Key, UploadId, Code…). */
function xmlValues(xml: string, tag: string): string[] {
  const out: string[] = [];
  for (const m of xml.matchAll(new RegExp(`<${tag}>([^<]*)</${tag}>`, 'g'))) {
    out.push(
      m[1]!.replace(/&(#x[0-9a-fA-F]+|#\d+|amp|lt|gt|quot|apos);/g, (_, e: string) =>
        e[0] === '#' ? String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : Number(e.slice(1))) : ENTITIES[e]!,
      ),
    );
  }
  return out;
}

function xmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&${({ '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot', "'": 'apos' } as Record<string, string>)[c]};`);
}
