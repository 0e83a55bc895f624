// Bad input through the real gateway: each is refused with the right S3
// error and stores nothing. Requests are built by hand on the wire, signed by
// the SDK's signer (chunk signatures by an independent few lines here).
import { createHash, createHmac } from 'node:crypto';
import { request } from 'node:http';
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import t from 'tap';
import { SECRET_KEY, removeDir, s3Client, startGateway, type Gateway } from '../helpers/gateway.js';
import { presign, signedHeaders } from '../helpers/sign.js';

let gw: Gateway;
let s3: S3Client;
t.before(async () => {
  gw = await startGateway();
  s3 = s3Client(gw);
  await s3.send(new CreateBucketCommand({ Bucket: 'hostile' }));
});
t.teardown(async () => {
  s3?.destroy();
  await gw?.stop();
  await removeDir(gw.dataDir);
});

interface Answer {
  status: number;
  body: string;
  code: string | undefined;
}

/** Send raw bytes; the path is used exactly as given (no normalisation). */
function send(method: string, path: string, headers: Record<string, string>, body?: Buffer | string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const url = new URL(gw.s3Url);
    const req = request({ host: url.hostname, port: url.port, method, path, headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => {
        const text = Buffer.concat(parts).toString();
        resolve({ status: res.statusCode ?? 0, body: text, code: /<Code>([^<]+)<\/Code>/.exec(text)?.[1] });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function signedSend(method: string, path: string, extra: Record<string, string>, body?: Buffer | string, payloadHash?: string): Promise<Answer> {
  const headers = await signedHeaders({ method, url: `${gw.s3Url}${path}`, headers: extra, ...(payloadHash && { payloadHash }) });
  return send(method, path, headers, body);
}

async function listed(): Promise<string[]> {
  return ((await s3.send(new ListObjectsV2Command({ Bucket: 'hostile' }))).Contents ?? []).map((c) => c.Key!);
}

const sha256 = (d: Buffer | string) => createHash('sha256').update(d).digest('hex');
const hmac = (k: Buffer | string, d: string) => createHmac('sha256', k).update(d).digest();

/** An aws-chunked body signed chunk by chunk (STREAMING-AWS4-HMAC-SHA256-PAYLOAD). */
async function chunkedUpload(key: string, chunks: Buffer[], tamper?: (i: number, sig: string) => string): Promise<Answer> {
  const path = `/hostile/${key}`;
  const decoded = chunks.reduce((n, c) => n + c.length, 0);
  const date = new Date();
  const headers = await signedHeaders(
    {
      method: 'PUT',
      url: `${gw.s3Url}${path}`,
      headers: { 'content-encoding': 'aws-chunked', 'x-amz-decoded-content-length': String(decoded) },
      payloadHash: 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
    },
    date,
  );
  const seed = /Signature=([0-9a-f]{64})/.exec(headers.authorization!)![1]!;
  const amzDate = headers['x-amz-date']!;
  const day = amzDate.slice(0, 8);
  const scope = `${day}/us-east-1/s3/aws4_request`;
  const key4 = hmac(hmac(hmac(hmac(`AWS4${SECRET_KEY}`, day), 'us-east-1'), 's3'), 'aws4_request');
  let prev = seed;
  const parts: Buffer[] = [];
  [...chunks, Buffer.alloc(0)].forEach((c, i) => {
    const toSign = ['AWS4-HMAC-SHA256-PAYLOAD', amzDate, scope, prev, sha256(''), sha256(c)].join('\n');
    let sig = createHmac('sha256', key4).update(toSign).digest('hex');
    prev = sig;
    if (tamper) sig = tamper(i, sig);
    parts.push(Buffer.from(`${c.length.toString(16)};chunk-signature=${sig}\r\n`), c, Buffer.from('\r\n'));
  });
  const body = Buffer.concat(parts);
  return send('PUT', path, { ...headers, 'content-length': String(body.length) }, body);
}

t.test('signed aws-chunked upload: accepted whole, refused with one bad chunk signature', async (t) => {
  const chunks = [Buffer.alloc(65536, 'a'), Buffer.alloc(1024, 'b')];
  const ok = await chunkedUpload('chunked-ok', chunks);
  t.equal(ok.status, 200, 'correctly signed chunks accepted');
  const head = await s3.send(new HeadObjectCommand({ Bucket: 'hostile', Key: 'chunked-ok' }));
  t.equal(head.ContentLength, 66560, 'decoded length stored');
  const bad = await chunkedUpload('chunked-bad', chunks, (i, sig) => (i === 1 ? sig.replace(/^./, (c) => (c === '0' ? '1' : '0')) : sig));
  t.equal(bad.code, 'SignatureDoesNotMatch', 'wrong second chunk signature refused');
  t.notOk((await listed()).includes('chunked-bad'), 'nothing stored');
});

t.test('trailing checksum: a wrong one is refused and stores nothing', async (t) => {
  const path = '/hostile/trailer';
  const data = Buffer.from('specimen label text');
  const mkBody = (crc: string) =>
    Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from(`\r\n0\r\nx-amz-checksum-crc32:${crc}\r\n\r\n`)]);
  const { crc32 } = await import('node:zlib');
  const good = Buffer.alloc(4);
  good.writeUInt32BE(crc32(data));
  const headers = (body: Buffer) => ({
    'content-encoding': 'aws-chunked',
    'x-amz-decoded-content-length': String(data.length),
    'x-amz-trailer': 'x-amz-checksum-crc32',
    'content-length': String(body.length),
  });
  const wrongBody = mkBody('AAAAAA==');
  const wrong = await signedSend('PUT', path, headers(wrongBody), wrongBody, 'STREAMING-UNSIGNED-PAYLOAD-TRAILER');
  t.equal(wrong.code, 'BadDigest', 'wrong CRC32 in the trailer refused');
  t.notOk((await listed()).includes('trailer'), 'nothing stored');
  const rightBody = mkBody(good.toString('base64'));
  const right = await signedSend('PUT', path, headers(rightBody), rightBody, 'STREAMING-UNSIGNED-PAYLOAD-TRAILER');
  t.equal(right.status, 200, 'right CRC32 accepted');
  const head = await s3.send(new HeadObjectCommand({ Bucket: 'hostile', Key: 'trailer', ChecksumMode: 'ENABLED' }));
  t.equal(head.ChecksumCRC32, good.toString('base64'), 'trailing checksum stored and returned');
});

t.test('payload hash, Content-MD5 and header checksums are verified', async (t) => {
  const body = 'the real body';
  const lie = await signedSend('PUT', '/hostile/sha-lie', { 'content-length': String(body.length) }, body, sha256('another body'));
  t.equal(lie.code, 'XAmzContentSHA256Mismatch');
  const md5 = await signedSend('PUT', '/hostile/md5-lie', { 'content-length': String(body.length), 'content-md5': createHash('md5').update('x').digest('base64') }, body);
  t.equal(md5.code, 'BadDigest');
  const sha = await signedSend('PUT', '/hostile/sum-lie', { 'content-length': String(body.length), 'x-amz-checksum-sha256': createHash('sha256').update('x').digest('base64') }, body);
  t.equal(sha.code, 'BadDigest');
  const signed = await signedSend('PUT', '/hostile/sha-ok', { 'content-length': String(body.length) }, body, sha256(body));
  t.equal(signed.status, 200, 'a correctly hashed signed payload is accepted');
  t.same((await listed()).filter((k) => k.endsWith('-lie')), [], 'no lie stored');
});

t.test('presigned URLs: work until they expire', async (t) => {
  await s3.send(new PutObjectCommand({ Bucket: 'hostile', Key: 'shared.txt', Body: 'public-ish' }));
  const fresh = await presign(s3, new GetObjectCommand({ Bucket: 'hostile', Key: 'shared.txt' }), 60);
  const res = await fetch(fresh);
  t.equal(res.status, 200);
  t.equal(await res.text(), 'public-ish');
  const old = await presign(s3, new GetObjectCommand({ Bucket: 'hostile', Key: 'shared.txt' }), 60, new Date(Date.now() - 120_000));
  const expired = await fetch(old);
  t.equal(expired.status, 403);
  t.match(await expired.text(), /<Code>AccessDenied<\/Code>.*expired/s);
  const tampered = await fetch(fresh.replace('shared.txt', 'other.txt'));
  t.equal(tampered.status, 403, 'a presigned URL cannot be pointed elsewhere');
});

t.test('clock skew beyond 15 minutes is refused', async (t) => {
  const path = '/hostile/skewed';
  const headers = await signedHeaders({ method: 'PUT', url: `${gw.s3Url}${path}`, headers: { 'content-length': '1' } }, new Date(Date.now() - 20 * 60_000));
  const res = await send('PUT', path, headers, 'x');
  t.equal(res.code, 'RequestTimeTooSkewed');
  t.notOk((await listed()).includes('skewed'));
});

t.test('hostile keys never reach the disk by name', async (t) => {
  const dotdot = await signedSend('PUT', '/hostile/../../etc/passwd', { 'content-length': '4' }, 'evil');
  t.equal(dotdot.status, 200, 'a ../ key is just a key');
  t.ok((await listed()).includes('../../etc/passwd'), 'stored under its literal name');
  const nul = await signedSend('PUT', '/hostile/nul%00byte', { 'content-length': '1' }, 'x');
  t.equal(nul.status, 200, 'NUL in a key is stored as data');
  const long = await signedSend('PUT', `/hostile/${encodeURIComponent('é'.repeat(513))}`, { 'content-length': '1' }, 'x');
  t.equal(long.code, 'KeyTooLongError', '1,026 bytes of unicode is too long');
  const okLong = await signedSend('PUT', `/hostile/${encodeURIComponent('é'.repeat(512))}`, { 'content-length': '1' }, 'x');
  t.equal(okLong.status, 200, '1,024 bytes of unicode is fine');
  const invalid = await send('PUT', '/hostile/bad%FFutf8', { 'content-length': '1', authorization: 'AWS4-HMAC-SHA256 Credential=x' }, 'x');
  t.equal(invalid.code, 'InvalidArgument', 'a key that is not UTF-8 is refused');
  const badPct = await send('GET', '/hostile/bad%zz', {});
  t.equal(badPct.status, 400, 'malformed percent-encoding is a clean 400');
});

t.test('XML: DOCTYPE and entities refused, malformed refused, size capped', async (t) => {
  const xxe = `<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><Delete><Object><Key>&x;</Key></Object></Delete>`;
  const r1 = await signedSend('POST', '/hostile?delete', { 'content-length': String(xxe.length) }, xxe);
  t.equal(r1.code, 'MalformedXML', 'DOCTYPE refused');
  const broken = '<Delete><Object><Key>a</Key></Object>';
  const r2 = await signedSend('POST', '/hostile?delete', { 'content-length': String(broken.length) }, broken);
  t.equal(r2.code, 'MalformedXML', 'unclosed element refused');
  const huge = `<Tagging><TagSet>${'<Tag><Key>k</Key><Value>v</Value></Tag>'.repeat(40_000)}</TagSet></Tagging>`;
  const r3 = await signedSend('PUT', '/hostile/shared.txt?tagging', { 'content-length': String(huge.length) }, huge);
  t.equal(r3.code, 'MalformedXML', 'oversized XML refused');
  t.ok((await listed()).includes('shared.txt'), 'the object the bad requests named is untouched');
});

t.test('unsupported subresources and methods answer with S3 errors', async (t) => {
  const acl = await signedSend('GET', '/hostile?acl', {});
  t.equal(acl.code, 'NotImplemented');
  const patch = await signedSend('PATCH', '/hostile/x', { 'content-length': '0' }, '');
  t.equal(patch.code, 'MethodNotAllowed', 'unknown method refused');
});
