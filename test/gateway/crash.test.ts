// Crash safety: SIGKILL the gateway with 20 uploads in flight. Acknowledged
// uploads read back byte-identical after restart; the others are not listed;
// no temp file survives the next start. A client that walks away mid-upload
// leaves nothing visible either.
import { randomBytes } from 'node:crypto';
import { request, type ClientRequest } from 'node:http';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import t from 'tap';
import { removeDir, s3Client, startGateway, tempDir } from '../helpers/gateway.js';
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

t.test('SIGKILL with 20 uploads in flight', async (t) => {
  const dataDir = await tempDir();
  t.teardown(() => removeDir(dataDir));
  let gw = await startGateway({ dataDir });
  let s3 = s3Client(gw);
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

  gw = await startGateway({ dataDir });
  s3 = s3Client(gw);
  t.teardown(async () => {
    s3.destroy();
    await gw.stop();
  });
  t.same(await tmpFiles(dataDir), [], 'no temp files after start');
  const listed = (await s3.send(new ListObjectsV2Command({ Bucket: 'crash' }))).Contents?.map((c) => c.Key) ?? [];
  t.same(listed.sort(), Array.from({ length: 10 }, (_, i) => `obj-${i}`).sort(), 'exactly the acknowledged uploads are listed');
  for (let i = 0; i < 10; i++) {
    const got = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: 'crash', Key: `obj-${i}` }))).Body!.transformToByteArray());
    t.ok(got.equals(bodies[i]!), `obj-${i} reads back byte-identical`);
  }
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
