// Service and bucket calls: ListBuckets, CreateBucket, HeadBucket,
// DeleteBucket, GetBucketLocation, ListObjects (v1, v2), DeleteObjects.
import { EngineError } from '../../../tiering/index.js';
import { uriEncode } from '../auth.js';
import { S3Error, toS3Error } from '../errors.js';
import { isoDate, readSmallBody, readXmlBody, sendXml } from '../request.js';
import { children, childText, el } from '../xml.js';
import { storageClass, type Handler } from './common.js';

const OWNER = el('Owner', el('ID', 'valentine'), el('DisplayName', 'valentine'));

export const listBuckets: Handler = async (call, { engine }) => {
  const buckets = await engine.listBuckets();
  sendXml(
    call.reply,
    el('ListAllMyBucketsResult', OWNER, el('Buckets', buckets.map((b) => el('Bucket', el('Name', b.name), el('CreationDate', isoDate(b.created)))))),
  );
};

export const createBucket: Handler = async (call, { engine, options }) => {
  // The body may name a LocationConstraint; any region is accepted (one site set).
  await readSmallBody(call.req.raw, options.maxXmlBytes);
  await engine.createBucket(call.bucket);
  call.reply.code(200).header('location', `/${call.bucket}`).send();
};

export const headBucket: Handler = async (call, { engine, options }) => {
  await engine.headBucket(call.bucket);
  call.reply.code(200).header('x-amz-bucket-region', options.region).send();
};

export const deleteBucket: Handler = async (call, { engine }) => {
  await engine.deleteBucket(call.bucket);
  call.reply.code(204).send();
};

export const getBucketLocation: Handler = async (call, { engine, options }) => {
  await engine.headBucket(call.bucket);
  sendXml(call.reply, el('LocationConstraint', options.region === 'us-east-1' ? '' : options.region));
};

function maxKeysOf(v: string | undefined, name = 'max-keys'): number {
  if (v === undefined) return 1000;
  if (!/^\d{1,9}$/.test(v)) throw new S3Error('InvalidArgument', `Provided ${name} not an integer or within integer range`);
  return Math.min(Number(v), 1000);
}

function encoder(encodingType: string | undefined): (s: string) => string {
  if (encodingType === undefined) return (s) => s;
  if (encodingType !== 'url') throw new S3Error('InvalidArgument', 'Invalid Encoding Method specified in Request');
  return (s) => uriEncode(s, true);
}

export const listObjectsV2: Handler = async (call, { engine }) => {
  const q = call.query;
  const prefix = q.get('prefix') ?? '';
  const delimiter = q.get('delimiter') || undefined;
  const maxKeys = maxKeysOf(q.get('max-keys'));
  const token = q.get('continuation-token');
  const startAfter = q.get('start-after');
  let after = startAfter;
  if (token !== undefined) {
    after = Buffer.from(token, 'base64url').toString('utf8');
    if (Buffer.from(after, 'utf8').toString('base64url') !== token) throw new S3Error('InvalidArgument', 'The continuation token provided is incorrect');
  }
  const enc = encoder(q.get('encoding-type'));
  const page = await engine.listObjects(call.bucket, { prefix, ...(delimiter && { delimiter }), ...(after !== undefined && { after }), maxKeys });
  const fetchOwner = q.get('fetch-owner') === 'true';
  sendXml(
    call.reply,
    el(
      'ListBucketResult',
      el('Name', call.bucket),
      el('Prefix', enc(prefix)),
      delimiter !== undefined ? el('Delimiter', enc(delimiter)) : undefined,
      el('MaxKeys', maxKeys),
      el('KeyCount', page.objects.length + page.commonPrefixes.length),
      el('IsTruncated', page.isTruncated),
      token !== undefined ? el('ContinuationToken', token) : undefined,
      page.isTruncated && page.last !== undefined ? el('NextContinuationToken', Buffer.from(page.last, 'utf8').toString('base64url')) : undefined,
      startAfter !== undefined ? el('StartAfter', enc(startAfter)) : undefined,
      q.has('encoding-type') ? el('EncodingType', 'url') : undefined,
      contents(page.objects, enc, fetchOwner),
      page.commonPrefixes.map((p) => el('CommonPrefixes', el('Prefix', enc(p)))),
    ),
  );
};

export const listObjectsV1: Handler = async (call, { engine }) => {
  const q = call.query;
  const prefix = q.get('prefix') ?? '';
  const delimiter = q.get('delimiter') || undefined;
  const maxKeys = maxKeysOf(q.get('max-keys'));
  const marker = q.get('marker') ?? '';
  const enc = encoder(q.get('encoding-type'));
  const page = await engine.listObjects(call.bucket, {
    prefix,
    ...(delimiter && { delimiter }),
    ...(marker !== '' && { after: marker }),
    maxKeys,
  });
  sendXml(
    call.reply,
    el(
      'ListBucketResult',
      el('Name', call.bucket),
      el('Prefix', enc(prefix)),
      el('Marker', enc(marker)),
      page.isTruncated && delimiter !== undefined && page.last !== undefined ? el('NextMarker', enc(page.last)) : undefined,
      el('MaxKeys', maxKeys),
      delimiter !== undefined ? el('Delimiter', enc(delimiter)) : undefined,
      el('IsTruncated', page.isTruncated),
      q.has('encoding-type') ? el('EncodingType', 'url') : undefined,
      contents(page.objects, enc, true),
      page.commonPrefixes.map((p) => el('CommonPrefixes', el('Prefix', enc(p)))),
    ),
  );
};

function contents(objects: Awaited<ReturnType<Parameters<Handler>[1]['engine']['listObjects']>>['objects'], enc: (s: string) => string, owner: boolean) {
  return objects.map((o) =>
    el(
      'Contents',
      el('Key', enc(o.key)),
      el('LastModified', isoDate(o.lastModified)),
      el('ETag', o.etag),
      el('Size', o.size),
      el('StorageClass', storageClass(o)),
      owner ? OWNER : undefined,
    ),
  );
}

export const deleteObjects: Handler = async (call, { engine, options }) => {
  const doc = await readXmlBody(call.req.raw, Math.max(options.maxXmlBytes, 2 << 20), 'Delete');
  const quiet = childText(doc, 'Quiet') === 'true';
  const objects = children(doc, 'Object');
  if (objects.length === 0 || objects.length > 1000) throw new S3Error('MalformedXML', 'A Delete request names 1 to 1,000 objects.');
  await engine.headBucket(call.bucket);
  const results = [];
  for (const o of objects) {
    const key = childText(o, 'Key') ?? '';
    try {
      await engine.deleteObject(call.bucket, key);
      if (!quiet) results.push(el('Deleted', el('Key', key)));
    } catch (err) {
      if (err instanceof EngineError && err.code === 'NO_SUCH_KEY') {
        if (!quiet) results.push(el('Deleted', el('Key', key)));
        continue;
      }
      const e = toS3Error(err);
      results.push(el('Error', el('Key', key), el('Code', e.code), el('Message', e.message)));
    }
  }
  sendXml(call.reply, el('DeleteResult', results));
};
