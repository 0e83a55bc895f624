// The S3 door driven by the current AWS SDK (its default checksums on)
// against a real gateway process on loopback.
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  DeleteObjectTaggingCommand,
  GetBucketLocationCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListMultipartUploadsCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  PutObjectTaggingCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import t from 'tap';
import { removeDir, s3Client, startGateway, type Gateway } from '../helpers/gateway.js';
import { blobsOn } from '../helpers/tiers.js';

let gw: Gateway;
let s3: S3Client;
t.before(async () => {
  gw = await startGateway();
  s3 = s3Client(gw);
});
t.teardown(async () => {
  s3?.destroy();
  await gw?.stop();
  await removeDir(gw.dataDir);
});

async function errorOf(p: Promise<unknown>): Promise<S3ServiceException> {
  try {
    await p;
  } catch (err) {
    return err as S3ServiceException;
  }
  throw new Error('expected the call to fail');
}

const body = async (p: Promise<{ Body?: unknown }>) => Buffer.from(await ((await p).Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());

t.test('buckets: create, list, head, location, delete, name rules', async (t) => {
  await s3.send(new CreateBucketCommand({ Bucket: 'photos' }));
  const list = await s3.send(new ListBucketsCommand({}));
  t.ok(list.Buckets?.some((b) => b.Name === 'photos'), 'listed');
  await s3.send(new HeadBucketCommand({ Bucket: 'photos' }));
  const loc = await s3.send(new GetBucketLocationCommand({ Bucket: 'photos' }));
  t.equal(loc.LocationConstraint ?? '', '', 'us-east-1 location is empty');
  t.equal((await errorOf(s3.send(new CreateBucketCommand({ Bucket: 'photos' })))).name, 'BucketAlreadyOwnedByYou');
  t.equal((await errorOf(s3.send(new CreateBucketCommand({ Bucket: 'Bad_Name' })))).name, 'InvalidBucketName');
  t.equal((await errorOf(s3.send(new HeadBucketCommand({ Bucket: 'nope' })))).$metadata.httpStatusCode, 404);
  await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'a', Body: 'x' }));
  const notEmpty = await errorOf(s3.send(new DeleteBucketCommand({ Bucket: 'photos' })));
  t.equal(notEmpty.name, 'BucketNotEmpty');
  t.match(notEmpty.$metadata.requestId, /^[0-9A-F]{16}$/, 'errors carry a request id');
  await s3.send(new DeleteObjectCommand({ Bucket: 'photos', Key: 'a' }));
  await s3.send(new DeleteBucketCommand({ Bucket: 'photos' }));
  t.equal((await errorOf(s3.send(new HeadBucketCommand({ Bucket: 'photos' })))).$metadata.httpStatusCode, 404);
});

t.test('objects: put/get/head with metadata, content headers, checksums, ranges, conditions', async (t) => {
  await s3.send(new CreateBucketCommand({ Bucket: 'objs' }));
  const data = randomBytes(3 * 1024 * 1024 + 17);
  const put = await s3.send(
    new PutObjectCommand({
      Bucket: 'objs',
      Key: 'dir/ünïcode key with spaces.bin',
      Body: data,
      ContentType: 'image/tiff',
      ContentDisposition: 'attachment; filename="a.tif"',
      CacheControl: 'max-age=60',
      Metadata: { specimen: 'NHMUK-123', camera: 'phase one' },
      Tagging: 'project=herbarium&stage=raw',
    }),
  );
  t.equal(put.ETag, `"${createHash('md5').update(data).digest('hex')}"`, 'ETag is the MD5');
  t.ok(put.ChecksumCRC32, 'the SDK default CRC32 checksum came back');
  const head = await s3.send(new HeadObjectCommand({ Bucket: 'objs', Key: 'dir/ünïcode key with spaces.bin', ChecksumMode: 'ENABLED' }));
  t.equal(head.ContentLength, data.length);
  t.equal(head.ContentType, 'image/tiff');
  t.equal(head.ContentDisposition, 'attachment; filename="a.tif"');
  t.equal(head.CacheControl, 'max-age=60');
  t.same(head.Metadata, { specimen: 'NHMUK-123', camera: 'phase one' });
  t.equal(head.ChecksumCRC32, put.ChecksumCRC32, 'stored checksum returned');
  t.equal(head.TagCount, 2);
  t.equal(head.ContentEncoding, undefined, 'aws-chunked is not stored as a content encoding');

  const got = await body(s3.send(new GetObjectCommand({ Bucket: 'objs', Key: 'dir/ünïcode key with spaces.bin', ChecksumMode: 'ENABLED' })));
  t.ok(got.equals(data), 'bytes round-trip');

  const key = 'dir/ünïcode key with spaces.bin';
  const ranged = async (Range: string) => body(s3.send(new GetObjectCommand({ Bucket: 'objs', Key: key, Range })));
  t.ok((await ranged('bytes=0-9')).equals(data.subarray(0, 10)), 'first bytes');
  t.ok((await ranged('bytes=1048570-1048600')).equals(data.subarray(1048570, 1048601)), 'across a block border');
  t.ok((await ranged('bytes=3145700-')).equals(data.subarray(3145700)), 'open range');
  t.ok((await ranged('bytes=-100')).equals(data.subarray(data.length - 100)), 'suffix range');
  const r = await s3.send(new GetObjectCommand({ Bucket: 'objs', Key: key, Range: 'bytes=5-6' }));
  t.equal(r.ContentRange, `bytes 5-6/${data.length}`);
  t.equal(r.$metadata.httpStatusCode, 206);
  t.equal((await errorOf(s3.send(new GetObjectCommand({ Bucket: 'objs', Key: key, Range: `bytes=${data.length}-` })))).name, 'InvalidRange');

  t.equal((await errorOf(s3.send(new GetObjectCommand({ Bucket: 'objs', Key: key, IfMatch: '"nope"' })))).name, 'PreconditionFailed');
  t.equal((await errorOf(s3.send(new GetObjectCommand({ Bucket: 'objs', Key: key, IfNoneMatch: put.ETag })))).$metadata.httpStatusCode, 304);
  const future = new Date(Date.now() + 3600_000);
  t.equal((await errorOf(s3.send(new GetObjectCommand({ Bucket: 'objs', Key: key, IfModifiedSince: future })))).$metadata.httpStatusCode, 304);
  t.equal((await errorOf(s3.send(new GetObjectCommand({ Bucket: 'objs', Key: key, IfUnmodifiedSince: new Date(0) })))).name, 'PreconditionFailed');
  const ok = await s3.send(new GetObjectCommand({ Bucket: 'objs', Key: key, IfMatch: put.ETag!, ResponseContentType: 'text/plain' }));
  t.equal(ok.ContentType, 'text/plain', 'response-content-type override');
  await ok.Body?.transformToByteArray();

  t.equal((await errorOf(s3.send(new GetObjectCommand({ Bucket: 'objs', Key: 'missing' })))).name, 'NoSuchKey');
  t.equal((await errorOf(s3.send(new GetObjectCommand({ Bucket: 'nobucket', Key: 'x' })))).name, 'NoSuchBucket');
  t.equal((await errorOf(s3.send(new PutObjectCommand({ Bucket: 'objs', Key: 'k'.repeat(1025), Body: 'x' })))).name, 'KeyTooLongError');

  const empty = await s3.send(new PutObjectCommand({ Bucket: 'objs', Key: 'empty', Body: '' }));
  t.equal(empty.ETag, '"d41d8cd98f00b204e9800998ecf8427e"');
  t.equal((await body(s3.send(new GetObjectCommand({ Bucket: 'objs', Key: 'empty' })))).length, 0, 'empty object');
});

t.test('large reads: concurrent, ranged and abandoned GETs all return their own bytes', async (t) => {
  // Streamed reads reuse block buffers once a block has been sent: a buffer
  // handed back too early would show up here as another object's bytes.
  await s3.send(new CreateBucketCommand({ Bucket: 'large' }));
  const objects = [randomBytes(4 * 1024 * 1024 + 5), randomBytes(3 * 1024 * 1024), randomBytes(2 * 1024 * 1024 + 999)];
  for (const [i, data] of objects.entries()) await s3.send(new PutObjectCommand({ Bucket: 'large', Key: `o${i}`, Body: data }));
  const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

  // Some readers walk away after the first bytes, leaving their blocks mid-send.
  for (let i = 0; i < 6; i++) {
    const r = await s3.send(new GetObjectCommand({ Bucket: 'large', Key: `o${i % 3}` }));
    const stream = r.Body as NodeJS.ReadableStream & { destroy(): void };
    await new Promise<void>((resolve) => stream.once('data', () => resolve()));
    stream.destroy();
  }
  const reads = Array.from({ length: 24 }, async (_, i) => {
    const data = objects[i % 3]!;
    const start = (i * 262_147) % (data.length - 2_000_000);
    const Range = i % 2 === 0 ? undefined : `bytes=${start}-${start + 1_999_999}`;
    const got = await body(s3.send(new GetObjectCommand({ Bucket: 'large', Key: `o${i % 3}`, Range })));
    return sha(got) === sha(Range ? data.subarray(start, start + 2_000_000) : data);
  });
  const ok = await Promise.all(reads);
  t.equal(ok.filter(Boolean).length, ok.length, 'every read returned exactly its object\'s bytes');
});

t.test('a large object damaged in every copy past its first block: the GET breaks off, never sends wrong bytes', async (t) => {
  await s3.send(new CreateBucketCommand({ Bucket: 'damaged' }));
  const sites = ['hot', 'A', 'B'];
  const before = new Set((await Promise.all(sites.map((s) => blobsOn(gw.dataDir, s)))).flat().map((b) => b.path));
  const data = randomBytes(3 * 1024 * 1024);
  await s3.send(new PutObjectCommand({ Bucket: 'damaged', Key: 'k', Body: data }));
  const copies = (await Promise.all(sites.map((s) => blobsOn(gw.dataDir, s)))).flat().filter((b) => !before.has(b.path));
  t.equal(copies.length, 3, 'three copies');
  for (const c of copies) {
    const buf = await readFile(c.path);
    buf[2_500_000] = buf[2_500_000]! ^ 0xff;
    await writeFile(c.path, buf);
  }
  const r = await s3.send(new GetObjectCommand({ Bucket: 'damaged', Key: 'k' }));
  t.equal(r.$metadata.httpStatusCode, 200, 'the first blocks were good, so the status went out');
  await t.rejects(r.Body!.transformToByteArray(), 'the body breaks off at the damaged block');
  t.ok((await body(s3.send(new GetObjectCommand({ Bucket: 'damaged', Key: 'k', Range: 'bytes=0-999999' })))).equals(data.subarray(0, 1_000_000)), 'the intact part still reads');
});

t.test('overwrite, delete, batch delete (quiet and verbose)', async (t) => {
  await s3.send(new CreateBucketCommand({ Bucket: 'del' }));
  await s3.send(new PutObjectCommand({ Bucket: 'del', Key: 'k', Body: 'one' }));
  await s3.send(new PutObjectCommand({ Bucket: 'del', Key: 'k', Body: 'two!' }));
  t.equal((await body(s3.send(new GetObjectCommand({ Bucket: 'del', Key: 'k' })))).toString(), 'two!');
  for (let i = 0; i < 5; i++) await s3.send(new PutObjectCommand({ Bucket: 'del', Key: `batch/${i}`, Body: String(i) }));
  const verbose = await s3.send(new DeleteObjectsCommand({ Bucket: 'del', Delete: { Objects: [{ Key: 'batch/0' }, { Key: 'batch/1' }, { Key: 'never-there' }] } }));
  t.same(verbose.Deleted?.map((d) => d.Key).sort(), ['batch/0', 'batch/1', 'never-there']);
  const quiet = await s3.send(new DeleteObjectsCommand({ Bucket: 'del', Delete: { Quiet: true, Objects: [{ Key: 'batch/2' }, { Key: 'batch/3' }] } }));
  t.equal(quiet.Deleted, undefined, 'quiet mode lists nothing');
  const left = await s3.send(new ListObjectsV2Command({ Bucket: 'del', Prefix: 'batch/' }));
  t.same(left.Contents?.map((c) => c.Key), ['batch/4']);
  await s3.send(new DeleteObjectCommand({ Bucket: 'del', Key: 'k' }));
  await s3.send(new DeleteObjectCommand({ Bucket: 'del', Key: 'k' }));
  t.equal((await errorOf(s3.send(new HeadObjectCommand({ Bucket: 'del', Key: 'k' })))).$metadata.httpStatusCode, 404);
});

t.test('listing: v1 and v2, prefix, delimiter, paging, start-after, url encoding, owner', async (t) => {
  await s3.send(new CreateBucketCommand({ Bucket: 'list' }));
  const keys = ['a/1', 'a/2', 'a/b/3', 'b/4', 'c', 'd e/5', 'z/ü/6', 'a+b'];
  for (const k of keys) await s3.send(new PutObjectCommand({ Bucket: 'list', Key: k, Body: k }));
  const all = await s3.send(new ListObjectsV2Command({ Bucket: 'list' }));
  t.same(all.Contents?.map((c) => c.Key), [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))), 'UTF-8 binary order');
  t.equal(all.Contents?.[0]?.StorageClass, 'STANDARD');
  const top = await s3.send(new ListObjectsV2Command({ Bucket: 'list', Delimiter: '/' }));
  t.same(top.CommonPrefixes?.map((p) => p.Prefix), ['a/', 'b/', 'd e/', 'z/']);
  t.same(top.Contents?.map((c) => c.Key), ['a+b', 'c']);
  const underA = await s3.send(new ListObjectsV2Command({ Bucket: 'list', Prefix: 'a/', Delimiter: '/' }));
  t.same(underA.Contents?.map((c) => c.Key), ['a/1', 'a/2']);
  t.same(underA.CommonPrefixes?.map((p) => p.Prefix), ['a/b/']);
  // Page through with max-keys 2 and a delimiter: prefixes count and are never repeated.
  const seen: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: 'list', Delimiter: '/', MaxKeys: 2, ContinuationToken: token }));
    seen.push(...(page.CommonPrefixes ?? []).map((p) => p.Prefix!), ...(page.Contents ?? []).map((c) => c.Key!));
    t.ok((page.KeyCount ?? 0) <= 2);
    token = page.NextContinuationToken;
  } while (token);
  t.same(seen.sort(), ['a+b', 'a/', 'b/', 'c', 'd e/', 'z/'].sort(), 'paged with delimiter');
  const after = await s3.send(new ListObjectsV2Command({ Bucket: 'list', StartAfter: 'b/4', FetchOwner: true }));
  t.same(after.Contents?.map((c) => c.Key), ['c', 'd e/5', 'z/ü/6']);
  t.ok(after.Contents?.[0]?.Owner?.ID, 'fetch-owner gives an owner');
  const v1 = await s3.send(new ListObjectsCommand({ Bucket: 'list', Delimiter: '/', MaxKeys: 3 }));
  t.equal(v1.IsTruncated, true);
  t.equal(v1.NextMarker, 'b/');
  const v1b = await s3.send(new ListObjectsCommand({ Bucket: 'list', Delimiter: '/', Marker: v1.NextMarker }));
  t.same([...(v1b.Contents ?? []).map((c) => c.Key), ...(v1b.CommonPrefixes ?? []).map((p) => p.Prefix)].sort(), ['c', 'd e/', 'z/']);
  const encoded = await s3.send(new ListObjectsV2Command({ Bucket: 'list', Prefix: 'd e/', EncodingType: 'url' }));
  t.same(encoded.Contents?.map((c) => c.Key), ['d%20e/5'], 'keys come back URL-encoded (space as %20, slash kept)');
  t.equal(encoded.Prefix, 'd%20e/');
});

t.test('copy: COPY and REPLACE directives, conditions, copy onto itself', async (t) => {
  await s3.send(new CreateBucketCommand({ Bucket: 'copy' }));
  const put = await s3.send(new PutObjectCommand({ Bucket: 'copy', Key: 'src', Body: 'specimen', ContentType: 'text/plain', Metadata: { a: '1' } }));
  await s3.send(new CopyObjectCommand({ Bucket: 'copy', Key: 'dst', CopySource: 'copy/src' }));
  const dst = await s3.send(new HeadObjectCommand({ Bucket: 'copy', Key: 'dst' }));
  t.same(dst.Metadata, { a: '1' });
  t.equal(dst.ContentType, 'text/plain');
  t.equal(dst.ETag, put.ETag);
  await s3.send(new CopyObjectCommand({ Bucket: 'copy', Key: 'dst2', CopySource: 'copy/src', MetadataDirective: 'REPLACE', Metadata: { b: '2' }, ContentType: 'application/x-foo' }));
  const dst2 = await s3.send(new HeadObjectCommand({ Bucket: 'copy', Key: 'dst2' }));
  t.same(dst2.Metadata, { b: '2' });
  t.equal(dst2.ContentType, 'application/x-foo');
  t.equal((await errorOf(s3.send(new CopyObjectCommand({ Bucket: 'copy', Key: 'dst3', CopySource: 'copy/src', CopySourceIfMatch: '"bad"' })))).name, 'PreconditionFailed');
  t.equal((await errorOf(s3.send(new CopyObjectCommand({ Bucket: 'copy', Key: 'src', CopySource: 'copy/src' })))).name, 'InvalidRequest');
  await s3.send(new CopyObjectCommand({ Bucket: 'copy', Key: 'src', CopySource: 'copy/src', MetadataDirective: 'REPLACE', Metadata: { c: '3' } }));
  t.same((await s3.send(new HeadObjectCommand({ Bucket: 'copy', Key: 'src' }))).Metadata, { c: '3' }, 'metadata replaced in place');
  t.equal((await body(s3.send(new GetObjectCommand({ Bucket: 'copy', Key: 'src' })))).toString(), 'specimen');
  t.equal((await errorOf(s3.send(new CopyObjectCommand({ Bucket: 'copy', Key: 'x', CopySource: 'copy/nothing' })))).name, 'NoSuchKey');
});

t.test('tagging', async (t) => {
  await s3.send(new CreateBucketCommand({ Bucket: 'tags' }));
  await s3.send(new PutObjectCommand({ Bucket: 'tags', Key: 'k', Body: 'x' }));
  await s3.send(new PutObjectTaggingCommand({ Bucket: 'tags', Key: 'k', Tagging: { TagSet: [{ Key: 'status', Value: 'verified' }] } }));
  t.same((await s3.send(new GetObjectTaggingCommand({ Bucket: 'tags', Key: 'k' }))).TagSet, [{ Key: 'status', Value: 'verified' }]);
  await s3.send(new DeleteObjectTaggingCommand({ Bucket: 'tags', Key: 'k' }));
  t.same((await s3.send(new GetObjectTaggingCommand({ Bucket: 'tags', Key: 'k' }))).TagSet ?? [], []);
});

t.test('multipart: lib-storage upload, part copy, ordering, etag and size rules, abort, listings', async (t) => {
  await s3.send(new CreateBucketCommand({ Bucket: 'multi' }));
  const data = randomBytes(12 * 1024 * 1024 + 5);
  const up = new Upload({ client: s3, params: { Bucket: 'multi', Key: 'big.tif', Body: data, ContentType: 'image/tiff' }, partSize: 5 * 1024 * 1024, queueSize: 2 });
  const done = await up.done();
  t.match(done.ETag, /-3"$/, 'multipart ETag has -N');
  const got = await body(s3.send(new GetObjectCommand({ Bucket: 'multi', Key: 'big.tif' })));
  t.ok(got.equals(data), 'multipart bytes round-trip');
  t.equal((await s3.send(new HeadObjectCommand({ Bucket: 'multi', Key: 'big.tif' }))).ContentType, 'image/tiff');
  const md5s = [0, 1, 2].map((i) => createHash('md5').update(data.subarray(i * 5242880, (i + 1) * 5242880)).digest());
  t.equal(done.ETag, `"${createHash('md5').update(Buffer.concat(md5s)).digest('hex')}-3"`, 'ETag = md5 of part md5s');

  // Hand-driven upload: part copy with range, wrong order, wrong etag, too small.
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'multi', Key: 'assembled' }));
  const p1 = await s3.send(new UploadPartCopyCommand({ Bucket: 'multi', Key: 'assembled', UploadId, PartNumber: 1, CopySource: 'multi/big.tif', CopySourceRange: 'bytes=0-5242879' }));
  const p2 = await s3.send(new UploadPartCommand({ Bucket: 'multi', Key: 'assembled', UploadId, PartNumber: 2, Body: 'tail' }));
  const listing = await s3.send(new ListPartsCommand({ Bucket: 'multi', Key: 'assembled', UploadId }));
  t.same(listing.Parts?.map((p) => [p.PartNumber, p.Size]), [[1, 5242880], [2, 4]]);
  const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: 'multi' }));
  t.ok(uploads.Uploads?.some((u) => u.UploadId === UploadId), 'upload listed');
  const complete = (Parts: { PartNumber: number; ETag: string }[]) =>
    s3.send(new CompleteMultipartUploadCommand({ Bucket: 'multi', Key: 'assembled', UploadId, MultipartUpload: { Parts } }));
  const e1 = p1.CopyPartResult!.ETag!;
  t.equal((await errorOf(complete([{ PartNumber: 2, ETag: p2.ETag! }, { PartNumber: 1, ETag: e1 }]))).name, 'InvalidPartOrder');
  t.equal((await errorOf(complete([{ PartNumber: 1, ETag: e1 }, { PartNumber: 2, ETag: '"0000"' }]))).name, 'InvalidPart');
  await complete([{ PartNumber: 1, ETag: e1 }, { PartNumber: 2, ETag: p2.ETag! }]);
  const assembled = await body(s3.send(new GetObjectCommand({ Bucket: 'multi', Key: 'assembled' })));
  t.ok(assembled.equals(Buffer.concat([data.subarray(0, 5242880), Buffer.from('tail')])), 'part copy + part assembled');
  t.equal((await errorOf(s3.send(new ListPartsCommand({ Bucket: 'multi', Key: 'assembled', UploadId })))).name, 'NoSuchUpload', 'completed upload is gone');

  const small = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'multi', Key: 'small' }));
  const s1 = await s3.send(new UploadPartCommand({ Bucket: 'multi', Key: 'small', UploadId: small.UploadId, PartNumber: 1, Body: 'a' }));
  const s2 = await s3.send(new UploadPartCommand({ Bucket: 'multi', Key: 'small', UploadId: small.UploadId, PartNumber: 2, Body: 'b' }));
  const tooSmall = await errorOf(
    s3.send(new CompleteMultipartUploadCommand({ Bucket: 'multi', Key: 'small', UploadId: small.UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: s1.ETag! }, { PartNumber: 2, ETag: s2.ETag! }] } })),
  );
  t.equal(tooSmall.name, 'EntityTooSmall');
  await s3.send(new AbortMultipartUploadCommand({ Bucket: 'multi', Key: 'small', UploadId: small.UploadId }));
  t.equal((await errorOf(s3.send(new UploadPartCommand({ Bucket: 'multi', Key: 'small', UploadId: small.UploadId, PartNumber: 3, Body: 'c' })))).name, 'NoSuchUpload');
  t.equal((await errorOf(s3.send(new HeadObjectCommand({ Bucket: 'multi', Key: 'small' })))).$metadata.httpStatusCode, 404, 'aborted upload left no object');
});

t.test('credentials: unknown key, wrong secret, read-only role', async (t) => {
  const stranger = s3Client(gw, { credentials: { accessKeyId: 'NOSUCHKEY', secretAccessKey: 'whatever-secret' } });
  t.equal((await errorOf(stranger.send(new ListBucketsCommand({})))).name, 'InvalidAccessKeyId');
  const forger = s3Client(gw, { credentials: { accessKeyId: 'TESTACCESSKEY', secretAccessKey: 'not-the-secret' } });
  t.equal((await errorOf(forger.send(new PutObjectCommand({ Bucket: 'objs', Key: 'forged', Body: 'x' })))).name, 'SignatureDoesNotMatch');
  t.equal((await errorOf(s3.send(new HeadObjectCommand({ Bucket: 'objs', Key: 'forged' })))).$metadata.httpStatusCode, 404, 'forged write stored nothing');
  const anon = await fetch(`${gw.s3Url}/objs/empty`);
  t.equal(anon.status, 403, 'anonymous request denied');
  t.match(await anon.text(), /<Code>AccessDenied<\/Code>/);
  stranger.destroy();
  forger.destroy();
});
