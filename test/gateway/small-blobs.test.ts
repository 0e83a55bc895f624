// Small objects in the embedded default, against a real gateway process:
// their copies live in each local site's small-blob store (LevelDB), not as
// files; a copy deleted or damaged inside a store is found by the scrub and
// rebuilt; a site directory moved away under the running gateway stops
// taking small writes instead of filling files no one can see; coded and
// stubbed, their shards live in the stores too and recall reads them back.
import { randomBytes } from 'node:crypto';
import { access, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import t from 'tap';
import { LocalDirSite, type PassSummary } from '../../tiering/index.js';
import { readBack } from '../conformance/site-conformance.js';
import { gatewayWithConfig, type Gateway } from '../helpers/gateway.js';
import { basicAuth, blobsOn, forceTier, tierOf } from '../helpers/tiers.js';

const SMALL = 16 * 1024; // the embedded default's smallBlobBytes

async function scrub(gw: Gateway): Promise<PassSummary> {
  const res = await fetch(`${gw.adminUrl}/flows/scrub`, { method: 'POST', headers: { authorization: basicAuth, 'content-type': 'application/json' }, body: '{}' });
  if (res.status !== 200) throw new Error(`scrub: ${res.status} ${await res.text()}`);
  return (await res.json()) as PassSummary;
}

async function getBytes(s3: S3Client, bucket: string, key: string): Promise<Buffer> {
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await res.Body!.transformToByteArray());
}

/** Every blob of a stopped gateway's site, read through the site itself. */
async function storedBlobs(dataDir: string, site: string): Promise<Map<string, Buffer>> {
  const s = await LocalDirSite.open(site, join(dataDir, 'sites', site), { smallBlobBytes: SMALL });
  try {
    const out = new Map<string, Buffer>();
    for await (const id of s.list()) out.set(id, (await readBack(s, id))!);
    return out;
  } finally {
    await s.close();
  }
}

t.test('small objects live in the sites’ small-blob stores; a copy deleted or damaged there is found and rebuilt', async (t) => {
  const r = await gatewayWithConfig(t, { tiering: { codeAfter: '1h' } });
  await r.s3.send(new CreateBucketCommand({ Bucket: 'small' }));
  const bodies = [randomBytes(4096), randomBytes(SMALL), randomBytes(10)];
  for (const [i, body] of bodies.entries()) await r.s3.send(new PutObjectCommand({ Bucket: 'small', Key: `k${i}`, Body: body }));
  for (const site of ['hot', 'A', 'B']) t.same(await blobsOn(r.gw.dataDir, site), [], `${site}: no blob files`);
  await access(join(r.gw.dataDir, 'sites', 'A', 'small'));

  await r.gw.stop();
  const onA = await storedBlobs(r.gw.dataDir, 'A');
  t.same([...onA.values()].map((b) => b.length).sort((a, b) => a - b), bodies.map((b) => b.length).sort((a, b) => a - b), 'A holds one copy of each');
  // Damage through the site itself: one copy deleted, one rewritten with a byte flipped.
  const [gone, damaged] = [...onA.keys()];
  const a = await LocalDirSite.open('A', join(r.gw.dataDir, 'sites', 'A'), { smallBlobBytes: SMALL });
  await a.delete(gone!);
  const flipped = Buffer.from(onA.get(damaged!)!);
  flipped[0] = flipped[0]! ^ 0xff;
  await a.delete(damaged!);
  const w = a.createWriter(damaged!);
  await w.write(flipped);
  await w.commit();
  await a.close();
  await r.restart();

  const pass = await scrub(r.gw);
  t.equal(pass.problems, 2, 'the missing and the damaged copy found');
  t.equal(pass.repaired, 2, 'both rebuilt');
  t.equal((await scrub(r.gw)).problems, 0, 'the next pass finds all whole');
  for (const [i, body] of bodies.entries()) t.ok((await getBytes(r.s3, 'small', `k${i}`)).equals(body), `k${i} reads back`);
  await r.gw.stop();
  const repaired = await storedBlobs(r.gw.dataDir, 'A');
  t.same([...repaired.keys()].sort(), [...onA.keys()].sort(), 'A holds the same blobs again');
  for (const [id, bytes] of onA) t.ok(repaired.get(id)?.equals(bytes), `A's copy ${id.slice(0, 8)} rebuilt byte for byte`);
  await r.restart();
});

t.test('a site directory moved away while running takes no small writes; its copy is rebuilt once it is back', async (t) => {
  const r = await gatewayWithConfig(t, { tiering: { codeAfter: '1h' }, replication: { replicas: 2, minReplicas: 1 } });
  await r.s3.send(new CreateBucketCommand({ Bucket: 'away' }));
  await r.s3.send(new PutObjectCommand({ Bucket: 'away', Key: 'before', Body: randomBytes(100) }));
  const siteB = join(r.gw.dataDir, 'sites', 'B');
  await rename(siteB, `${siteB}.away`);
  const body = randomBytes(2000);
  await r.s3.send(new PutObjectCommand({ Bucket: 'away', Key: 'during', Body: body }));
  await rename(`${siteB}.away`, siteB);

  const pass = await scrub(r.gw);
  t.equal(pass.problems, 1, 'one copy missing: the write B never took');
  t.equal(pass.repaired, 1, 'rebuilt');
  t.equal((await scrub(r.gw)).problems, 0, 'then all whole');
  t.ok((await getBytes(r.s3, 'away', 'during')).equals(body), 'reads back');
});

t.test('small objects coded and stubbed: shards in the stores, no files; a read recalls them whole', async (t) => {
  const r = await gatewayWithConfig(t, { tiering: { codeAfter: '1h' } });
  await r.s3.send(new CreateBucketCommand({ Bucket: 'cold' }));
  const bodies = [randomBytes(1), randomBytes(5000), randomBytes(SMALL)];
  for (const [i, body] of bodies.entries()) await r.s3.send(new PutObjectCommand({ Bucket: 'cold', Key: `k${i}`, Body: body }));
  t.equal((await forceTier(r.gw, 'stub', 'cold')).body.changed, 3, 'all three coded and stubbed');
  for (const site of ['hot', 'A', 'B', 'C']) t.same(await blobsOn(r.gw.dataDir, site), [], `${site}: no blob files`);
  await r.gw.stop();
  for (const site of ['A', 'B', 'C']) t.equal((await storedBlobs(r.gw.dataDir, site)).size, 3, `site ${site}: one shard of each in its store`);
  await r.restart();
  for (const [i, body] of bodies.entries()) {
    t.equal(await tierOf(r.gw, 'cold', `k${i}`), 'stub');
    t.ok((await getBytes(r.s3, 'cold', `k${i}`)).equals(body), `k${i}: read from its shards byte-identical`);
  }
  t.equal((await scrub(r.gw)).problems, 0, 'a pass finds every shard whole');
});
