// Multipart upload calls: Create, UploadPart, UploadPartCopy, Complete,
// Abort, ListParts, ListMultipartUploads.
import { S3Error } from '../errors.js';
import { isoDate, readXmlBody, sendXml, type S3Call } from '../request.js';
import { children, childText, el } from '../xml.js';
import { copySource, parseRange } from './object.js';
import { bodyForWrite, isChecksumAlgorithm, STORAGE_CLASS, writeInputFromHeaders, type Handler } from './common.js';

const OWNER = [el('Initiator', el('ID', 'valentine'), el('DisplayName', 'valentine')), el('Owner', el('ID', 'valentine'), el('DisplayName', 'valentine'))];

export const createMultipartUpload: Handler = async (call, { engine }) => {
  const input = writeInputFromHeaders(call);
  const alg = String(call.req.headers['x-amz-checksum-algorithm'] ?? '').toUpperCase();
  if (alg && !isChecksumAlgorithm(alg)) throw new S3Error('InvalidRequest', `Unsupported checksum algorithm ${alg}.`);
  const up = await engine.createUpload(call.bucket, call.key, { ...input, ...(alg && { checksumAlgorithm: alg }) });
  if (alg) call.reply.header('x-amz-checksum-algorithm', alg);
  sendXml(call.reply, el('InitiateMultipartUploadResult', el('Bucket', call.bucket), el('Key', call.key), el('UploadId', up.uploadId)));
};

function partNumberOf(call: S3Call): number {
  const v = call.query.get('partNumber') ?? '';
  const n = /^\d{1,5}$/.test(v) ? Number(v) : NaN;
  if (!(n >= 1 && n <= 10000)) throw new S3Error('InvalidArgument', 'Part number must be an integer between 1 and 10000, inclusive');
  return n;
}

export const uploadPart: Handler = async (call, { engine }) => {
  const partNumber = partNumberOf(call);
  const { body, ...checks } = bodyForWrite(call);
  const part = await engine.uploadPart(call.bucket, call.key, call.query.get('uploadId')!, partNumber, body, checks);
  call.reply.header('etag', part.etag);
  if (part.checksum) call.reply.header(`x-amz-checksum-${part.checksum.algorithm.toLowerCase()}`, part.checksum.value);
  call.reply.code(200).send();
};

export const uploadPartCopy: Handler = async (call, deps) => {
  const partNumber = partNumberOf(call);
  const src = await copySource(call, deps);
  const rangeHeader = call.req.headers['x-amz-copy-source-range'];
  let range: { start: number; end: number } | undefined;
  if (typeof rangeHeader === 'string') {
    const m = /^bytes=(\d+)-(\d+)$/.exec(rangeHeader);
    if (!m || Number(m[2]) < Number(m[1])) throw new S3Error('InvalidArgument', 'The x-amz-copy-source-range value must be of the form bytes=first-last.');
    if (Number(m[2]) >= src.size) throw new S3Error('InvalidRange');
    range = parseRange(rangeHeader, src.size);
  }
  const part = await deps.engine.uploadPart(call.bucket, call.key, call.query.get('uploadId')!, partNumber, deps.engine.readObject(src, range), {
    expectedSize: range ? range.end - range.start : src.size,
  });
  sendXml(call.reply, el('CopyPartResult', el('LastModified', isoDate(part.lastModified)), el('ETag', part.etag)));
};

export const completeMultipartUpload: Handler = async (call, { engine, options }) => {
  const uploadId = call.query.get('uploadId')!;
  await engine.getUpload(call.bucket, call.key, uploadId);
  const doc = await readXmlBody(call.req.raw, Math.max(options.maxXmlBytes, 2 << 20), 'CompleteMultipartUpload');
  const listed = children(doc, 'Part').map((p) => {
    const n = Number(childText(p, 'PartNumber'));
    const etag = childText(p, 'ETag');
    if (!Number.isInteger(n) || etag === undefined) throw new S3Error('MalformedXML', 'Each Part needs a PartNumber and an ETag.');
    return { partNumber: n, etag };
  });
  const rec = await engine.completeUpload(call.bucket, call.key, uploadId, listed);
  if (rec.checksum) call.reply.header(`x-amz-checksum-${rec.checksum.algorithm.toLowerCase()}`, rec.checksum.value);
  sendXml(
    call.reply,
    el(
      'CompleteMultipartUploadResult',
      el('Location', `/${call.bucket}/${call.key}`),
      el('Bucket', call.bucket),
      el('Key', call.key),
      el('ETag', rec.etag),
    ),
  );
};

export const abortMultipartUpload: Handler = async (call, { engine }) => {
  await engine.abortUpload(call.bucket, call.key, call.query.get('uploadId')!);
  call.reply.code(204).send();
};

export const listParts: Handler = async (call, { engine }) => {
  const uploadId = call.query.get('uploadId')!;
  const up = await engine.getUpload(call.bucket, call.key, uploadId);
  const marker = Number(call.query.get('part-number-marker') ?? 0) || 0;
  const max = Math.min(Number(call.query.get('max-parts') ?? 1000) || 1000, 1000);
  const parts = await engine.listParts(uploadId, marker, max + 1);
  const truncated = parts.length > max;
  const shown = parts.slice(0, max);
  sendXml(
    call.reply,
    el(
      'ListPartsResult',
      el('Bucket', call.bucket),
      el('Key', call.key),
      el('UploadId', uploadId),
      OWNER,
      el('StorageClass', STORAGE_CLASS),
      el('PartNumberMarker', marker),
      el('NextPartNumberMarker', shown.at(-1)?.partNumber ?? marker),
      el('MaxParts', max),
      el('IsTruncated', truncated),
      up.checksumAlgorithm ? el('ChecksumAlgorithm', up.checksumAlgorithm) : undefined,
      shown.map((p) =>
        el(
          'Part',
          el('PartNumber', p.partNumber),
          el('LastModified', isoDate(p.lastModified)),
          el('ETag', p.etag),
          el('Size', p.segment.size),
          p.checksum ? el(`Checksum${p.checksum.algorithm}`, p.checksum.value) : undefined,
        ),
      ),
    ),
  );
};

export const listMultipartUploads: Handler = async (call, { engine }) => {
  const prefix = call.query.get('prefix') ?? '';
  const max = Math.min(Number(call.query.get('max-uploads') ?? 1000) || 1000, 1000);
  const uploads = await engine.listUploads(call.bucket, prefix, max + 1);
  const truncated = uploads.length > max;
  const shown = uploads.slice(0, max);
  sendXml(
    call.reply,
    el(
      'ListMultipartUploadsResult',
      el('Bucket', call.bucket),
      el('KeyMarker', ''),
      el('UploadIdMarker', ''),
      el('NextKeyMarker', shown.at(-1)?.key ?? ''),
      el('NextUploadIdMarker', shown.at(-1)?.uploadId ?? ''),
      el('Prefix', prefix),
      el('MaxUploads', max),
      el('IsTruncated', truncated),
      shown.map((u) =>
        el('Upload', el('Key', u.key), el('UploadId', u.uploadId), OWNER, el('StorageClass', STORAGE_CLASS), el('Initiated', isoDate(u.initiated))),
      ),
    ),
  );
};
