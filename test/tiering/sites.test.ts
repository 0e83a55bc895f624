// The Site conformance suite against every backend: a local directory,
// memory, and S3Site against two real S3 servers (a second Valentine gateway
// and s3rver). Then what only a remote site can do wrong: be unreachable,
// refuse credentials, or die in the middle of a write.
import { randomBytes } from 'node:crypto';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Transform } from 'node:stream';
import { join } from 'node:path';
import { CreateBucketCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import t, { type Test } from 'tap';
import { LocalDirSite, MemorySite, S3Site, SiteRequestError, type S3SiteOptions } from '../../tiering/index.js';
import { siteConformance } from '../conformance/site-conformance.js';
import { ACCESS_KEY, SECRET_KEY, removeDir, s3Client, startGateway, tempDir, type Gateway } from '../helpers/gateway.js';

const BUCKET = 'remote-sites';
let counter = 0;
const nextPrefix = () => `run-${process.pid}-${++counter}/`;

async function remoteGateway(t: Test): Promise<Gateway> {
  const gw = await startGateway();
  t.teardown(async () => {
    await gw.stop();
    await removeDir(gw.dataDir);
  });
  const client = s3Client(gw);
  await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
  client.destroy();
  return gw;
}

function gatewaySite(gw: Pick<Gateway, 's3Url'>, extra: Partial<S3SiteOptions> = {}): S3Site {
  return new S3Site('V', { endpoint: gw.s3Url, bucket: BUCKET, prefix: nextPrefix(), region: 'us-east-1', accessKey: ACCESS_KEY, secretKey: SECRET_KEY, ...extra });
}

t.test('LocalDirSite', async (t) => {
  const dir = await tempDir();
  t.teardown(() => removeDir(dir));
  siteConformance(t, () => LocalDirSite.open('L', join(dir, String(++counter))));
});

t.test('LocalDirSite with a small-blob store', async (t) => {
  const dir = await tempDir();
  t.teardown(() => removeDir(dir));
  // 128 KiB: the suite's blobs fall on both sides of it.
  siteConformance(t, () => LocalDirSite.open('L', join(dir, String(++counter)), { smallBlobBytes: 128 * 1024 }));
});

t.test('MemorySite', async (t) => {
  siteConformance(t, async () => new MemorySite('M'));
});

t.test('S3Site → a second Valentine gateway', async (t) => {
  const gw = await remoteGateway(t);
  siteConformance(t, async () => gatewaySite(gw));
});

t.test('S3Site → s3rver', async (t) => {
  const dir = await tempDir();
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir, configureBuckets: [{ name: BUCKET, configs: [] }] });
  const { port } = (await server.run()) as { port: number };
  t.teardown(async () => {
    await server.close();
    await removeDir(dir);
  });
  siteConformance(t, async () =>
    new S3Site('R', { endpoint: `http://127.0.0.1:${port}`, bucket: BUCKET, prefix: nextPrefix(), region: 'us-east-1', accessKey: 'S3RVER', secretKey: 'S3RVER' }),
  );
});

t.test('an unreachable remote: health false, writes and reads fail promptly with a clear error', async (t) => {
  const gw = await remoteGateway(t);
  await gw.stop();
  const site = gatewaySite(gw, { prefix: 'gone/' });
  t.teardown(() => site.close());
  let started = Date.now();
  t.equal(await site.health(), false, 'health false');
  t.ok(Date.now() - started < 3000, 'health answers within its timeout');

  started = Date.now();
  const w = site.createWriter(randomBytes(16).toString('hex'));
  await w.write(randomBytes(1000));
  const err = await w.commit().then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof SiteRequestError, 'a SiteRequestError');
  const e = err as SiteRequestError;
  t.equal(e.code, 'SITE_REQUEST_FAILED');
  t.equal(e.site, 'V', 'names the site');
  t.match(e.message, /^site V: PutObject gone\/blobs\/.* failed: ECONNREFUSED .*\(after 4 attempts\)$/, `says what failed: ${e.message}`);
  t.ok(Date.now() - started < 5000, `bounded retries end promptly (${Date.now() - started} ms)`);
  await t.resolves(w.abort(), 'abort never throws, even with the remote gone');
  await t.rejects(site.open(randomBytes(16).toString('hex')), { name: 'SiteRequestError', operation: /^HeadObject / }, 'open fails rather than reporting "missing"');
  await t.rejects(site.stat(randomBytes(16).toString('hex')), { name: 'SiteRequestError' }, 'stat fails too');
});

t.test('remote refusals carry the status and S3 error code', async (t) => {
  const gw = await remoteGateway(t);
  const wrongKey = gatewaySite(gw, { secretKey: 'not-the-secret-key' });
  const noBucket = gatewaySite(gw, { bucket: 'no-such-bucket-here' });
  t.teardown(() => Promise.all([wrongKey.close(), noBucket.close()]));
  t.equal(await wrongKey.health(), false, 'bad credentials: health false');
  const w = wrongKey.createWriter(randomBytes(16).toString('hex'));
  await w.write(Buffer.from('x'));
  await t.rejects(w.commit(), { name: 'SiteRequestError', status: 403, remoteCode: 'SignatureDoesNotMatch', message: /^site V: PutObject .* HTTP 403 SignatureDoesNotMatch: / });
  t.equal(await noBucket.health(), false, 'missing bucket: health false');
  const w2 = noBucket.createWriter(randomBytes(16).toString('hex'));
  await w2.write(Buffer.from('x'));
  await t.rejects(w2.commit(), { name: 'SiteRequestError', status: 404, remoteCode: 'NoSuchBucket' });
});

t.test('a remote that dies mid-write leaves no visible blob', async (t) => {
  const dataDir = await tempDir();
  t.teardown(() => removeDir(dataDir));
  const first = await startGateway({ dataDir });
  let client = s3Client(first);
  await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
  client.destroy();
  const prefix = 'dies/';
  const site = gatewaySite(first, { prefix, retries: 1 });
  t.teardown(() => site.close());
  const kept = randomBytes(16).toString('hex');
  const keptData = randomBytes(100_000);
  const kw = site.createWriter(kept);
  await kw.write(keptData);
  await kw.commit();

  const id = randomBytes(16).toString('hex');
  const w = site.createWriter(id);
  await w.write(randomBytes(9 << 20)); // one 8 MiB part is up: a multipart upload is open on the remote
  await first.kill();
  await t.rejects(
    (async () => {
      await w.write(randomBytes(8 << 20));
      await w.commit();
    })(),
    { name: 'SiteRequestError' },
    'the write fails once the remote is gone',
  );
  await w.abort();

  const second = await startGateway({ dataDir });
  t.teardown(() => second.stop());
  const again = gatewaySite(second, { prefix });
  t.teardown(() => again.close());
  t.equal(await again.stat(id), undefined, 'the interrupted blob is not there');
  t.equal(await again.open(id), undefined, 'and cannot be opened');
  const ids: string[] = [];
  for await (const x of again.list()) ids.push(x);
  t.same(ids, [kept], 'only the blob committed before the crash is listed');
  client = s3Client(second);
  const listing = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
  client.destroy();
  t.same(
    (listing.Contents ?? []).map((o) => o.Key),
    [`${prefix}blobs/${kept.slice(0, 2)}/${kept}`],
    "the remote's own listing agrees",
  );
  const r = (await again.open(kept))!;
  t.ok((await r.read(0, keptData.length)).equals(keptData), 'the committed blob survived the crash intact');
});

/**
 * A real HTTP proxy in front of a real S3 server that misbehaves on purpose:
 * answers the first `busy` requests 503 SlowDown, or flips one byte of every
 * request body it forwards.
 */
async function faultyProxy(t: Test, target: string, fault: { busy?: number; corrupt?: boolean }): Promise<{ url: string; seen: string[] }> {
  const to = new URL(target);
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    if (fault.busy !== undefined && fault.busy-- > 0) {
      res.writeHead(503, { 'content-type': 'application/xml' });
      res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>');
      return;
    }
    const up = httpRequest({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(res);
    });
    up.on('error', () => res.destroy());
    let flipped = false;
    const flip = new Transform({
      transform(chunk: Buffer, _enc, done) {
        if (fault.corrupt && !flipped && chunk.length > 0) {
          chunk[0] = chunk[0]! ^ 0x01;
          flipped = true;
        }
        done(null, chunk);
      },
    });
    req.pipe(flip).pipe(up);
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  t.teardown(() => new Promise<void>((res) => server.close(() => res())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

t.test('a busy remote (503) is retried with backoff, a bounded number of times', async (t) => {
  const gw = await remoteGateway(t);
  const proxy = await faultyProxy(t, gw.s3Url, { busy: 2 });
  const site = gatewaySite({ s3Url: proxy.url });
  t.teardown(() => site.close());
  const id = randomBytes(16).toString('hex');
  const data = randomBytes(5000);
  const w = site.createWriter(id);
  await w.write(data);
  await w.commit();
  t.equal(proxy.seen.length, 3, 'two refusals, then the PUT went through');
  t.ok((await (await site.open(id))!.read(0, 5000)).equals(data), 'and the blob is whole');

  const impatient = gatewaySite({ s3Url: (await faultyProxy(t, gw.s3Url, { busy: 10 })).url }, { retries: 1 });
  t.teardown(() => impatient.close());
  const w2 = impatient.createWriter(randomBytes(16).toString('hex'));
  await w2.write(data);
  await t.rejects(w2.commit(), { name: 'SiteRequestError', status: 503, remoteCode: 'SlowDown', message: /\(after 2 attempts\)$/ }, 'gives up after its retries');
});

t.test('bytes damaged on the way are refused by the remote and never stored', async (t) => {
  const gw = await remoteGateway(t);
  const proxy = await faultyProxy(t, gw.s3Url, { corrupt: true });
  const prefix = 'damaged/';
  const site = gatewaySite({ s3Url: proxy.url }, { prefix, retries: 0 });
  const direct = gatewaySite(gw, { prefix });
  t.teardown(() => Promise.all([site.close(), direct.close()]));
  for (const size of [10_000, 9 << 20]) {
    const id = randomBytes(16).toString('hex');
    const w = site.createWriter(id);
    const err = await (async () => {
      await w.write(randomBytes(size));
      await w.commit();
    })().then(
      () => undefined,
      (e: unknown) => e as SiteRequestError,
    );
    t.equal(err?.status, 400, `${size} B: the remote refused the damaged body`);
    t.match(err?.remoteCode, /^(BadDigest|XAmzContentSHA256Mismatch)$/, `with ${err?.remoteCode}`);
    await w.abort();
    t.equal(await direct.stat(id), undefined, 'nothing was stored');
  }
  const listing: string[] = [];
  for await (const id of direct.list()) listing.push(id);
  t.same(listing, [], 'nothing listed');
});

t.test('a remote that accepts connections but never answers: timeouts, never a hang', async (t) => {
  const sockets = new Set<Socket>();
  const silent = createServer(() => {}).on('connection', (s) => sockets.add(s));
  await new Promise<void>((res) => silent.listen(0, '127.0.0.1', res));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((res) => silent.close(() => res()));
  });
  const site = gatewaySite({ s3Url: `http://127.0.0.1:${(silent.address() as AddressInfo).port}` }, { headersTimeoutMs: 300, healthTimeoutMs: 500, retries: 1 });
  t.teardown(() => site.close());
  let started = Date.now();
  t.equal(await site.health(), false, 'health false');
  t.ok(Date.now() - started < 1500, `within the health timeout (${Date.now() - started} ms)`);
  started = Date.now();
  const w = site.createWriter(randomBytes(16).toString('hex'));
  await w.write(randomBytes(1000));
  await t.rejects(w.commit(), { name: 'SiteRequestError', message: /UND_ERR_HEADERS_TIMEOUT.*\(after 2 attempts\)$/ });
  t.ok(Date.now() - started < 3000, `the write failed in ${Date.now() - started} ms`);
  await t.rejects(site.stat(randomBytes(16).toString('hex')), { name: 'SiteRequestError' }, 'a stat fails the same way');
});
