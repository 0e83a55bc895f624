// FLOWS reconciliation end to end, against a real gateway process with local
// sites on disk: damage is done to blob files (a replica deleted, a byte of a
// shard flipped, a whole site emptied), a pass finds it, rebuilds it from
// healthy copies only, and the issue list shows it opened and resolved;
// what cannot be repaired stays open and nothing is deleted; the storage
// sweep clears orphans after their grace period, stale temp files and
// abandoned uploads; kill -9 mid-repair loses nothing and the pass resumes.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import t from 'tap';
import { DEFAULT_CHECK_NICE, Namespace, type IssueRecord, type PassSummary, type ReconcileStatus } from '../../tiering/index.js';
import { keys } from '../../tiering/namespace/keys.js';
import type { ScrubStateRecord } from '../../tiering/namespace/records.js';
import { ACCESS_KEY, MAIN, SECRET_KEY, gatewayWithConfig, type Gateway, type Restartable } from '../helpers/gateway.js';
import { basicAuth, blobsOn, forceTier, waitFor } from '../helpers/tiers.js';

const exec = promisify(execFile);
const PIECE = 65536;
const SITES = ['hot', 'A', 'B', 'C'];

type Running = Restartable;

// These tests read, count and damage blob files on disk, so every blob is kept
// as a file (no small-blob store); test/gateway/small-blobs.test.ts covers the store.
function gatewayWith(t: { teardown(fn: () => Promise<void>): void }, flows: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Promise<Running> {
  return gatewayWithConfig(t, { engine: { smallBlobBytes: 0 }, tiering: { stripeSize: PIECE, workerInterval: '100ms', codeAfter: '1h' }, flows, ...extra });
}

async function api<T>(gw: Gateway, method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(`${gw.adminUrl}${path}`, {
    method,
    headers: { authorization: basicAuth, ...(body !== undefined && { 'content-type': 'application/json' }) },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as T };
}

async function scrub(gw: Gateway, body: { bucket?: string; prefix?: string } = {}): Promise<PassSummary> {
  const res = await api<PassSummary>(gw, 'POST', '/flows/scrub', body);
  if (res.status !== 200) throw new Error(`scrub: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

async function issues(gw: Gateway, query = ''): Promise<IssueRecord[]> {
  return (await api<{ issues: IssueRecord[] }>(gw, 'GET', `/flows/issues?limit=1000${query}`)).body.issues;
}

async function cli(gw: Gateway, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [MAIN, 'flows', ...args, '--admin', gw.adminUrl], {
      env: { ...process.env, VALENTINE_ACCESS_KEY: ACCESS_KEY, VALENTINE_SECRET_KEY: SECRET_KEY },
    });
    return { code: 0, out: stdout, err: stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout, err: e.stderr };
  }
}

async function getBytes(s3: S3Client, bucket: string, key: string): Promise<Buffer> {
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await res.Body!.transformToByteArray());
}

async function metric(gw: Gateway, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

/** Blobs a site holds on disk; none while its directory is away. */
async function blobsNow(dataDir: string, site: string): Promise<{ path: string; size: number }[]> {
  return blobsOn(dataDir, site).catch(() => []);
}

/** Put an object (and force it to `tier`); returns the paths of its blob on each site. */
async function store(r: Running, bucket: string, key: string, data: Buffer, tier: 'replicated' | 'coded' | 'stub' = 'replicated'): Promise<Record<string, string>> {
  const before = new Set((await Promise.all(SITES.map((s) => blobsNow(r.gw.dataDir, s)))).flat().map((b) => b.path));
  await r.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: data }));
  if (tier !== 'replicated') await forceTier(r.gw, tier === 'coded' ? 'code' : 'stub', bucket, key);
  const out: Record<string, string> = {};
  for (const s of SITES) {
    const mine = (await blobsNow(r.gw.dataDir, s)).filter((b) => !before.has(b.path));
    if (mine.length > 1) throw new Error(`${key}: ${mine.length} new blobs on ${s}`);
    if (mine[0]) out[s] = mine[0].path;
  }
  return out;
}

async function flipByte(path: string, at?: number): Promise<void> {
  const buf = await readFile(path);
  const i = at ?? Math.floor(buf.length / 2);
  buf[i] = buf[i]! ^ 0xff;
  await writeFile(path, buf);
}

function find(list: IssueRecord[], kind: string, subject: string, site?: string): IssueRecord | undefined {
  return list.find((i) => i.kind === kind && i.subject === subject && (site === undefined || i.site === site));
}

t.test('a deleted replica and a corrupt hot copy are found, rebuilt from a healthy copy, verified, and their issues resolve', async (t) => {
  const r = await gatewayWith(t);
  await r.s3.send(new CreateBucketCommand({ Bucket: 'scrub' }));
  const data = randomBytes(3 * PIECE + 123);
  const blobs = await store(r, 'scrub', 'replica', data);
  t.same(Object.keys(blobs).sort(), ['A', 'B', 'hot'], 'replicated: hot + A + B');
  await rm(blobs.A!);
  await flipByte(blobs.hot!);

  const pass = await scrub(r.gw);
  t.equal(pass.objects, 1, 'one object checked');
  t.equal(pass.problems, 2, 'two problems found');
  t.equal(pass.repaired, 2, 'both repaired');
  t.equal(pass.repairFailed, 0);
  t.ok((await readFile(blobs.A!)).equals(data), 'replica on A rebuilt byte for byte');
  t.ok((await readFile(blobs.hot!)).equals(data), 'hot copy rebuilt byte for byte');
  t.ok((await readFile(blobs.B!)).equals(data), 'the healthy source untouched');

  const list = await issues(r.gw);
  const missing = find(list, 'missing-copy', 'scrub/replica', 'A');
  const corrupt = find(list, 'checksum-mismatch', 'scrub/replica', 'hot');
  t.equal(missing?.state, 'resolved', 'missing-copy on A: opened, then resolved');
  t.equal(corrupt?.state, 'resolved', 'checksum-mismatch on hot: opened, then resolved');
  t.equal(missing?.bucket, 'scrub');
  t.ok(missing!.resolvedAt! >= missing!.firstSeen);
  t.equal((await issues(r.gw, '&state=open')).length, 0, 'nothing open');

  const again = await scrub(r.gw);
  t.equal(again.problems, 0, 'the next pass finds nothing wrong');
  t.ok((await getBytes(r.s3, 'scrub', 'replica')).equals(data), 'reads back byte-identical');
  t.equal(await metric(r.gw, 'valentine_flows_repairs_total', 'what="copy",result="done"'), 2, 'repairs counted');
});

t.test('an object written while a replica site was away gets its missing replica once the site is back', async (t) => {
  const r = await gatewayWith(t, {}, { replication: { replicas: 2, minReplicas: 1 } });
  await r.s3.send(new CreateBucketCommand({ Bucket: 'under' }));
  const siteB = join(r.gw.dataDir, 'sites', 'B');
  await rename(siteB, `${siteB}.away`);
  const data = randomBytes(PIECE + 5);
  const blobs = await store(r, 'under', 'k', data);
  t.same(Object.keys(blobs).sort(), ['A', 'hot'], 'accepted with one replica');
  const away = await scrub(r.gw);
  t.equal(away.repaired, 0, 'nothing repaired while B is away');
  t.equal(find(await issues(r.gw), 'site-unreachable', 'site B', 'B')?.state, 'open', 'site-unreachable raised for B');
  await rename(`${siteB}.away`, siteB);

  const pass = await scrub(r.gw);
  t.equal(pass.repaired, 1, 'the missing replica written');
  const onB = (await blobsOn(r.gw.dataDir, 'B')).map((b) => b.path);
  t.equal(onB.length, 1, 'B holds the copy');
  t.ok((await readFile(onB[0]!)).equals(data), 'byte for byte');
  t.equal(find(await issues(r.gw), 'missing-copy', 'under/k', 'B')?.state, 'resolved', 'missing-copy on B opened and resolved');
  t.equal(find(await issues(r.gw), 'site-unreachable', 'site B', 'B')?.state, 'resolved', 'site-unreachable resolved');
  t.equal((await scrub(r.gw)).problems, 0, 'recorded: the next pass finds it whole');
  await rm(blobs.A!);
  await rm(blobs.hot!);
  t.ok((await getBytes(r.s3, 'under', 'k')).equals(data), 'B serves it when the hot copy and A are lost');
});

t.test('a flipped byte in a shard is rebuilt from the two others and verified', async (t) => {
  const r = await gatewayWith(t);
  await r.s3.send(new CreateBucketCommand({ Bucket: 'shards' }));
  const data = randomBytes(5 * PIECE + 999);
  const blobs = await store(r, 'shards', 'stub', data, 'stub');
  t.same(Object.keys(blobs).sort(), ['A', 'B', 'C'], 'stub: one shard on each of A, B, C, no hot copy');
  const original = await readFile(blobs.B!);
  await flipByte(blobs.B!, 10);

  const pass = await scrub(r.gw, { bucket: 'shards' });
  t.equal(pass.scope, 'shards');
  t.equal(pass.problems, 1);
  t.equal(pass.repaired, 1);
  t.ok((await readFile(blobs.B!)).equals(original), 'shard on B rebuilt byte for byte');
  const issue = find(await issues(r.gw, '&kind=checksum-mismatch'), 'checksum-mismatch', 'shards/stub', 'B');
  t.equal(issue?.state, 'resolved', 'checksum-mismatch on B opened and resolved');
  t.match(issue?.detail, /rebuilt and verified/);
  t.ok((await getBytes(r.s3, 'shards', 'stub')).equals(data), 'reads back byte-identical');
  t.equal(await metric(r.gw, 'valentine_flows_repairs_total', 'what="shard",result="done"'), 1);
});

t.test('a whole site removed and brought back empty: every shard it held is rebuilt', async (t) => {
  const r = await gatewayWith(t);
  await r.s3.send(new CreateBucketCommand({ Bucket: 'site' }));
  const objects = new Map<string, { data: Buffer; c: Buffer; path: string }>();
  for (let i = 0; i < 4; i++) {
    const data = randomBytes(PIECE * (i + 1) + i);
    const blobs = await store(r, 'site', `o${i}`, data, i % 2 === 0 ? 'coded' : 'stub');
    objects.set(`o${i}`, { data, c: await readFile(blobs.C!), path: blobs.C! });
  }
  await r.gw.stop();
  await rm(join(r.gw.dataDir, 'sites', 'C'), { recursive: true });
  await r.restart();
  t.same(await blobsOn(r.gw.dataDir, 'C'), [], 'site C is back, empty');

  const pass = await scrub(r.gw);
  t.equal(pass.problems, 4, 'four missing shards found');
  t.equal(pass.repaired, 4, 'four rebuilt');
  for (const [key, o] of objects) {
    t.ok((await readFile(o.path)).equals(o.c), `${key}: parity shard on C rebuilt byte for byte`);
    t.equal(find(await issues(r.gw), 'missing-copy', `site/${key}`, 'C')?.state, 'resolved', `${key}: missing-copy on C resolved`);
    t.ok((await getBytes(r.s3, 'site', key)).equals(o.data), `${key}: reads back`);
  }
});

t.test('two of three shards gone: repair-failed stays open, counted once per pass, nothing is deleted; a person acknowledges it', async (t) => {
  const r = await gatewayWith(t);
  await r.s3.send(new CreateBucketCommand({ Bucket: 'lost' }));
  const blobs = await store(r, 'lost', 'two-gone', randomBytes(2 * PIECE + 7), 'stub');
  const survivor = await readFile(blobs.C!);
  await rm(blobs.A!);
  await rm(blobs.B!);

  const first = await cli(r.gw, 'scrub', 'lost');
  t.equal(first.code, 1, 'the CLI exits 1 when a repair failed');
  t.match(first.out, /1 repairs failed/);
  await scrub(r.gw, { bucket: 'lost' });
  const open = await issues(r.gw, '&state=open&kind=repair-failed');
  t.equal(open.length, 1, 'one repair-failed issue, open');
  t.equal(open[0]?.subject, 'lost/two-gone');
  t.equal(open[0]?.count, 2, 'seen by two passes: one issue, count 2');
  t.match(open[0]?.detail, /only 1 healthy shards/);
  t.equal(find(await issues(r.gw), 'missing-copy', 'lost/two-gone', 'A')?.state, 'open', 'missing-copy on A stays open');
  t.ok((await readFile(blobs.C!)).equals(survivor), 'the surviving shard is untouched');
  t.equal((await stat(blobs.C!)).size, survivor.length);
  const head = await fetch(`${r.gw.adminUrl}/flows/status`, { headers: { authorization: basicAuth } });
  t.same(((await head.json()) as ReconcileStatus).openIssues['repair-failed'], 1, 'status counts it open');
  t.equal(await metric(r.gw, 'valentine_flows_issues', 'kind="repair-failed",state="open"'), 1, 'metric: one open repair-failed');

  const ack = await cli(r.gw, 'ack', open[0]!.id);
  t.equal(ack.code, 0, ack.err);
  t.match(ack.out, new RegExp(`${open[0]!.id} acknowledged by ${ACCESS_KEY}`));
  t.equal((await issues(r.gw, '&state=acknowledged&kind=repair-failed')).length, 1, 'acknowledged');
  const listed = await cli(r.gw, 'issues', '--kind', 'repair-failed');
  t.match(listed.out, /acknowledged\s+repair-failed\s+x2\s+lost\/two-gone/, 'the CLI lists it');
  t.equal((await api(r.gw, 'POST', `/flows/issues/${'0'.repeat(24)}/ack`)).status, 404, 'unknown issue: 404');
});

t.test('a read that skips a bad copy raises an issue, and the object is repaired without waiting for a pass', async (t) => {
  const r = await gatewayWith(t);
  await r.s3.send(new CreateBucketCommand({ Bucket: 'reads' }));
  const data = randomBytes(2 * PIECE);
  const blobs = await store(r, 'reads', 'k', data);
  await flipByte(blobs.hot!);
  t.ok((await getBytes(r.s3, 'reads', 'k')).equals(data), 'the read is served from a good replica');
  await waitFor('the issue to be raised and resolved', async () => find(await issues(r.gw), 'checksum-mismatch', 'reads/k', 'hot')?.state === 'resolved', 10_000);
  t.ok((await readFile(blobs.hot!)).equals(data), 'hot copy rebuilt');
});

t.test('storage sweep: orphan blobs after their grace period, stale temp files, abandoned multipart uploads', async (t) => {
  const r = await gatewayWith(t, { orphanGrace: '1500ms', uploadMaxAge: '1s', tempMaxAge: '1h' });
  await r.s3.send(new CreateBucketCommand({ Bucket: 'sweep' }));
  const data = randomBytes(PIECE);
  const kept = await store(r, 'sweep', 'kept', data, 'coded');
  const orphan = join(r.gw.dataDir, 'sites', 'A', 'blobs', 'ab', `ab${'0'.repeat(30)}`);
  await writeFile(orphan, 'left by a crash');
  // A replica left on B after coding (its delete failed): same id as the hot copy, which the record still lists.
  const hotName = kept.hot!.split('/').pop()!;
  const leftover = join(r.gw.dataDir, 'sites', 'B', 'blobs', hotName.slice(0, 2), hotName);
  await writeFile(leftover, data);
  const tmp = join(r.gw.dataDir, 'sites', 'B', 'tmp');
  await mkdir(tmp, { recursive: true });
  await writeFile(join(tmp, 'old.1234'), 'stale');
  await writeFile(join(tmp, 'fresh.5678'), 'in flight');
  const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000);
  await utimes(join(tmp, 'old.1234'), twoHoursAgo, twoHoursAgo);
  const up = await r.s3.send(new CreateMultipartUploadCommand({ Bucket: 'sweep', Key: 'abandoned' }));
  await r.s3.send(new UploadPartCommand({ Bucket: 'sweep', Key: 'abandoned', UploadId: up.UploadId!, PartNumber: 1, Body: randomBytes(1000) }));
  await new Promise((res) => setTimeout(res, 1100));

  const first = await scrub(r.gw);
  t.equal(first.uploadsAborted, 1, 'the abandoned upload is aborted');
  t.equal((await r.s3.send(new ListMultipartUploadsCommand({ Bucket: 'sweep' }))).Uploads?.length ?? 0, 0, 'no upload left');
  const stale = (await issues(r.gw, '&kind=stale-upload'))[0];
  t.equal(stale?.state, 'resolved', 'stale-upload issue raised and resolved');
  t.equal(stale?.key, 'abandoned');
  t.equal(first.orphansCleared, 0, 'an orphan seen for the first time is kept (it may be a write in flight)');
  t.ok(await stat(orphan).catch(() => undefined), 'orphan still there');
  await t.rejects(stat(join(tmp, 'old.1234')), 'temp file older than an hour removed');
  t.ok(await stat(join(tmp, 'fresh.5678')), 'recent temp file kept');

  await new Promise((res) => setTimeout(res, 1600));
  const second = await scrub(r.gw);
  t.equal(second.orphansCleared, 2, 'past their grace period both orphans are cleared');
  await t.rejects(stat(orphan), 'orphan gone');
  await t.rejects(stat(leftover), 'the leftover replica gone');
  for (const [site, path] of Object.entries(kept)) t.ok(await stat(path), `the object's blob on ${site} is kept`);
  t.ok((await getBytes(r.s3, 'sweep', 'kept')).equals(data), 'the object reads back');
  t.equal(await metric(r.gw, 'valentine_flows_orphans_cleared_total', 'site="A"'), 1, 'orphans counted per site');
  t.equal(await metric(r.gw, 'valentine_flows_orphans_cleared_total', 'site="B"'), 1);
});

t.test('a pass holds its rate cap, shows progress and records the last full pass; CLI and auth', async (t) => {
  const r = await gatewayWith(t, { scrub: { objectsPerSecond: 10 } }, { credentials: [{ accessKey: 'viewer', secretKey: 'viewer-secret-1', role: 'readonly' }] });
  await r.s3.send(new CreateBucketCommand({ Bucket: 'rate' }));
  for (let i = 0; i < 20; i++) await r.s3.send(new PutObjectCommand({ Bucket: 'rate', Key: `k${String(i).padStart(2, '0')}`, Body: randomBytes(100) }));
  const pass = scrub(r.gw);
  let seen: ReconcileStatus['running'];
  await waitFor('progress', async () => {
    seen = (await api<ReconcileStatus>(r.gw, 'GET', '/flows/status')).body.running;
    return seen !== undefined && seen.objects > 2;
  });
  t.equal(seen!.total, 20, 'status: total objects of the pass');
  t.ok(seen!.progress > 0 && seen!.progress < 1, `status: progress ${seen!.progress}`);
  t.ok((await metric(r.gw, 'valentine_flows_scrub_backlog_objects')) > 0, 'backlog metric while running');
  const done = await pass;
  t.equal(done.objects, 20);
  t.ok(done.durationMs >= 1700, `20 objects at 10/s took ${done.durationMs} ms`);

  const status = (await api<ReconcileStatus>(r.gw, 'GET', '/flows/status')).body;
  t.equal(status.running, undefined, 'idle again');
  t.equal(status.lastFullPass?.objects, 20, 'last full pass recorded');
  t.ok(status.nextFullPassAt > Date.now() + 6 * 86_400_000, 'next full pass a week later by default');
  t.ok((await metric(r.gw, 'valentine_flows_last_full_pass_timestamp_seconds')) > 0);
  t.ok((await metric(r.gw, 'valentine_flows_last_full_pass_duration_seconds')) >= 1.7);
  t.equal(await metric(r.gw, 'valentine_flows_scrub_objects_total'), 20);
  const out = await cli(r.gw, 'status');
  t.equal(out.code, 0, out.err);
  t.match(out.out, /last full pass: 20 objects/);
  t.match(out.out, /open issues: none/);

  t.equal((await fetch(`${r.gw.adminUrl}/flows/issues`)).status, 401, 'no credentials: 401');
  const viewer = `Basic ${Buffer.from('viewer:viewer-secret-1').toString('base64')}`;
  t.equal((await fetch(`${r.gw.adminUrl}/flows/issues`, { headers: { authorization: viewer } })).status, 200, 'readonly may read');
  t.equal((await fetch(`${r.gw.adminUrl}/flows/scrub`, { method: 'POST', headers: { authorization: viewer } })).status, 403, 'readonly may not scrub');
  t.equal((await api(r.gw, 'GET', '/flows/issues?kind=nonsense')).status, 400, 'unknown kind: 400');
  t.equal((await api(r.gw, 'POST', '/flows/scrub', { bucket: 'nope' })).status, 404, 'unknown bucket: 404');
  const bad = await cli(r.gw, 'frobnicate');
  t.equal(bad.code, 2, 'unknown subcommand: usage, exit 2');
});

t.test('objects overwritten and deleted while a pass checks them raise no issue, and every object left reads back whole', async (t) => {
  // A pass looks at healthy-looking objects without their lock; what it finds
  // missing or changed must be looked at again against the current record.
  const r = await gatewayWith(t, { scrub: { objectsPerSecond: 300 } });
  await r.s3.send(new CreateBucketCommand({ Bucket: 'churn' }));
  const keys = Array.from({ length: 300 }, (_, i) => `k${String(i).padStart(3, '0')}`);
  const now = new Map<string, Buffer>();
  for (const k of keys) {
    const data = randomBytes(1000 + (k.charCodeAt(3) % 7) * 100);
    await r.s3.send(new PutObjectCommand({ Bucket: 'churn', Key: k, Body: data }));
    now.set(k, data);
  }
  let passing = true;
  let changed = 0;
  const pass = scrub(r.gw).finally(() => (passing = false));
  // Overwrite and delete objects ahead of the pass while it runs.
  while (passing) {
    const k = keys[Math.floor(Math.random() * keys.length)]!;
    if (Math.random() < 0.3) {
      await r.s3.send(new DeleteObjectCommand({ Bucket: 'churn', Key: k }));
      now.delete(k);
    } else {
      const data = randomBytes(900);
      await r.s3.send(new PutObjectCommand({ Bucket: 'churn', Key: k, Body: data }));
      now.set(k, data);
    }
    changed++;
  }
  const done = await pass;
  t.ok(changed > 50, `${changed} objects changed during the pass`);
  t.equal(done.problems, 0, 'the pass found no problem');
  t.same((await issues(r.gw)).map((i) => `${i.kind} ${i.subject}`), [], 'no issue raised');
  for (const [k, data] of now) t.ok((await getBytes(r.s3, 'churn', k)).equals(data), `${k} reads back whole`);
  t.equal((await scrub(r.gw)).problems, 0, 'a second pass finds nothing either');
});

t.test('the threads that check blobs run at the nice value the config names', async (t) => {
  const r = await gatewayWith(t, { scrub: { nice: 12 } });
  await r.s3.send(new CreateBucketCommand({ Bucket: 'nice' }));
  // A small object and a large one: their blobs are checked by pools of their own.
  await r.s3.send(new PutObjectCommand({ Bucket: 'nice', Key: 'k', Body: randomBytes(PIECE) }));
  await r.s3.send(new PutObjectCommand({ Bucket: 'nice', Key: 'big', Body: randomBytes(2 * 2 ** 20) }));
  const done = await scrub(r.gw);
  t.equal(done.objects, 2, 'the pass checked both objects');
  t.equal(done.problems, 0, 'and found them healthy');
  // What an operator sees in top -H: the gateway's threads and their nice values.
  const task = `/proc/${r.gw.proc.pid}/task`;
  const nices = await Promise.all((await readdir(task)).map(async (tid) => Number((await readFile(`${task}/${tid}/stat`, 'utf8')).split(') ')[1]!.split(' ')[16])));
  t.equal(nices.filter((n) => n === 12).length, 3, `three threads at nice 12: two for small blobs, one for large ones (nice values: ${nices.join(', ')})`);
  t.notOk(nices.includes(DEFAULT_CHECK_NICE), `none at the default ${DEFAULT_CHECK_NICE}`);
});

t.test('full passes repeat on their schedule, each measured, and repair what they find', async (t) => {
  const r = await gatewayWith(t, { scrub: { every: '2s' } });
  await r.s3.send(new CreateBucketCommand({ Bucket: 'sched' }));
  const data = randomBytes(PIECE);
  const blobs = await store(r, 'sched', 'k', data);
  const status = async () => (await api<ReconcileStatus>(r.gw, 'GET', '/flows/status')).body;
  await waitFor('a first scheduled pass', async () => (await status()).lastFullPass !== undefined, 15_000);
  const first = (await status()).lastFullPass!;
  t.equal(first.objects, 1, 'the scheduled pass covered the namespace');
  t.ok(first.durationMs >= 0 && first.finishedAt >= first.startedAt, 'measured');
  await rm(blobs.B!);
  await waitFor('the next scheduled pass', async () => (await status()).lastFullPass!.finishedAt > first.finishedAt, 15_000);
  await waitFor('the replica rebuilt', async () => (await readFile(blobs.B!).catch(() => Buffer.alloc(0))).equals(data), 15_000);
  t.pass('the deleted replica was rebuilt by a scheduled pass');
  const s = await status();
  t.ok(s.nextFullPassAt <= s.lastFullPass!.finishedAt + 2000 + 50, 'the next one is due two seconds after the last ended');
});

t.test('kill -9 during repair: no object damaged, the pass resumes after restart and finishes the repairs', async (t) => {
  const r = await gatewayWith(t, { scrub: { megabytesPerSecond: 4 } });
  await r.s3.send(new CreateBucketCommand({ Bucket: 'crash' }));
  const objects = new Map<string, { data: Buffer; a: string }>();
  for (let i = 0; i < 8; i++) {
    const data = randomBytes(2 ** 20 + i);
    const blobs = await store(r, 'crash', `o${i}`, data);
    objects.set(`o${i}`, { data, a: blobs.A! });
    await rm(blobs.A!);
  }
  const pass = scrub(r.gw).catch(() => undefined); // the connection dies with the gateway
  // A pass checks a few objects at once: kill it once the first are done, while the rest wait their turn.
  await waitFor('the pass to be under way', async () => ((await api<ReconcileStatus>(r.gw, 'GET', '/flows/status')).body.running?.objects ?? 0) >= 1, 20_000);
  await r.gw.kill();
  await pass;
  let rebuiltBefore = 0;
  for (const o of objects.values()) {
    const st = await stat(o.a).catch(() => undefined);
    if (!st) continue;
    rebuiltBefore++;
    t.ok((await readFile(o.a)).equals(o.data), 'a replica present after the crash is whole');
  }
  t.ok(rebuiltBefore >= 1 && rebuiltBefore < 8, `${rebuiltBefore} of 8 rebuilt before the crash`);

  await r.restart();
  t.ok(r.gw.logs.some((l) => l.includes('resuming an interrupted full pass')), 'the interrupted pass resumes at start');
  await waitFor('the resumed pass to finish', async () => (await api<ReconcileStatus>(r.gw, 'GET', '/flows/status')).body.lastFullPass !== undefined, 30_000);
  const last = (await api<ReconcileStatus>(r.gw, 'GET', '/flows/status')).body.lastFullPass!;
  t.equal(last.objects, 8, 'the resumed pass counts every object once over both runs');
  for (const [key, o] of objects) {
    t.ok((await readFile(o.a)).equals(o.data), `${key}: replica on A rebuilt`);
    t.ok((await getBytes(r.s3, 'crash', key)).equals(o.data), `${key}: reads back`);
  }
  t.equal((await issues(r.gw, '&state=open')).length, 0, 'every issue resolved');
});

t.test('kill -9 mid-pass: small and large objects, walked side by side, each resume where they were and are counted once', async (t) => {
  // 40 objects/s: the 230 small objects take seconds, so the pass saves its place (once a second) before the kill.
  const r = await gatewayWith(t, { scrub: { objectsPerSecond: 40 } });
  await r.s3.send(new CreateBucketCommand({ Bucket: 'lanes' }));
  const small = Array.from({ length: 230 }, (_, i) => `s${String(i).padStart(3, '0')}`);
  const large = ['l0', 'l1', 'l2', 'l3'];
  const damaged = new Map<string, { data: Buffer; a: string }>();
  // Damage early and late in key order, of both kinds: each lane must reach its own.
  const toDamage = new Set(['l0', 'l3', 's000', 's229']);
  for (const key of [...large, ...small]) {
    const data = randomBytes(key.startsWith('l') ? 2 ** 20 + 7 : PIECE);
    if (!toDamage.has(key)) {
      await r.s3.send(new PutObjectCommand({ Bucket: 'lanes', Key: key, Body: data }));
      continue;
    }
    const blobs = await store(r, 'lanes', key, data);
    damaged.set(key, { data, a: blobs.A! });
    await rm(blobs.A!);
  }
  const pass = scrub(r.gw).catch(() => undefined); // the connection dies with the gateway
  await waitFor('the small lane past its first page', async () => ((await api<ReconcileStatus>(r.gw, 'GET', '/flows/status')).body.running?.objects ?? 0) >= 150, 30_000);
  await r.gw.kill();
  await pass;

  await r.restart();
  const resumed = r.gw.logs.find((l) => l.includes('resuming an interrupted full pass'));
  t.ok(resumed, 'the interrupted pass resumes at start');
  const lanes = (JSON.parse(resumed!) as { lanes: { bucket: string; after?: string; objects: number }[] }).lanes;
  t.equal(lanes.length, 2, 'two lanes');
  t.ok(lanes[0]!.objects > 0, `the small lane goes on after ${lanes[0]!.after}, not from the start`);
  // Each lane's count is exactly the objects of its kind up to its cursor.
  t.equal(lanes[0]!.objects, small.filter((k) => k <= lanes[0]!.after!).length, 'small lane: its count matches its place');
  t.equal(lanes[1]!.objects, large.filter((k) => lanes[1]!.after !== undefined && k <= lanes[1]!.after).length, 'large lane: its count matches its place');
  await waitFor('the resumed pass to finish', async () => (await api<ReconcileStatus>(r.gw, 'GET', '/flows/status')).body.lastFullPass !== undefined, 30_000);
  const last = (await api<ReconcileStatus>(r.gw, 'GET', '/flows/status')).body.lastFullPass!;
  t.equal(last.objects, small.length + large.length, 'the resumed pass counts every object once over both runs');
  for (const [key, o] of damaged) {
    t.ok((await readFile(o.a)).equals(o.data), `${key}: replica on A rebuilt`);
    t.ok((await getBytes(r.s3, 'lanes', key)).equals(o.data), `${key}: reads back`);
  }
  t.equal((await issues(r.gw, '&state=open')).length, 0, 'every issue resolved');
});

t.test('a pass interrupted under the single-walk state (no lanes) starts over at restart, keeps its start time and covers every object', async (t) => {
  const r = await gatewayWith(t);
  await r.s3.send(new CreateBucketCommand({ Bucket: 'old' }));
  const data = randomBytes(2 ** 20 + 3);
  const blobs = await store(r, 'old', 'o0', data);
  await r.s3.send(new PutObjectCommand({ Bucket: 'old', Key: 'o1', Body: randomBytes(PIECE) }));
  await r.s3.send(new PutObjectCommand({ Bucket: 'old', Key: 'o2', Body: randomBytes(PIECE) }));
  await rm(blobs.A!); // before the saved place: only a pass that starts over finds it
  await r.gw.stop();
  // The state as the earlier version saved it: one cursor, past o1.
  const ns = await Namespace.open(join(r.gw.dataDir, 'namespace'));
  const state = (await ns.getFlows<ScrubStateRecord>(keys.flowsState('scrub')))!;
  const old = { startedAt: 1_000, bucket: 'old', after: 'o1', objects: 2, bytes: 0 };
  await ns.batch([{ type: 'put', key: keys.flowsState('scrub'), value: { ...state, current: old as unknown as ScrubStateRecord['current'] } }]);
  await ns.close();

  await r.restart();
  const resumed = r.gw.logs.find((l) => l.includes('resuming an interrupted full pass'));
  t.same((JSON.parse(resumed!) as { lanes: unknown[] }).lanes, [], 'it resumes with no lane cursors: from the start');
  await waitFor('the pass to finish', async () => (await api<ReconcileStatus>(r.gw, 'GET', '/flows/status')).body.lastFullPass !== undefined, 30_000);
  const last = (await api<ReconcileStatus>(r.gw, 'GET', '/flows/status')).body.lastFullPass!;
  t.equal(last.objects, 3, 'every object counted once');
  t.equal(last.startedAt, 1_000, 'the pass keeps its start time');
  await waitFor('the replica rebuilt', async () => (await readFile(blobs.A!).catch(() => Buffer.alloc(0))).equals(data), 15_000);
  t.pass('the replica deleted before the saved place is rebuilt');
});
