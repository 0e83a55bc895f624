// Tiering end to end through S3, against a real gateway with local sites:
// objects go replicated → coded → stub on short timers, the bytes on disk
// match the geometry, every object reads back byte-identical (whole and in
// ranges) from any state, every single loss is survived and counted, two
// lost shards fail cleanly, a site outage pauses coding without losing
// replicas, and a full hot tier evicts least recently written first.
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, RestoreObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import t from 'tap';
import { planStripes, shardBytes } from '../../tiering/erasure/layout.js';
import { ACCESS_KEY, MAIN, SECRET_KEY, removeDir, s3Client, startGateway, tempDir, type Gateway } from '../helpers/gateway.js';
import { signedHeaders } from '../helpers/sign.js';
import { basicAuth, blobSizes, blobsOn, forceTier, headRaw, tierOf, waitFor, waitForTier } from '../helpers/tiers.js';

const exec = promisify(execFile);
const PIECE = 65536; // stripe = 2 × 64 KiB of object bytes
const STRIPE = 2 * PIECE;

// These tests read, count and damage blob files on disk, so every blob is kept
// as a file (no small-blob store); test/gateway/small-blobs.test.ts covers the store.
async function gatewayWith(t: { teardown(fn: () => Promise<void>): void }, tiering: Record<string, unknown>, args: string[] = []): Promise<{ gw: Gateway; s3: S3Client }> {
  const dir = await tempDir();
  const config = join(dir, 'config.json');
  await writeFile(config, JSON.stringify({ engine: { smallBlobBytes: 0 }, tiering: { stripeSize: PIECE, workerInterval: '100ms', ...tiering } }));
  const gw = await startGateway({ dataDir: join(dir, 'data'), args: ['--config', config, ...args] });
  const s3 = s3Client(gw);
  t.teardown(async () => {
    for (const l of gw.logs) if (!l.includes('"level":30')) process.stderr.write(`gateway: ${l.slice(0, 400)}\n`);
    s3.destroy();
    await gw.stop();
    await removeDir(dir);
  });
  return { gw, s3 };
}

async function openIssues(gw: Gateway): Promise<number> {
  const res = await fetch(`${gw.adminUrl}/flows/issues?state=open`, { headers: { authorization: basicAuth } });
  return ((await res.json()) as { issues: unknown[] }).issues.length;
}

async function getBytes(s3: S3Client, bucket: string, key: string, range?: string): Promise<Buffer> {
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, ...(range && { Range: range }) }));
  return Buffer.from(await res.Body!.transformToByteArray());
}

async function metric(gw: Gateway, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

async function checksumFailures(gw: Gateway): Promise<number> {
  const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('valentine_checksum_failures_total{'))
    .reduce((n, l) => n + Number(l.split(' ')[1]), 0);
}

t.test('lifecycle: replicated → coded → stub on timers, geometry on disk, reads from every state', async (t) => {
  const { gw, s3 } = await gatewayWith(t, {}, ['--code-after', '2s', '--stub-after', '40s']);
  await s3.send(new CreateBucketCommand({ Bucket: 'tiers' }));
  const sizes = [0, 1, STRIPE, STRIPE - 1, STRIPE + 1, 5 * 2 ** 20, 100 * 2 ** 20];
  const objects = new Map<string, Buffer>();
  for (const size of sizes) {
    const key = `size-${size}`;
    const data = randomBytes(size);
    objects.set(key, data);
    await s3.send(new PutObjectCommand({ Bucket: 'tiers', Key: key, Body: data }));
    t.equal(await tierOf(gw, 'tiers', key), 'replicated', `${key} starts replicated`);
  }
  const keys = [...objects.keys()];

  await waitForTier(gw, 'tiers', keys, 'coded');
  t.pass('every object coded within seconds of its code-after time');
  const shardSizes = sizes.map((s) => shardBytes(planStripes(s, { k: 2, maxPieceSize: PIECE }))).sort((a, b) => a - b);
  for (const site of ['A', 'B', 'C']) t.same(await blobSizes(gw.dataDir, site), shardSizes, `site ${site}: replicas gone, one shard per object of the planned size`);
  t.same(await blobSizes(gw.dataDir, 'hot'), [...sizes].sort((a, b) => a - b), 'hot copies kept while coded');
  const stored = (await Promise.all(['A', 'B', 'C'].map((s) => blobSizes(gw.dataDir, s)))).flat().reduce((a, b) => a + b, 0);
  const logical = sizes.reduce((a, b) => a + b, 0);
  t.ok(stored <= logical * 1.5 + 64 * 1024, `${stored} bytes on the three sites for ${logical} bytes of objects (1.5x)`);
  t.ok((await metric(gw, 'valentine_protection_lag_seconds_count')) >= sizes.length, 'protection lag observed per object');

  await waitForTier(gw, 'tiers', keys, 'stub');
  t.same(await blobSizes(gw.dataDir, 'hot'), [], 'stubs have no hot copy');
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: 'tiers' }));
  t.ok(listed.Contents!.every((c) => c.StorageClass === 'GLACIER_IR' && c.Size === objects.get(c.Key!)!.length), 'stubs list with their real size and the stub storage class');

  for (const [key, data] of objects) {
    if (data.length === 0) continue;
    const n = data.length;
    const ranges: [string, number, number][] = [
      ['bytes=1-99', 1, 100],
      [`bytes=${n - 1}-`, n - 1, n],
      ['bytes=-5', Math.max(0, n - 5), n],
    ];
    if (n > STRIPE + 20) ranges.push([`bytes=${STRIPE - 10}-${STRIPE + 9}`, STRIPE - 10, STRIPE + 10], [`bytes=${STRIPE}-${2 * STRIPE - 1}`, STRIPE, Math.min(n, 2 * STRIPE)]);
    if (n > 10 * STRIPE) ranges.push([`bytes=${3 * STRIPE + 5}-${7 * STRIPE + 2}`, 3 * STRIPE + 5, 7 * STRIPE + 3]);
    for (const [header, start, end] of ranges.filter(([, start]) => start < n)) {
      t.ok((await getBytes(s3, 'tiers', key, header)).equals(data.subarray(start, end)), `${key} ${header}`);
    }
    t.ok((await getBytes(s3, 'tiers', key)).equals(data), `${key} whole read byte-identical`);
  }
  await waitForTier(gw, 'tiers', keys.filter((k) => objects.get(k)!.length > 0), 'coded');
  t.pass('reading stubs recalled them: coded again, with hot copies');
  t.ok((await metric(gw, 'valentine_recall_first_byte_seconds_count', 'path="healthy"')) >= 1, 'recall latency observed');
});

t.test('every single loss in every state is survived; two lost shards fail cleanly', async (t) => {
  const { gw, s3 } = await gatewayWith(t, {});
  await s3.send(new CreateBucketCommand({ Bucket: 'loss' }));
  const sites = ['hot', 'A', 'B', 'C'];
  for (const state of ['replicated', 'coded', 'stub'] as const) {
    for (const site of sites) {
      for (const how of ['deleted', 'corrupt'] as const) {
        const key = `${state}/${site}-${how}`;
        const data = randomBytes(3 * STRIPE + 777);
        const before = new Set((await Promise.all(sites.map((s) => blobsOn(gw.dataDir, s)))).flat().map((b) => b.path));
        await s3.send(new PutObjectCommand({ Bucket: 'loss', Key: key, Body: data }));
        if (state !== 'replicated') t.equal((await forceTier(gw, state === 'coded' ? 'code' : 'stub', 'loss', key)).body.changed, 1, `${key}: forced ${state}`);
        t.equal(await tierOf(gw, 'loss', key), state);
        const mine = (await blobsOn(gw.dataDir, site)).filter((b) => !before.has(b.path));
        if (mine.length === 0) {
          t.ok(state !== 'replicated' ? site === 'hot' && state === 'stub' : site === 'C', `${key}: ${site} holds nothing of it in this state`);
          continue;
        }
        t.equal(mine.length, 1, `${key}: one blob of it on ${site}`);
        const blob = mine[0]!;
        if (how === 'deleted') await rm(blob.path);
        else {
          const buf = await readFile(blob.path);
          buf[Math.floor(buf.length / 2)] = buf[Math.floor(buf.length / 2)]! ^ 0xff;
          await writeFile(blob.path, buf);
        }
        const failures = await checksumFailures(gw);
        t.ok((await getBytes(s3, 'loss', key)).equals(data), `${key}: read byte-identical`);
        // The healthy path reads hot (while there is one), else data shards on A and B; C (parity) only when they fail.
        const onPath = state === 'stub' ? site === 'A' || site === 'B' : site === 'hot';
        if (onPath) t.ok((await checksumFailures(gw)) > failures, `${key}: damage counted`);
        // FLOWS repairs what the read found in the background; let it finish, so
        // the blob it writes back is not mistaken for one of the next object's.
        await waitFor(`${key}: repair settled`, async () => (await openIssues(gw)) === 0);
      }
    }
  }

  // Each site directory entirely gone: everything still reads.
  const everything = (await s3.send(new ListObjectsV2Command({ Bucket: 'loss' }))).Contents!.map((c) => c.Key!);
  const fresh = new Map<string, Buffer>();
  for (const state of ['replicated', 'coded', 'stub']) {
    const data = randomBytes(2 * STRIPE + 5);
    await s3.send(new PutObjectCommand({ Bucket: 'loss', Key: `whole/${state}`, Body: data }));
    if (state !== 'replicated') await forceTier(gw, state === 'coded' ? 'code' : 'stub', 'loss', `whole/${state}`);
    fresh.set(`whole/${state}`, data);
  }
  for (const site of ['A', 'B', 'C']) {
    const dir = join(gw.dataDir, 'sites', site);
    await rename(dir, `${dir}.away`);
    for (const [key, data] of fresh) {
      // A read of a stub recalls it into the hot tier afterwards; put it back to a stub for the next site.
      if (key === 'whole/stub') await waitFor('no recall running', async () => !(await headRaw(gw, 'loss', key)).get('x-amz-restore')?.includes('"true"'));
      if (key === 'whole/stub' && (await tierOf(gw, 'loss', key)) !== 'stub') await forceTier(gw, 'stub', 'loss', key);
      t.ok((await getBytes(s3, 'loss', key)).equals(data), `site ${site} gone: ${key} (${await tierOf(gw, 'loss', key)}) reads back`);
    }
    for (const key of everything) await getBytes(s3, 'loss', key); // and nothing else fails
    await rename(`${dir}.away`, dir);
  }

  // Two of three shards of a stub lost: a clean S3 error with a request id, never wrong bytes.
  const data = randomBytes(STRIPE + 3);
  const before = new Set((await Promise.all(['A', 'B'].map((s) => blobsOn(gw.dataDir, s)))).flat().map((b) => b.path));
  await s3.send(new PutObjectCommand({ Bucket: 'loss', Key: 'two-lost', Body: data }));
  await forceTier(gw, 'stub', 'loss', 'two-lost');
  for (const b of (await Promise.all(['A', 'B'].map((s) => blobsOn(gw.dataDir, s)))).flat()) if (!before.has(b.path)) await rm(b.path);
  const url = `${gw.s3Url}/loss/two-lost`;
  const res = await fetch(url, { headers: await signedHeaders({ method: 'GET', url }) });
  const body = await res.text();
  t.equal(res.status, 500, 'GET answers 500');
  t.match(body, /<Code>InternalError<\/Code>/, 'an S3 InternalError document');
  t.match(body, /<RequestId>[0-9A-F]{16}<\/RequestId>/, 'with a request id');
});

t.test('RestoreObject, tier headers, storage class and the valentine tier command', async (t) => {
  const { gw, s3 } = await gatewayWith(t, {});
  await s3.send(new CreateBucketCommand({ Bucket: 'restore' }));
  const data = randomBytes(20 * STRIPE);
  for (const key of ['scans/a.tif', 'scans/b.tif', 'labels/c.jpg']) await s3.send(new PutObjectCommand({ Bucket: 'restore', Key: key, Body: data }));
  const cli = (...args: string[]) =>
    exec(process.execPath, [MAIN, 'tier', ...args, '--admin', gw.adminUrl], { env: { ...process.env, VALENTINE_ACCESS_KEY: ACCESS_KEY, VALENTINE_SECRET_KEY: SECRET_KEY } });
  t.match((await cli('stub', 'restore/scans/')).stdout, /2 matched, 2 changed, 0 failed/, 'a prefix stubbed through the CLI');
  t.equal(await tierOf(gw, 'restore', 'labels/c.jpg'), 'replicated', 'outside the prefix: untouched');
  t.match((await cli('code', 'restore/labels/c.jpg')).stdout, /1 matched, 1 changed/, 'one object coded through the CLI');
  t.equal(await tierOf(gw, 'restore', 'labels/c.jpg'), 'coded');
  await t.rejects(cli('recall', 'nosuchbucket'), /404/, 'an unknown bucket is a clear error');

  const head = await s3.send(new HeadObjectCommand({ Bucket: 'restore', Key: 'scans/a.tif' }));
  t.equal(head.StorageClass, 'GLACIER_IR', 'HEAD shows the stub storage class');
  t.equal(head.ContentLength, data.length, 'and the real size');
  const restored = await s3.send(new RestoreObjectCommand({ Bucket: 'restore', Key: 'scans/a.tif', RestoreRequest: { Days: 1 } }));
  t.equal(restored.$metadata.httpStatusCode, 202, 'RestoreObject on a stub: 202 Accepted');
  await waitForTier(gw, 'restore', ['scans/a.tif'], 'coded');
  const after = await headRaw(gw, 'restore', 'scans/a.tif');
  t.match(after.get('x-amz-restore') ?? '', /ongoing-request="false", expiry-date=".+GMT"/, 'x-amz-restore shows the restore done');
  t.equal((await s3.send(new RestoreObjectCommand({ Bucket: 'restore', Key: 'scans/a.tif' }))).$metadata.httpStatusCode, 200, 'restoring a hot object: 200');
  t.ok((await getBytes(s3, 'restore', 'scans/a.tif')).equals(data), 'restored object reads back');
  t.ok((await getBytes(s3, 'restore', 'scans/b.tif')).equals(data), 'a stub reads without a restore');

  const unauth = await fetch(`${gw.adminUrl}/admin/tier/stub`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"bucket":"restore"}' });
  t.equal(unauth.status, 401, 'the admin route needs credentials');
  const wrong = await fetch(`${gw.adminUrl}/admin/tier/stub`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: basicAuth.slice(0, -4) + 'AAAA' },
    body: '{"bucket":"restore"}',
  });
  t.equal(wrong.status, 401, 'a wrong secret is refused');
  t.equal(await tierOf(gw, 'restore', 'labels/c.jpg'), 'coded', 'nothing changed by refused calls');
});

t.test('a site outage pauses coding, keeps replicas, and the backlog drains when it returns', async (t) => {
  const { gw, s3 } = await gatewayWith(t, {}, ['--code-after', '1s', '--stub-after', '1h']);
  await s3.send(new CreateBucketCommand({ Bucket: 'outage' }));
  const cDir = join(gw.dataDir, 'sites', 'C');
  await rename(cDir, `${cDir}.away`);
  const objects = new Map<string, Buffer>();
  for (let i = 0; i < 3; i++) {
    const data = randomBytes(STRIPE * 3 + i);
    objects.set(`o${i}`, data);
    await s3.send(new PutObjectCommand({ Bucket: 'outage', Key: `o${i}`, Body: data }));
  }
  await waitFor('backlog to show', async () => (await metric(gw, 'valentine_tier_backlog')) >= 3);
  t.equal(await metric(gw, 'valentine_site_up', 'site="C"'), 0, 'site C reported down');
  const ready = (await (await fetch(`${gw.adminUrl}/readyz`)).json()) as { sites: Record<string, boolean> };
  t.equal(ready.sites.C, false, '/readyz shows site C down');
  for (const [key, data] of objects) {
    t.equal(await tierOf(gw, 'outage', key), 'replicated', `${key} stays replicated`);
    t.ok((await getBytes(s3, 'outage', key)).equals(data), `${key} readable`);
  }
  t.equal((await blobSizes(gw.dataDir, 'B')).length, 3, 'replicas on B kept');
  await rename(`${cDir}.away`, cDir);
  await waitForTier(gw, 'outage', [...objects.keys()], 'coded');
  t.pass('site C back: the backlog drained on its own');
  await waitFor('backlog gauge to clear', async () => (await metric(gw, 'valentine_tier_backlog')) === 0);
  for (const [key, data] of objects) t.ok((await getBytes(s3, 'outage', key)).equals(data), `${key} readable once coded`);
});

t.test('hot tier over its high watermark: least recently used hot copies are evicted first', async (t) => {
  const size = 400_000;
  const { gw, s3 } = await gatewayWith(t, { hot: { maxBytes: 1_000_000, highWatermark: 0.9, lowWatermark: 0.5 } }, ['--code-after', '1h', '--stub-after', '1h']);
  await s3.send(new CreateBucketCommand({ Bucket: 'full' }));
  const data = randomBytes(size);
  for (const key of ['first', 'second', 'third']) {
    await s3.send(new PutObjectCommand({ Bucket: 'full', Key: key, Body: data }));
    await forceTier(gw, 'code', 'full', key);
    await new Promise((r) => setTimeout(r, 20)); // distinct write times
  }
  await waitFor('eviction down to the low watermark', async () => (await blobSizes(gw.dataDir, 'hot')).length === 1);
  t.equal(await tierOf(gw, 'full', 'first'), 'stub', 'oldest evicted');
  t.equal(await tierOf(gw, 'full', 'second'), 'stub', 'next oldest evicted');
  t.equal(await tierOf(gw, 'full', 'third'), 'coded', 'newest kept: 400 KB is under the low watermark of 500 KB');
  t.ok((await getBytes(s3, 'full', 'first')).equals(data), 'a stub reads');
  await waitForTier(gw, 'full', ['first'], 'coded');
  t.pass('and is written back while its bytes fit under the high watermark (800 KB of 900 KB)');
  t.ok((await getBytes(s3, 'full', 'second')).equals(data), 'another stub reads under pressure');
  await new Promise((r) => setTimeout(r, 500));
  t.equal(await tierOf(gw, 'full', 'second'), 'stub', 'but is not written back: 1.2 MB would pass the high watermark');
});
