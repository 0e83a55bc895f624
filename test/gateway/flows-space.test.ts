// FLOWS quota issues against real filesystems: a gateway whose configured
// threshold is below what its disks already use reports every local site
// and the hot tier; a site on a small tmpfs fills up past the threshold and
// empties again (the issue opens and resolves itself), and a write too big
// for it fails there with ENOSPC (reported at once, resolved once the
// filesystem has grown enough to take that write).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CreateBucketCommand, DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import t from 'tap';
import type { IssueRecord } from '../../tiering/index.js';
import { gatewayWithConfig, smallFilesystem, type Gateway } from '../helpers/gateway.js';
import { basicAuth, tierOf, waitFor } from '../helpers/tiers.js';

const exec = promisify(execFile);

async function quotaIssues(gw: Gateway, state?: string): Promise<IssueRecord[]> {
  const res = await fetch(`${gw.adminUrl}/flows/issues?kind=quota${state ? `&state=${state}` : ''}`, { headers: { authorization: basicAuth } });
  return ((await res.json()) as { issues: IssueRecord[] }).issues;
}

async function siteIssue(gw: Gateway, site: string): Promise<IssueRecord | undefined> {
  return (await quotaIssues(gw)).find((i) => i.site === site);
}

t.test('a threshold below what the disks use raises one quota issue per local site and the hot tier; a sane one resolves them', async (t) => {
  const r = await gatewayWithConfig(t, { flows: { space: { maxUsed: 0.000001, every: '200ms' } } });
  await waitFor('quota issues', async () => (await quotaIssues(r.gw, 'open')).length === 4, 10_000);
  const open = await quotaIssues(r.gw, 'open');
  t.same(open.map((i) => i.site).sort(), ['A', 'B', 'C', 'hot'], 'every site on a disk, and the hot tier');
  t.match(open[0]!.detail, /% full \(.* GiB free of .* GiB\); the limit is 0\.0%/, 'the detail says how full and the limit');
  const metrics = await (await fetch(`${r.gw.adminUrl}/metrics`)).text();
  t.match(metrics, /valentine_flows_issues\{kind="quota",state="open"\} 4\n/, 'metric: open quota issues');
  await new Promise((res) => setTimeout(res, 600));
  t.equal((await quotaIssues(r.gw, 'open')).length, 4, 'seen again: still one issue per site');
  t.ok((await siteIssue(r.gw, 'A'))!.count > 1, 'with a count');

  // The same data with the default threshold (90%): the disks are fine, the issues resolve themselves.
  await r.gw.stop();
  await writeFile(join(r.dir, 'config.json'), JSON.stringify({ flows: { space: { every: '200ms' } } }));
  await r.restart();
  await waitFor('resolved', async () => (await quotaIssues(r.gw, 'resolved')).length === 4, 10_000);
  t.equal((await quotaIssues(r.gw, 'open')).length, 0, 'none open');
});

t.test('a site on a small filesystem: over the threshold opens a quota issue, freed space resolves it; ENOSPC is reported at once', async (t) => {
  const small = await smallFilesystem(t);
  if (small === undefined) return;
  const r = await gatewayWithConfig(t, {
    sites: [
      { name: 'A', type: 'local' },
      { name: 'B', type: 'local', path: small },
      { name: 'C', type: 'local' },
    ],
    replication: { replicas: 2, minReplicas: 1 },
    tiering: { codeAfter: '1h' },
    flows: { space: { maxUsed: 0.5, every: '200ms' } },
  });
  await r.s3.send(new CreateBucketCommand({ Bucket: 'small' }));
  await new Promise((res) => setTimeout(res, 500));
  t.equal(await siteIssue(r.gw, 'B'), undefined, 'an empty small site is fine');

  await r.s3.send(new PutObjectCommand({ Bucket: 'small', Key: 'big', Body: randomBytes(5 * 2 ** 20) }));
  await waitFor('quota issue for site B', async () => (await siteIssue(r.gw, 'B'))?.state === 'open', 10_000);
  t.match((await siteIssue(r.gw, 'B'))!.detail, /site B is \d+\.\d% full .*the limit is 50\.0%/, 'site B over 50%');
  t.same((await quotaIssues(r.gw, 'open')).map((i) => i.site), ['B'], 'only site B: the others have room');

  await r.s3.send(new DeleteObjectCommand({ Bucket: 'small', Key: 'big' }));
  await waitFor('resolved once the space is freed', async () => (await siteIssue(r.gw, 'B'))?.state === 'resolved', 10_000);
  t.pass('quota issue resolved itself');

  // 12 MiB cannot fit on an 8 MiB filesystem: site B fails the write (ENOSPC); the write goes on with A (minReplicas 1).
  await r.s3.send(new PutObjectCommand({ Bucket: 'small', Key: 'huge', Body: randomBytes(12 * 2 ** 20) }));
  const full = await siteIssue(r.gw, 'B');
  t.equal(full?.state, 'open', 'reported as the write fails');
  t.match(full?.detail, /a write of 12582912 bytes to site B failed: no space left on device/);
  await new Promise((res) => setTimeout(res, 800));
  t.equal((await siteIssue(r.gw, 'B'))?.state, 'open', 'still open: under the threshold again, but not room for that write');
  await exec('mount', ['-o', 'remount,size=32m', small]);
  await waitFor('resolved once the filesystem can take the write', async () => (await siteIssue(r.gw, 'B'))?.state === 'resolved', 10_000);
  t.match((await siteIssue(r.gw, 'B'))!.detail, /site B has 0\.03 GiB free/, 'resolved with how much is free');
});

t.test('a shard that does not fit on its site raises the quota issue too, and coding completes once there is room', async (t) => {
  const small = await smallFilesystem(t);
  if (small === undefined) return;
  const r = await gatewayWithConfig(t, {
    sites: [
      { name: 'A', type: 'local' },
      { name: 'B', type: 'local' },
      { name: 'C', type: 'local', path: small },
    ],
    tiering: { codeAfter: '1s', workerInterval: '200ms' },
    flows: { space: { maxUsed: 0.99, every: '200ms' } },
  });
  await r.s3.send(new CreateBucketCommand({ Bucket: 'coded' }));
  // 20 MiB codes 2+1 into two 10 MiB data shards (sites A, B) and a 10 MiB parity shard for site C's 8 MiB.
  await r.s3.send(new PutObjectCommand({ Bucket: 'coded', Key: 'big', Body: randomBytes(20 * 2 ** 20) }));
  await waitFor('quota issue for site C', async () => (await siteIssue(r.gw, 'C'))?.state === 'open', 15_000);
  t.match((await siteIssue(r.gw, 'C'))!.detail, /a write of 10485760 bytes to site C failed: no space left on device/, 'the parity shard write, with its size');
  t.equal(await tierOf(r.gw, 'coded', 'big'), 'replicated', 'the object keeps its replicas meanwhile');
  await exec('mount', ['-o', 'remount,size=32m', small]);
  await waitFor('resolved once site C can take the shard', async () => (await siteIssue(r.gw, 'C'))?.state === 'resolved', 15_000);
  await waitFor('coded', async () => (await tierOf(r.gw, 'coded', 'big')) === 'coded', 30_000);
  t.pass('quota issue resolved itself and the object is coded');
});
