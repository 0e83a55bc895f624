// Recall benchmark: stubs of 1 MiB, 100 MiB and 1 GiB read back over S3 —
// time to first byte and to last byte, p50 and p99 over 20 recalls each —
// with all sites healthy and with site A (a data shard) gone, so every stripe
// is rebuilt from parity. Also the coding throughput of the engine (the same
// codeObject the policy worker runs), per object size.
//
//   node dist/bench/recall.js [--recalls N] [--sizes 1,100,1024]   (sizes in MiB)
//
// The hot tier is given a 1-byte budget so a read never writes the object
// back: every GET is a real recall from shards. One JSON line per case.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ACCESS_KEY, MiB, S3Bench, SECRET_KEY, Signer, log, percentile, round, startGateway, type GatewayProc } from './lib.js';

const ENV = { node: process.version, cpu: cpus()[0]?.model ?? 'unknown' };
const TARGETS = { recall_100mib_degraded_p99_ms: 2000, first_byte_p99_ms: 100, coding_mb_s: 300 };

function emit(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ ...line, ...ENV })}\n`);
}

async function force(gw: GatewayProc, action: 'code' | 'stub', bucket: string, path: string): Promise<void> {
  const res = await fetch(`${gw.adminUrl}/admin/tier/${action}`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${ACCESS_KEY}:${SECRET_KEY}`).toString('base64')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ bucket, path }),
  });
  const out = (await res.json()) as { matched: number; changed: number };
  // The worker may stub first: the hot tier's 1-byte budget is always over its watermark.
  if (res.status !== 200 || out.matched !== 1 || (action === 'code' && out.changed !== 1)) throw new Error(`${action} ${path}: ${res.status} ${JSON.stringify(out)}`);
}

/** One GET: ms to the first body byte and to the last; the length must be right. */
async function recallOnce(client: S3Bench, signer: Signer, path: string, size: number): Promise<{ first: number; last: number }> {
  const t0 = performance.now();
  const res = await client.pool.request({ method: 'GET', path, headers: { ...signer.sign('GET', client.host, path, '') } });
  if (res.statusCode !== 200) throw new Error(`GET ${path}: ${res.statusCode} ${(await res.body.text()).slice(0, 200)}`);
  let first = NaN;
  let n = 0;
  for await (const chunk of res.body) {
    if (n === 0) first = performance.now() - t0;
    n += (chunk as Buffer).length;
  }
  if (n !== size) throw new Error(`GET ${path}: ${n} bytes, expected ${size}`);
  return { first, last: performance.now() - t0 };
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { recalls: { type: 'string', default: '20' }, sizes: { type: 'string', default: '1,100,1024' } } });
  const recalls = Number(values.recalls);
  const sizes = values.sizes!.split(',').map((s) => Number(s) * MiB);
  const tmp = await mkdtemp(join(tmpdir(), 'valentine-recall-'));
  const config = join(tmp, 'config.json');
  await writeFile(config, JSON.stringify({ tiering: { hot: { maxBytes: 1, highWatermark: 0.9, lowWatermark: 0.5 } } }));
  const gw = await startGateway(join(tmp, 'data'), ['--config', config, '--code-after', '30d', '--stub-after', '30d']);
  const signer = new Signer(ACCESS_KEY, SECRET_KEY);
  const client = new S3Bench(gw.s3Url, signer, 4);
  const summary: Record<string, unknown> = { name: 'recall-summary', targets: TARGETS };
  try {
    await client.createBucket('recall');
    for (const size of sizes) {
      const path = `/recall/obj-${size}`;
      log(`PUT ${size / MiB} MiB`);
      const data = randomBytes(size);
      await client.put(path, data);
      client.assertNoErrors('PUT');
      const t0 = performance.now();
      await force(gw, 'code', 'recall', path.slice(8));
      const codeMs = performance.now() - t0;
      emit({ name: 'coding', object_bytes: size, samples: 1, median_ms: round(codeMs), p99_ms: round(codeMs), throughput: round(size / 1e6 / (codeMs / 1000), 1), unit: 'MB/s' });
      await force(gw, 'stub', 'recall', path.slice(8));
    }
    for (const path of ['healthy', 'degraded'] as const) {
      const siteA = join(tmp, 'data', 'sites', 'A');
      if (path === 'degraded') await rename(siteA, `${siteA}.away`);
      for (const size of sizes) {
        const firsts: number[] = [];
        const lasts: number[] = [];
        const started = performance.now();
        for (let i = 0; i < recalls; i++) {
          const r = await recallOnce(client, signer, `/recall/obj-${size}`, size);
          firsts.push(r.first);
          lasts.push(r.last);
        }
        firsts.sort((a, b) => a - b);
        lasts.sort((a, b) => a - b);
        const name = `recall-${size / MiB}MiB-${path}`;
        const line = {
          name,
          object_bytes: size,
          samples: recalls,
          first_byte_median_ms: round(percentile(firsts, 0.5)),
          first_byte_p99_ms: round(percentile(firsts, 0.99)),
          median_ms: round(percentile(lasts, 0.5)),
          p99_ms: round(percentile(lasts, 0.99)),
          throughput: round((recalls * size) / MiB / ((performance.now() - started) / 1000), 1),
          unit: 'MiB/s',
        };
        emit(line);
        summary[name] = { first_byte_p99_ms: line.first_byte_p99_ms, last_byte_p99_ms: line.p99_ms };
      }
      if (path === 'degraded') await rename(`${siteA}.away`, siteA);
    }
    emit(summary);
    return 0;
  } finally {
    await client.close();
    await gw.stop();
    await rm(tmp, { recursive: true, force: true });
  }
}

process.exitCode = await main();
