// Crash safety of tier transitions: SIGKILL the gateway while the worker is
// coding large objects and again while it is evicting hot copies. After each
// restart on the same data directory every object reads back byte-identical,
// no temp file survives, and the worker carries on to the end state.
import { randomBytes } from 'node:crypto';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import t from 'tap';
import { removeDir, s3Client, startGateway, tempDir, type Gateway } from '../helpers/gateway.js';
import { waitFor, waitForTier } from '../helpers/tiers.js';

const SIZE = 48 * 2 ** 20;
const KEYS = ['a', 'b', 'c'];

async function readBack(s3: S3Client, key: string): Promise<Buffer> {
  const res = await s3.send(new GetObjectCommand({ Bucket: 'crash', Key: key }));
  return Buffer.from(await res.Body!.transformToByteArray());
}

async function tierCount(gw: Gateway, state: string): Promise<number> {
  const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`valentine_tier_objects{state="${state}"} `));
  return Number(line?.split(' ')[1] ?? 0);
}

/** Temp files of writes in progress (the restarted worker may already have new ones of its own). */
async function tmpFiles(dataDir: string): Promise<Set<string>> {
  const out = new Set<string>();
  for (const dir of [join(dataDir, 'hot', 'tmp'), ...['A', 'B', 'C'].map((s) => join(dataDir, 'sites', s, 'tmp'))]) {
    for (const name of await readdir(dir)) out.add(join(dir, name));
  }
  return out;
}

async function leftOver(before: Set<string>, dataDir: string): Promise<string[]> {
  const now = await tmpFiles(dataDir);
  return [...before].filter((p) => now.has(p));
}

t.test('kill -9 during coding and during eviction loses nothing; the worker resumes', async (t) => {
  const dir = await tempDir();
  const config = join(dir, 'config.json');
  await writeFile(config, JSON.stringify({ tiering: { workerInterval: '50ms' } }));
  const dataDir = join(dir, 'data');
  const start = (codeAfter: string, stubAfter: string) =>
    startGateway({ dataDir, args: ['--config', config, '--code-after', codeAfter, '--stub-after', stubAfter] });
  let gw: Gateway = await start('1s', '1h');
  let s3 = s3Client(gw);
  t.teardown(async () => {
    s3.destroy();
    await gw.stop();
    await removeDir(dir);
  });
  await s3.send(new CreateBucketCommand({ Bucket: 'crash' }));
  const data = new Map(KEYS.map((k) => [k, randomBytes(SIZE)]));
  for (const [k, d] of data) await s3.send(new PutObjectCommand({ Bucket: 'crash', Key: k, Body: d }));

  // Kill once the first object is coded and while the others are being coded.
  await waitFor('the first object to be coded', async () => (await tierCount(gw, 'coded')) >= 1, 90_000);
  const codedAtKill = await tierCount(gw, 'coded');
  await gw.kill();
  const tmpAtKill = await tmpFiles(dataDir);
  s3.destroy();
  t.ok(codedAtKill < KEYS.length, `killed while coding (${codedAtKill} of ${KEYS.length} coded)`);

  gw = await start('1s', '1h');
  s3 = s3Client(gw);
  t.same(await leftOver(tmpAtKill, dataDir), [], 'no temp file of the killed process survives the restart');
  for (const [k, d] of data) t.ok((await readBack(s3, k)).equals(d), `${k} intact after the crash`);
  await waitForTier(gw, 'crash', KEYS, 'coded', 120_000);
  t.pass('the worker finished coding after the restart');
  await gw.stop();
  s3.destroy();

  // Now evict: every object becomes a stub a second after its last read.
  gw = await start('1s', '1s');
  s3 = s3Client(gw);
  await waitFor('eviction to begin', async () => (await tierCount(gw, 'stub')) >= 1, 60_000);
  await gw.kill();
  const tmpAtEvictKill = await tmpFiles(dataDir);
  s3.destroy();
  t.pass('killed as eviction began');

  gw = await start('1s', '1s');
  s3 = s3Client(gw);
  t.same(await leftOver(tmpAtEvictKill, dataDir), [], 'no temp file of the killed process survives the restart');
  await waitForTier(gw, 'crash', KEYS, 'stub', 90_000);
  t.pass('the worker finished evicting after the restart');
  for (const [k, d] of data) t.ok((await readBack(s3, k)).equals(d), `${k} recalled intact from its shards`);
});
