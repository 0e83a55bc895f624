// Object calls: PutObject, GetObject, HeadObject, DeleteObject, CopyObject
// and object tagging.
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { FastifyRequest } from 'fastify';
import type { Logger, ObjectRecord } from '../../../tiering/index.js';
import { S3Error } from '../errors.js';
import { decodeComponent, isoDate, readSmallBody, readXmlBody, sendXml, type S3Call } from '../request.js';
import { children, childText, el } from '../xml.js';
import { bodyForWrite, objectHeaders, validateTags, writeInputFromHeaders, type Handler } from './common.js';

export const putObject: Handler = async (call, { engine }) => {
  const input = writeInputFromHeaders(call);
  const { body, ...checks } = bodyForWrite(call);
  const rec = await engine.putObject(call.bucket, call.key, body, { ...input, ...checks });
  call.reply.header('etag', rec.etag);
  if (rec.checksum) call.reply.header(`x-amz-checksum-${rec.checksum.algorithm.toLowerCase()}`, rec.checksum.value);
  call.reply.code(200).send();
};

export const headObject: Handler = async (call, deps) => getOrHead(call, deps, false);
export const getObject: Handler = async (call, deps) => getOrHead(call, deps, true);

async function getOrHead(call: S3Call, { engine, log }: Parameters<Handler>[1], withBody: boolean): Promise<void> {
  const rec = await engine.headObject(call.bucket, call.key);
  const notModified = checkConditions(rec, call.req);
  const reply = call.reply;
  const headers = objectHeaders(rec, call.req.headers['x-amz-checksum-mode'] === 'ENABLED', engine);
  if (notModified) {
    reply.code(304).headers({ etag: headers.etag!, 'last-modified': headers['last-modified']! }).send();
    return;
  }
  for (const [q, h] of RESPONSE_OVERRIDES) {
    const v = call.query.get(q);
    if (v !== undefined) headers[h] = v;
  }
  const range = parseRange(call.req.headers.range, rec.size);
  const empty = range ? range.end === range.start : rec.size === 0;
  // The first bytes are in hand before the status goes out, so an object that
  // cannot be read (too many shards lost) is a clean 500, not a torn 200.
  // A small body is read whole and sent in one write.
  const length = range ? range.end - range.start : rec.size;
  const whole = withBody && !empty && length <= WHOLE_READ_BYTES;
  const body = whole ? await engine.readBytes(rec, range) : undefined;
  const chunks = withBody && !empty && !whole ? await engine.openObject(rec, range) : undefined;
  if (range) {
    delete headers[`x-amz-checksum-${rec.checksum?.algorithm.toLowerCase()}`];
    reply.code(206).headers(headers).header('content-range', `bytes ${range.start}-${range.end - 1}/${rec.size}`);
    reply.header('content-length', String(range.end - range.start));
  } else {
    reply.code(200).headers(headers).header('content-length', String(rec.size));
  }
  if (chunks) await sendChunks(call, chunks, (c) => engine.releaseChunk(c), log);
  else reply.send(body);
}

/**
 * Writes a large body straight to the socket, handing each chunk back once
 * the kernel has taken it, so the next block is read into the same buffer.
 * The status and headers are already set; a read that fails after they went
 * out tears the connection, so the client sees a short body, never a wrong one.
 */
async function sendChunks(call: S3Call, chunks: AsyncIterable<Buffer>, release: (chunk: Buffer) => void, log: Logger): Promise<void> {
  const { reply } = call;
  const res = reply.raw;
  reply.hijack(); // fastify's onResponse hook still runs when the response finishes
  res.writeHead(reply.statusCode, reply.getHeaders() as OutgoingHttpHeaders);
  try {
    for await (const chunk of chunks) {
      if (res.destroyed) break;
      if (!res.write(chunk, (err) => err || release(chunk))) await drained(res);
    }
    res.end();
  } catch (err) {
    log.error({ err: String((err as Error)?.stack ?? err), requestId: call.requestId }, 'GetObject failed after the status was sent');
    res.destroy();
  }
}

/** Resolves when `res` can take more, or is gone. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** Bodies up to this size are read into one buffer rather than streamed. */
const WHOLE_READ_BYTES = 256 * 1024;

/**
 * RestoreObject: bring a stub back into the hot tier ahead of reading it
 * (202 while it runs, 409 if one already runs, 200 when already hot). A GET
 * works without it; this only saves the first reader the wait.
 */
export const restoreObject: Handler = async (call, { engine, options }) => {
  // The RestoreRequest body (days, tier) means nothing here: a recalled object stays until it idles again.
  await readSmallBody(call.req.raw, options.maxXmlBytes);
  const rec = await engine.headObject(call.bucket, call.key);
  if (engine.recalling(call.bucket, call.key)) throw new S3Error('RestoreAlreadyInProgress');
  if (rec.tier !== 'stub') {
    call.reply.code(200).send();
    return;
  }
  void engine.recallObject(call.bucket, call.key).catch(() => undefined); // the engine logs a failed recall
  call.reply.code(202).send();
};

const RESPONSE_OVERRIDES = [
  ['response-content-type', 'content-type'],
  ['response-content-language', 'content-language'],
  ['response-expires', 'expires'],
  ['response-cache-control', 'cache-control'],
  ['response-content-disposition', 'content-disposition'],
  ['response-content-encoding', 'content-encoding'],
] as const;

/**
 * RFC 9110 preconditions in S3's order. Throws PreconditionFailed; returns
 * true when the answer is 304 Not Modified.
 */
function checkConditions(rec: ObjectRecord, req: FastifyRequest): boolean {
  const h = req.headers;
  const ifMatch = h['if-match'];
  const ifNoneMatch = h['if-none-match'];
  const ifModifiedSince = parseDate(h['if-modified-since']);
  const ifUnmodifiedSince = parseDate(h['if-unmodified-since']);
  const modifiedSec = Math.floor(rec.lastModified / 1000) * 1000;
  if (ifMatch !== undefined) {
    if (!etagMatches(ifMatch, rec.etag)) throw new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', { Condition: 'If-Match' });
  } else if (ifUnmodifiedSince !== undefined && modifiedSec > ifUnmodifiedSince) {
    throw new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', { Condition: 'If-Unmodified-Since' });
  }
  if (ifNoneMatch !== undefined) return etagMatches(ifNoneMatch, rec.etag);
  return ifModifiedSince !== undefined && modifiedSec <= ifModifiedSince;
}

function etagMatches(header: string, etag: string): boolean {
  const want = etag.replace(/"/g, '');
  return header.split(',').some((t) => {
    const v = t.trim().replace(/^W\//, '').replace(/"/g, '');
    return v === '*' || v === want;
  });
}

function parseDate(v: string | undefined): number | undefined {
  if (!v) return undefined;
  const ms = Date.parse(v);
  return Number.isNaN(ms) ? undefined : ms;
}

/**
 * A single byte range ("bytes=a-b", "bytes=a-", "bytes=-n") as [start, end).
 * Syntax S3 does not honour (several ranges, garbage) means the whole object.
 */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) throw new S3Error('InvalidRange', undefined, { RangeRequested: header, ActualObjectSize: String(size) });
    start = Math.max(size - n, 0);
    end = size;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size : Math.min(Number(m[2]) + 1, size);
    if (m[2] !== '' && Number(m[2]) < start) return undefined;
  }
  if (start >= size) throw new S3Error('InvalidRange', undefined, { RangeRequested: header, ActualObjectSize: String(size) });
  return { start, end };
}

export const deleteObject: Handler = async (call, { engine }) => {
  await engine.deleteObject(call.bucket, call.key);
  call.reply.code(204).send();
};

/** Source named by x-amz-copy-source ("bucket/key" or "/bucket/key", URL-encoded). */
export async function copySource(call: S3Call, { engine }: Parameters<Handler>[1]): Promise<ObjectRecord> {
  const raw = String(call.req.headers['x-amz-copy-source'] ?? '');
  const path = raw.replace(/^\//, '').replace(/\?versionId=.*$/, '');
  const slash = path.indexOf('/');
  if (slash <= 0 || slash === path.length - 1) throw new S3Error('InvalidArgument', 'Copy Source must mention the source bucket and key: sourcebucket/sourcekey.');
  const src = await engine.headObject(decodeComponent(path.slice(0, slash)), decodeComponent(path.slice(slash + 1)));
  const h = call.req.headers;
  const ifMatch = h['x-amz-copy-source-if-match'];
  const ifNoneMatch = h['x-amz-copy-source-if-none-match'];
  const ifModifiedSince = parseDate(h['x-amz-copy-source-if-modified-since'] as string | undefined);
  const ifUnmodifiedSince = parseDate(h['x-amz-copy-source-if-unmodified-since'] as string | undefined);
  const modifiedSec = Math.floor(src.lastModified / 1000) * 1000;
  const failed =
    (typeof ifMatch === 'string' && !etagMatches(ifMatch, src.etag)) ||
    (typeof ifNoneMatch === 'string' && etagMatches(ifNoneMatch, src.etag)) ||
    (ifUnmodifiedSince !== undefined && ifMatch === undefined && modifiedSec > ifUnmodifiedSince) ||
    (ifModifiedSince !== undefined && ifNoneMatch === undefined && modifiedSec <= ifModifiedSince);
  if (failed) throw new S3Error('PreconditionFailed');
  return src;
}

export const copyObject: Handler = async (call, deps) => {
  const src = await copySource(call, deps);
  const replace = String(call.req.headers['x-amz-metadata-directive'] ?? 'COPY').toUpperCase();
  const tagReplace = String(call.req.headers['x-amz-tagging-directive'] ?? 'COPY').toUpperCase();
  if (!['COPY', 'REPLACE'].includes(replace) || !['COPY', 'REPLACE'].includes(tagReplace)) {
    throw new S3Error('InvalidArgument', 'Unknown metadata or tagging directive.');
  }
  if (src.bucket === call.bucket && src.key === call.key && replace !== 'REPLACE') {
    throw new S3Error('InvalidRequest', 'This copy request is illegal because it is trying to copy an object to itself without changing the object\'s metadata.');
  }
  const fromRequest = writeInputFromHeaders(call);
  const input = replace === 'REPLACE' ? { ...fromRequest } : { ...pickContent(src), meta: src.meta };
  const tags = tagReplace === 'REPLACE' ? (fromRequest.tags ?? {}) : src.tags;
  const rec = await deps.engine.copyObject(src, call.bucket, call.key, { ...input, tags });
  sendXml(call.reply, el('CopyObjectResult', el('LastModified', isoDate(rec.lastModified)), el('ETag', rec.etag)));
};

function pickContent(rec: ObjectRecord) {
  const { contentType, contentEncoding, contentDisposition, contentLanguage, cacheControl, expires } = rec;
  return Object.fromEntries(
    Object.entries({ contentType, contentEncoding, contentDisposition, contentLanguage, cacheControl, expires }).filter(([, v]) => v !== undefined),
  );
}

export const getObjectTagging: Handler = async (call, { engine }) => {
  const rec = await engine.headObject(call.bucket, call.key);
  sendXml(
    call.reply,
    el('Tagging', el('TagSet', Object.entries(rec.tags).map(([k, v]) => el('Tag', el('Key', k), el('Value', v))))),
  );
};

export const putObjectTagging: Handler = async (call, { engine, options }) => {
  const doc = await readXmlBody(call.req.raw, options.maxXmlBytes, 'Tagging');
  const tags: Record<string, string> = {};
  for (const set of children(doc, 'TagSet')) {
    for (const tag of children(set, 'Tag')) {
      const k = childText(tag, 'Key');
      if (k === undefined) throw new S3Error('MalformedXML', 'A Tag has no Key.');
      if (k in tags) throw new S3Error('InvalidArgument', 'Cannot provide multiple Tags with the same key.');
      tags[k] = childText(tag, 'Value') ?? '';
    }
  }
  validateTags(tags);
  await engine.updateObject(call.bucket, call.key, (rec) => ({ ...rec, tags }));
  call.reply.code(200).send();
};

export const deleteObjectTagging: Handler = async (call, { engine }) => {
  await engine.updateObject(call.bucket, call.key, (rec) => ({ ...rec, tags: {} }));
  call.reply.code(204).send();
};
