// FLOWS workstation ingest end to end: real directories as workstations
// beside a real gateway process. Files appear, one grows for a while before
// settling, artefacts appear beside them; we assert what is stored, what is
// cleared and when, that nothing is cleared before its protection level is
// reached, and that kill -9 mid-ingest never loses a source.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, readFile, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CreateBucketCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import t from 'tap';
import { ConfigError, loadConfig } from '../../gateway/config.js';
import type { IssueRecord, WorkstationSummary } from '../../tiering/index.js';
import { ACCESS_KEY, MAIN, SECRET_KEY, gatewayWithConfig, removeDir, tempDir, type Gateway, type Restartable } from '../helpers/gateway.js';
import { basicAuth, blobsOn, forceTier, waitFor } from '../helpers/tiers.js';

const exec = promisify(execFile);

type Running = Restartable & { src: string };

// These tests read, count and damage blob files on disk, so every blob is kept
// as a file (no small-blob store); test/gateway/small-blobs.test.ts covers the store.
async function gatewayWith(t: { teardown(fn: () => Promise<void>): void }, ws: Record<string, unknown>, extra: Record<string, unknown> = {}, flows: Record<string, unknown> = {}): Promise<Running> {
  const dir = await tempDir();
  const src = join(dir, 'workstation');
  await mkdir(src);
  const r = await gatewayWithConfig(
    t,
    {
      engine: { smallBlobBytes: 0 },
      tiering: { stripeSize: 65536, workerInterval: '100ms', codeAfter: '1h' },
      flows: { ingestInterval: '200ms', ...flows, workstations: [{ name: 'ws1', source: src, bucket: 'imaging', prefix: 'ws1/', settle: '1s', ...ws }] },
      ...extra,
    },
    dir,
  );
  return Object.assign(r, { src });
}

async function summary(gw: Gateway): Promise<WorkstationSummary> {
  const res = await fetch(`${gw.adminUrl}/flows/workstations`, { headers: { authorization: basicAuth } });
  return ((await res.json()) as { workstations: WorkstationSummary[] }).workstations[0]!;
}

async function getBytes(s3: S3Client, key: string): Promise<Buffer | undefined> {
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: 'imaging', Key: key }));
    return Buffer.from(await res.Body!.transformToByteArray());
  } catch (err) {
    if ((err as { name?: string }).name === 'NoSuchKey') return undefined;
    throw err;
  }
}

async function exists(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined)) !== undefined;
}

async function keysIn(s3: S3Client): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: 'imaging', ...(token && { ContinuationToken: token }) }));
    out.push(...(page.Contents ?? []).map((c) => c.Key!));
    token = page.NextContinuationToken;
  } while (token);
  return out.sort();
}

t.test('settled files are stored and verified, a growing file waits, artefacts are cleared, delete clears sources once replicated', async (t) => {
  const r = await gatewayWith(t, { clearDown: 'delete', protection: 'replicated' });
  const files = new Map<string, Buffer>([
    ['a.tif', randomBytes(70_000)],
    ['sub/b.tif', randomBytes(5_000)],
  ]);
  await mkdir(join(r.src, 'sub'));
  for (const [p, d] of files) await writeFile(join(r.src, p), d);
  for (const a of ['.DS_Store', 'x.tmp', '~$notes.docx', 'sub/Thumbs.db', 'scan.crdownload', 'c.tif.part']) await writeFile(join(r.src, a), 'artefact');
  // A camera still writing: grows every 150 ms for 2 s.
  const growing = join(r.src, 'g.tif');
  const chunks: Buffer[] = [];
  const grow = (async () => {
    for (let i = 0; i < 14; i++) {
      const c = randomBytes(10_000);
      chunks.push(c);
      await appendFile(growing, c);
      await new Promise((res) => setTimeout(res, 150));
    }
  })();
  await waitFor('a.tif stored', async () => (await getBytes(r.s3, 'ws1/a.tif')) !== undefined, 15_000);
  t.equal(await getBytes(r.s3, 'ws1/g.tif'), undefined, 'the growing file is not taken while it grows');
  await grow;
  files.set('g.tif', Buffer.concat(chunks));

  await waitFor('every source cleared', async () => (await summary(r.gw)).files.cleared === 3, 20_000);
  for (const [p, d] of files) {
    t.ok((await getBytes(r.s3, `ws1/${p}`))?.equals(d), `${p}: stored byte-identical`);
    t.notOk(await exists(join(r.src, p)), `${p}: source deleted after verification`);
  }
  t.same(await keysIn(r.s3), ['ws1/a.tif', 'ws1/g.tif', 'ws1/sub/b.tif'], 'only the files are stored, no artefact');
  await waitFor('artefacts cleared', async () => (await readdir(r.src, { recursive: true })).filter((n) => n !== 'sub').length === 0, 10_000);
  t.pass('every artefact cleared from the workstation');
  const s = await summary(r.gw);
  t.equal(s.bytes.cleared, 75_000 + 140_000, 'bytes cleared');
  t.equal(s.files.failed, 0);
  t.ok(s.lastActivity! > 0);
  const head = await r.s3.send(new HeadObjectCommand({ Bucket: 'imaging', Key: 'ws1/a.tif' }));
  t.equal(head.Metadata?.['flows-workstation'], 'ws1', 'the object says where it came from');
  const metrics = await (await fetch(`${r.gw.adminUrl}/metrics`)).text();
  t.match(metrics, /valentine_flows_ingest_files\{workstation="ws1",state="cleared"\} 3/, 'metric: files per state');
  t.match(metrics, /valentine_flows_ingest_seconds_count\{workstation="ws1"\} 3/, 'metric: ingest latency observed');
  const out = await exec(process.execPath, [MAIN, 'flows', 'workstations', '--admin', r.gw.adminUrl], { env: { ...process.env, VALENTINE_ACCESS_KEY: ACCESS_KEY, VALENTINE_SECRET_KEY: SECRET_KEY } });
  t.match(out.stdout, /ws1: .* → imaging\/ws1\/ \(clear-down delete once replicated\)/);
  t.match(out.stdout, /cleared 3 \(215000 B\)/);
});

t.test('move to done is gated on the coded protection level: verified sources stay until the object is coded', async (t) => {
  const r = await gatewayWith(t, { clearDown: 'move', protection: 'coded', settle: '300ms' });
  const data = randomBytes(100_000);
  await mkdir(join(r.src, 'day1'));
  await writeFile(join(r.src, 'day1/specimen.tif'), data);
  await waitFor('verified', async () => (await summary(r.gw)).files.verified === 1, 15_000);
  await new Promise((res) => setTimeout(res, 1000));
  t.ok(await exists(join(r.src, 'day1/specimen.tif')), 'still on the workstation: replicated is not coded');
  t.equal((await summary(r.gw)).files.cleared, 0);
  t.equal((await forceTier(r.gw, 'code', 'imaging', 'ws1/day1/specimen.tif')).body.changed, 1, 'coded now');
  await waitFor('moved to done', async () => (await summary(r.gw)).files.cleared === 1, 15_000);
  t.notOk(await exists(join(r.src, 'day1/specimen.tif')), 'gone from its place');
  t.ok((await readFile(join(r.src, 'done/day1/specimen.tif'))).equals(data), 'in done/, same path, same bytes');
  await new Promise((res) => setTimeout(res, 600));
  t.same(await keysIn(r.s3), ['ws1/day1/specimen.tif'], 'the done folder is not ingested again');
});

t.test('delete is gated on replicated: a file stored while a replica site is away stays until the reconciler restores the replica', async (t) => {
  const r = await gatewayWith(t, { clearDown: 'delete', protection: 'replicated', settle: '300ms' }, { replication: { replicas: 2, minReplicas: 1 } });
  const siteB = join(r.gw.dataDir, 'sites', 'B');
  await rename(siteB, `${siteB}.away`);
  const data = randomBytes(50_000);
  await writeFile(join(r.src, 'a.tif'), data);
  await waitFor('verified', async () => (await summary(r.gw)).files.verified === 1, 15_000);
  await new Promise((res) => setTimeout(res, 1000));
  t.ok(await exists(join(r.src, 'a.tif')), 'one replica is not replicated: the source stays');
  await rename(`${siteB}.away`, siteB);
  const res = await fetch(`${r.gw.adminUrl}/flows/scrub`, { method: 'POST', headers: { authorization: basicAuth, 'content-type': 'application/json' }, body: JSON.stringify({ bucket: 'imaging' }) });
  t.equal(((await res.json()) as { repaired: number }).repaired, 1, 'the scrub writes the missing replica');
  await waitFor('cleared', async () => (await summary(r.gw)).files.cleared === 1, 15_000);
  t.notOk(await exists(join(r.src, 'a.tif')), 'replicated now: the source is deleted');
  t.ok((await getBytes(r.s3, 'ws1/a.tif'))?.equals(data), 'stored byte-identical');
});

t.test('keep: the same bytes are not stored twice; a file changed after its copy is stored again and raises source-changed', async (t) => {
  const r = await gatewayWith(t, { clearDown: 'keep', settle: '300ms' });
  const path = join(r.src, 'a.tif');
  await writeFile(path, randomBytes(20_000));
  await waitFor('verified', async () => (await summary(r.gw)).files.verified === 1, 15_000);
  const first = await r.s3.send(new HeadObjectCommand({ Bucket: 'imaging', Key: 'ws1/a.tif' }));
  await new Promise((res) => setTimeout(res, 1100));
  const later = new Date(Date.now() + 5000);
  await utimes(path, later, later); // touched, same bytes
  await waitFor('seen again and verified', async () => {
    const s = await summary(r.gw);
    return s.files.verified === 1 && s.lastActivity! > later.getTime() - 5000;
  }, 15_000);
  await new Promise((res) => setTimeout(res, 800));
  const again = await r.s3.send(new HeadObjectCommand({ Bucket: 'imaging', Key: 'ws1/a.tif' }));
  t.equal(again.LastModified?.getTime(), first.LastModified?.getTime(), 'not stored twice: the object was not rewritten');
  t.ok(await exists(path), 'keep: the source stays');

  const changed = randomBytes(30_000);
  await writeFile(path, changed);
  await waitFor('the new bytes stored', async () => (await getBytes(r.s3, 'ws1/a.tif'))?.equals(changed) === true, 15_000);
  const issues = (await (await fetch(`${r.gw.adminUrl}/flows/issues?workstation=ws1`, { headers: { authorization: basicAuth } })).json()) as { issues: IssueRecord[] };
  const issue = issues.issues.find((i) => i.kind === 'source-changed');
  t.equal(issue?.subject, 'ws1:a.tif', 'source-changed raised for the workstation file');
  await waitFor('resolved once the new bytes are verified', async () => {
    const list = (await (await fetch(`${r.gw.adminUrl}/flows/issues?workstation=ws1&kind=source-changed`, { headers: { authorization: basicAuth } })).json()) as { issues: IssueRecord[] };
    return list.issues[0]?.state === 'resolved';
  });
  t.pass('source-changed resolved after the new copy verified');
});

t.test('a file whose bytes the bucket already holds under another key is not stored again; its clear-down waits on that object', async (t) => {
  const r = await gatewayWith(t, { clearDown: 'delete', protection: 'replicated', settle: '300ms' });
  const scan = randomBytes(300_000);
  // The bucket (created at start for the workstation) already holds these bytes: a curator uploaded them.
  await r.s3.send(new PutObjectCommand({ Bucket: 'imaging', Key: 'curated/specimen-17.tif', Body: scan }));
  const blobsBefore = (await blobsOn(r.gw.dataDir, 'A')).length;
  await mkdir(join(r.src, 'day2'));
  await writeFile(join(r.src, 'day2/IMG_0001.tif'), scan);
  await writeFile(join(r.src, 'day2/IMG_0002.tif'), scan); // the same shot saved twice
  const other = randomBytes(50_000);
  await writeFile(join(r.src, 'day2/IMG_0003.tif'), other);
  await waitFor('every source cleared', async () => (await summary(r.gw)).files.cleared === 3, 20_000);
  t.same(await keysIn(r.s3), ['curated/specimen-17.tif', 'ws1/day2/IMG_0003.tif'], 'only the new bytes got a new object');
  t.equal((await blobsOn(r.gw.dataDir, 'A')).length, blobsBefore + 1, 'one new blob on site A: the duplicates stored no bytes');
  t.ok((await getBytes(r.s3, 'curated/specimen-17.tif'))?.equals(scan), 'the object that holds them is intact');
  t.same(await readdir(join(r.src, 'day2')), [], 'the duplicates were cleared like any verified file');
  const s = await summary(r.gw);
  t.equal(s.duplicates, 2, 'the workstation summary counts two duplicates');
  const metrics = await (await fetch(`${r.gw.adminUrl}/metrics`)).text();
  t.match(metrics, /valentine_flows_ingest_duplicate_files_total\{workstation="ws1"\} 2\n/, 'metric: duplicates');
  t.match(metrics, /valentine_flows_ingested_files_total\{workstation="ws1"\} 3\n/, 'all three count as ingested');

  // The object that held the bytes is deleted: a file with those bytes arriving now is stored under its own key.
  await r.s3.send(new DeleteObjectCommand({ Bucket: 'imaging', Key: 'curated/specimen-17.tif' }));
  await writeFile(join(r.src, 'day2/IMG_0004.tif'), scan);
  await waitFor('stored under its own key', async () => (await getBytes(r.s3, 'ws1/day2/IMG_0004.tif'))?.equals(scan) === true, 15_000);
  t.pass('no object with the bytes left: stored again');
});

t.test('the state of cleared files is kept for ingestHistory, then only the counters remember them; a file taken away before it settled is dropped', async (t) => {
  const r = await gatewayWith(t, { clearDown: 'delete', settle: '1500ms' }, {}, { ingestHistory: '1s' });
  await writeFile(join(r.src, 'a.tif'), randomBytes(1000));
  await waitFor('cleared', async () => (await summary(r.gw)).files.cleared === 1, 15_000);
  await writeFile(join(r.src, 'gone.tif'), randomBytes(10));
  await waitFor('seen', async () => (await summary(r.gw)).files.seen === 1, 5_000);
  await rm(join(r.src, 'gone.tif'));
  await waitFor('history pruned', async () => {
    const s = await summary(r.gw);
    return s.files.cleared === 0 && s.files.seen === 0;
  }, 15_000);
  t.pass('no state left for a cleared file past its history, nor for a file taken away');
  const metrics = await (await fetch(`${r.gw.adminUrl}/metrics`)).text();
  t.match(metrics, /valentine_flows_ingested_files_total\{workstation="ws1"\} 1\n/, 'the counter remembers one file');
  t.match(metrics, /valentine_flows_ingested_bytes_total\{workstation="ws1"\} 1000\n/, 'and its bytes');
  t.same(await keysIn(r.s3), ['ws1/a.tif'], 'the file taken away was never stored');
});

t.test('kill -9 during ingest: no source deleted unless its object is stored; the work resumes after restart', async (t) => {
  const r = await gatewayWith(t, { clearDown: 'delete', settle: '300ms' });
  const files = new Map<string, Buffer>();
  for (let i = 0; i < 300; i++) files.set(`f${String(i).padStart(3, '0')}.dat`, randomBytes(4096 + Math.floor(Math.random() * 60 * 1024)));
  for (const [p, d] of files) await writeFile(join(r.src, p), d);
  await waitFor('ingest under way', async () => (await summary(r.gw)).files.cleared >= 20, 30_000);
  await r.gw.kill();
  const left = new Set(await readdir(r.src));
  t.ok(left.size > 0 && left.size < 300, `${300 - left.size} cleared before the crash`);
  for (const p of left) if (files.has(p)) t.ok((await readFile(join(r.src, p))).equals(files.get(p)!), `${p}: source intact`);

  await r.restart();
  for (const [p, d] of files) {
    if (left.has(p)) continue;
    const stored = await getBytes(r.s3, `ws1/${p}`);
    if (!stored?.equals(d)) t.fail(`${p}: deleted from the workstation but not stored`);
  }
  t.pass('every source gone from the workstation is stored byte-identical');
  await waitFor('the rest ingested after restart', async () => (await summary(r.gw)).files.cleared === 300, 60_000);
  t.same(await readdir(r.src), [], 'workstation cleared');
  let same = 0;
  for (const [p, d] of files) if ((await getBytes(r.s3, `ws1/${p}`))?.equals(d)) same++;
  t.equal(same, 300, 'all 300 stored byte-identical');
});

t.test('workstation config is validated with every problem listed', async (t) => {
  const dir = await tempDir();
  t.teardown(() => removeDir(dir));
  const config = join(dir, 'c.json');
  await writeFile(
    config,
    JSON.stringify({
      flows: {
        scrub: { every: 'weekly', objectsPerSecond: 0 },
        orphanGrace: '-1h',
        space: { maxUsed: 1.5, every: 'often' },
        workstations: [
          { name: 'a', source: '/x', bucket: 'Bad_Bucket', clearDown: 'shred' },
          { name: 'a', source: '/y', bucket: 'good', settle: 'soon', protection: 'tape' },
          { name: 'b', bucket: 'good' },
        ],
      },
    }),
  );
  const err = await loadConfig({ config, data: join(dir, 'data') }).catch((e: unknown) => e);
  t.ok(err instanceof ConfigError, 'refused');
  const problems = (err as ConfigError).problems.join('\n');
  for (const want of [/workstations\/0\/bucket/, /workstations\/0\/clearDown/, /workstations\/1\/settle/, /workstations\/1\/protection/, /workstations\/2: must have required property 'source'/, /names must be unique/, /flows\/scrub\/every/, /flows\/scrub\/objectsPerSecond/, /flows\/orphanGrace/, /flows\/space\/maxUsed/, /flows\/space\/every/]) {
    t.match(problems, want, `lists ${want}`);
  }
  const ok = await loadConfig({ config: await (async () => {
    const p = join(dir, 'ok.json');
    await writeFile(p, JSON.stringify({ flows: { workstations: [{ name: 'cam', source: 'rel/dir', bucket: 'imaging' }] } }));
    return p;
  })(), data: join(dir, 'data') });
  const w = ok.flows.workstations[0]!;
  t.equal(w.source, join(process.cwd(), 'rel/dir'), 'source made absolute');
  t.same(w.artefacts, ['*.tmp', '*.part', '~$*', '.DS_Store', 'Thumbs.db', '*.crdownload'], 'default artefact patterns');
  t.equal(w.clearDown, 'keep', 'keeps sources unless told otherwise');
  t.equal(w.settle, '30s');
  t.same(ok.flows.space, { maxUsed: 0.9, every: '1m' }, 'quota issues past 90% full, checked every minute');
});
