// A Valentine whose site B lives in a bucket of a second Valentine, reached
// over S3: what a client PUTs comes back byte-identical, and site B's copy
// is there in the remote bucket, as a whole object under the site's prefix.
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import t from 'tap';
import { ACCESS_KEY, SECRET_KEY, removeDir, s3Client, startGateway, tempDir } from '../helpers/gateway.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

t.test('site B on a second Valentine', async (t) => {
  const remote = await startGateway();
  t.teardown(async () => {
    await remote.stop();
    await removeDir(remote.dataDir);
  });
  const remoteClient = s3Client(remote);
  t.teardown(() => remoteClient.destroy());
  await remoteClient.send(new CreateBucketCommand({ Bucket: 'dc2' }));

  const dir = await tempDir();
  t.teardown(() => removeDir(dir));
  const config = join(dir, 'valentine.json');
  await writeFile(
    config,
    JSON.stringify({
      sites: [
        { name: 'A', type: 'local' },
        { name: 'B', type: 's3', endpoint: remote.s3Url, bucket: 'dc2', prefix: 'valentine/b/', accessKey: ACCESS_KEY, secretKeyEnv: 'SITE_B_SECRET' },
        { name: 'C', type: 'local' },
      ],
    }),
  );
  const gw = await startGateway({ dataDir: join(dir, 'data'), args: ['--config', config], env: { SITE_B_SECRET: SECRET_KEY } });
  t.teardown(() => gw.stop());
  const client = s3Client(gw);
  t.teardown(() => client.destroy());

  await client.send(new CreateBucketCommand({ Bucket: 'specimens' }));
  const objects = { 'small.jpg': randomBytes(150_000), 'scan/large.tif': randomBytes(20 * 2 ** 20 + 123) };
  for (const [key, body] of Object.entries(objects)) {
    await client.send(new PutObjectCommand({ Bucket: 'specimens', Key: key, Body: body }));
  }
  for (const [key, body] of Object.entries(objects)) {
    const got = await client.send(new GetObjectCommand({ Bucket: 'specimens', Key: key }));
    t.equal(sha(await got.Body!.transformToByteArray()), sha(body), `${key} reads back byte-identical`);
  }

  const listing = await remoteClient.send(new ListObjectsV2Command({ Bucket: 'dc2', Prefix: 'valentine/b/' }));
  const keys = (listing.Contents ?? []).map((o) => o.Key!);
  t.equal(keys.length, 2, 'one blob per object in the remote bucket');
  t.ok(keys.every((k) => /^valentine\/b\/blobs\/[0-9a-f]{2}\/[0-9a-f]{32}$/.test(k)), `named by blob id under the prefix: ${keys.join(', ')}`);
  const remoteCopies = await Promise.all(
    keys.map(async (Key) => sha(await (await remoteClient.send(new GetObjectCommand({ Bucket: 'dc2', Key }))).Body!.transformToByteArray())),
  );
  t.same(remoteCopies.sort(), Object.values(objects).map(sha).sort(), "the remote holds each object's bytes in full");

  const ready = await fetch(`${gw.adminUrl}/readyz`);
  t.same(((await ready.json()) as { sites: unknown }).sites, { hot: true, A: true, B: true, C: true }, '/readyz: the remote site is up');

  // The second Valentine goes away: site B is down, reads carry on from the
  // hot tier, a write that needs two replicas is refused cleanly.
  await remote.stop();
  const down = await fetch(`${gw.adminUrl}/readyz`);
  t.equal(down.status, 503, '/readyz: not ready');
  t.same(((await down.json()) as { sites: unknown }).sites, { hot: true, A: true, B: false, C: true }, 'and names site B');
  const got = await client.send(new GetObjectCommand({ Bucket: 'specimens', Key: 'small.jpg' }));
  t.equal(sha(await got.Body!.transformToByteArray()), sha(objects['small.jpg']), 'reads still work');
  const started = Date.now();
  await t.rejects(client.send(new PutObjectCommand({ Bucket: 'specimens', Key: 'new.jpg', Body: randomBytes(1000) })), { name: 'ServiceUnavailable' }, 'a write is refused: 503');
  t.ok(Date.now() - started < 5000, `promptly (${Date.now() - started} ms)`);
});
