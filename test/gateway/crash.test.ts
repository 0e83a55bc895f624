// Crash safety: SIGKILL the gateway with 20 uploads in flight. Acknowledged
// uploads read back byte-identical after restart; the others are not listed;
// no temp file survives the next start. The same for a stream of small PUTs
// (the small-blob stores). A client that walks away mid-upload leaves
// nothing visible either.
import { randomBytes } from 'node:crypto';
import { request, type ClientRequest } from 'node:http';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import t, { type Test } from 'tap';
import { removeDir, s3Client, startGateway, tempDir, type Gateway } from '../helpers/gateway.js';
import { signedHeaders } from '../helpers/sign.js';

// Half a body (2 MiB) is past the 1 MiB a site keeps in memory, so an unfinished
// upload has begun its temp files by the time of the kill.
const SIZE = 4 * 1024 * 1024;

/** Start a PUT whose body is sent in two halves; the second half only when asked. */
async function startUpload(base: string, key: string, data: Buffer) {
  const url = `${base}/crash/${key}`;
  const headers = await signedHeaders({ method: 'PUT', url, headers: { 'content-length': String(data.length) } });
  let req!: ClientRequest;
  const response = new Promise<number>((resolve, reject) => {
    req = request(url, { method: 'PUT', headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
  });
  response.catch(() => undefined);
  req.write(data.subarray(0, data.length / 2));
  return { finish: () => req.end(data.subarray(data.length / 2)), response, abort: () => req.destroy() };
}

async function tmpFiles(dataDir: string): Promise<string[]> {
  const out: string[] = [];
  for (const site of ['hot', 'sites/A', 'sites/B']) {
    out.push(...(await readdir(join(dataDir, site, 'tmp'))).map((f) => `${site}/${f}`));
  }
  return out;
}

/** A gateway on `dataDir` and its client, both ended at teardown (a killed one included). */
async function gatewayOn(t: Test, dataDir: string): Promise<{ gw: Gateway; s3: S3Client }> {
  const gw = await startGateway({ dataDir });
  const s3 = s3Client(gw);
  t.teardown(async () => {
    s3.destroy();
    await gw.stop();
  });
  return { gw, s3 };
}

t.test('SIGKILL with 20 uploads in flight', async (t) => {
  const dataDir = await tempDir();
  t.teardown(() => removeDir(dataDir));
  let { gw, s3 } = await gatewayOn(t, dataDir);
  await s3.send(new CreateBucketCommand({ Bucket: 'crash' }));
  const bodies = Array.from({ length: 20 }, () => randomBytes(SIZE));
  const uploads = await Promise.all(bodies.map((b, i) => startUpload(gw.s3Url, `obj-${i}`, b)));
  // Half are finished and acknowledged; the other half are mid-body at the kill.
  for (let i = 0; i < 10; i++) uploads[i]!.finish();
  const acked = await Promise.all(uploads.slice(0, 10).map((u) => u.response));
  t.same(acked, Array(10).fill(200), 'ten uploads acknowledged');
  t.ok((await tmpFiles(dataDir)).length > 0, 'the unfinished uploads have temp files at the kill');
  await gw.kill();
  uploads.slice(10).forEach((u) => u.abort());
  s3.destroy();

  ({ gw, s3 } = await gatewayOn(t, dataDir));
  t.same(await tmpFiles(dataDir), [], 'no temp files after start');
  const listed = (await s3.send(new ListObjectsV2Command({ Bucket: 'crash' }))).Contents?.map((c) => c.Key) ?? [];
  t.same(listed.sort(), Array.from({ length: 10 }, (_, i) => `obj-${i}`).sort(), 'exactly the acknowledged uploads are listed');
  for (let i = 0; i < 10; i++) {
    const got = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: 'crash', Key: `obj-${i}` }))).Body!.transformToByteArray());
    t.ok(got.equals(bodies[i]!), `obj-${i} reads back byte-identical`);
  }
});

t.test('SIGKILL during a stream of small PUTs: every acknowledged object reads back, nothing listed is damaged', async (t) => {
  const dataDir = await tempDir();
  t.teardown(() => removeDir(dataDir));
  let { gw, s3 } = await gatewayOn(t, dataDir);
  await s3.send(new CreateBucketCommand({ Bucket: 'crash' }));
  // Small objects go to the sites' small-blob stores, many sharing one synced write.
  const bodies = new Map<string, Buffer>();
  const acked: string[] = [];
  let stop = false;
  const writer = async (w: number) => {
    for (let i = 0; !stop; i++) {
      const key = `small-${w}-${i}`;
      const body = randomBytes(1 + ((w * 7919 + i * 104729) % 20_000));
      bodies.set(key, body);
      const ok = await s3.send(new PutObjectCommand({ Bucket: 'crash', Key: key, Body: body })).then(() => true, () => false);
      if (ok && !stop) acked.push(key);
    }
  };
  const writers = Array.from({ length: 16 }, (_, w) => writer(w));
  const deadline = Date.now() + 30_000;
  while (acked.length < 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.ok(acked.length >= 200, `${acked.length} small PUTs acknowledged before the kill`);
  const ackedAtKill = acked.length;
  stop = true;
  await gw.kill();
  await Promise.all(writers);
  s3.destroy();

  ({ gw, s3 } = await gatewayOn(t, dataDir));
  const listed = new Set<string>();
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: 'crash', ContinuationToken: token }));
    for (const c of page.Contents ?? []) listed.add(c.Key!);
    token = page.NextContinuationToken;
  } while (token);
  t.ok(acked.slice(0, ackedAtKill).every((k) => listed.has(k)), `all ${ackedAtKill} acknowledged objects listed`);
  let whole = 0;
  for (const key of listed) {
    const got = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: 'crash', Key: key }))).Body!.transformToByteArray());
    if (got.equals(bodies.get(key)!)) whole++;
  }
  t.equal(whole, listed.size, `every one of the ${listed.size} listed objects reads back byte-identical`);
});

t.test('a client that disconnects mid-upload leaves nothing', async (t) => {
  const gw = await startGateway();
  const s3 = s3Client(gw);
  t.teardown(async () => {
    s3.destroy();
    await gw.stop();
    await removeDir(gw.dataDir);
  });
  await s3.send(new CreateBucketCommand({ Bucket: 'crash' }));
  const up = await startUpload(gw.s3Url, 'walked-away', randomBytes(SIZE));
  await new Promise((r) => setTimeout(r, 200));
  up.abort();
  // The gateway notices the reset and removes the partial copies.
  let left: string[] = [];
  for (let i = 0; i < 50; i++) {
    left = await tmpFiles(gw.dataDir);
    if (left.length === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  t.same(left, [], 'temp files removed once the client is gone');
  const listed = (await s3.send(new ListObjectsV2Command({ Bucket: 'crash' }))).Contents ?? [];
  t.same(listed, [], 'nothing visible');
});
