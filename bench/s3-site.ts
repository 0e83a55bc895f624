// S3Site benchmark: a site on a second Valentine gateway (a child process on
// loopback), driven the way the engine drives a site: blobs written in 1 MiB
// chunks and committed (64 MiB → eight 8 MiB multipart parts), read back in
// 1 MiB ranged reads; plus 4 KiB blobs written and read by 16 writers at once.
//
//   node dist/bench/s3-site.js
//
// stdout: one JSON line per case (name, samples, median, p99, throughput,
// node version, cpu). Progress goes to stderr.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { S3Site } from '../tiering/index.js';
import { ACCESS_KEY, KiB, MiB, REGION, SECRET_KEY, log, round, runConcurrent, startGateway, stats, type RunResult } from './lib.js';

const ENV = { node: process.version, cpu: cpus()[0]?.model ?? 'unknown' };
const newId = () => randomBytes(16).toString('hex');

function emit(name: string, r: RunResult, blobBytes: number, concurrency: number, large: boolean): void {
  const st = stats(r);
  const secs = r.wallMs / 1000;
  const throughput = large ? round((st.samples * blobBytes) / MiB / secs, 1) : round(st.samples / secs, 1);
  process.stdout.write(
    `${JSON.stringify({ name, blob_bytes: blobBytes, concurrency, samples: st.samples, median: st.median_ms, p99: st.p99_ms, throughput, throughput_unit: large ? 'MiB/s' : 'ops/s', ...ENV })}\n`,
  );
}

async function put(site: S3Site, id: string, data: Buffer): Promise<void> {
  const w = site.createWriter(id);
  for (let off = 0; off < data.length; off += MiB) await w.write(data.subarray(off, off + MiB));
  await w.commit();
}

async function get(site: S3Site, id: string, size: number): Promise<void> {
  const r = await site.open(id);
  if (!r) throw new Error(`blob ${id} missing`);
  let got = 0;
  for (let off = 0; off < size; off += MiB) got += (await r.read(off, MiB)).length;
  await r.close();
  if (got !== size) throw new Error(`read ${got} of ${size} bytes`);
}

const dir = await mkdtemp(join(tmpdir(), 'valentine-bench-s3site-'));
const gw = await startGateway(dir);
try {
  const client = new S3Client({ endpoint: gw.s3Url, region: REGION, forcePathStyle: true, credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY } });
  await client.send(new CreateBucketCommand({ Bucket: 'bench' }));
  client.destroy();
  const site = new S3Site('bench', { endpoint: gw.s3Url, bucket: 'bench', prefix: 'b/', region: REGION, accessKey: ACCESS_KEY, secretKey: SECRET_KEY });

  const large = randomBytes(64 * MiB);
  const largeIds = Array.from({ length: 8 }, newId);
  log('64 MiB put');
  emit('s3site-put-64MiB', await runConcurrent(1, largeIds.length, 120_000, (i) => put(site, largeIds[i]!, large)), large.length, 1, true);
  log('64 MiB get');
  emit('s3site-get-64MiB', await runConcurrent(1, largeIds.length, 120_000, (i) => get(site, largeIds[i]!, large.length)), large.length, 1, true);

  const small = randomBytes(4 * KiB);
  const smallIds = Array.from({ length: 800 }, newId);
  log('4 KiB put');
  emit('s3site-put-4KiB', await runConcurrent(16, smallIds.length, 60_000, (i) => put(site, smallIds[i]!, small)), small.length, 16, false);
  log('4 KiB get');
  emit('s3site-get-4KiB', await runConcurrent(16, smallIds.length, 60_000, (i) => get(site, smallIds[i]!, small.length)), small.length, 16, false);
  await site.close();
} finally {
  await gw.stop();
  await rm(dir, { recursive: true, force: true });
}
