// The FLOWS issue log over a real LevelDB namespace on disk: dedup with
// counts, first/last seen, open → resolved → open again, acknowledgement,
// filters and cursor paging, the gauges, and that it all survives a reopen.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { Level } from 'level';
import t from 'tap';
import { IssueLog, Namespace, createFlowsMetrics, issueId } from '../../../tiering/index.js';

async function open(dir: string) {
  const namespace = await Namespace.open(join(dir, 'ns'));
  const registry = new Registry();
  const metrics = createFlowsMetrics(registry);
  const issues = await IssueLog.open(namespace, metrics);
  const gauge = async (kind: string, state: string) => {
    const m = (await registry.getSingleMetric('valentine_flows_issues')!.get()).values.find((v) => v.labels.kind === kind && v.labels.state === state);
    return m?.value ?? 0;
  };
  return { namespace, issues, gauge };
}

t.test('the same problem seen twice is one issue with a count; repaired, it resolves; seen again, it reopens', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'flows-issues-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { namespace, issues, gauge } = await open(dir);
  const input = { kind: 'checksum-mismatch' as const, subject: 'b/k', bucket: 'b', key: 'k', site: 'A', detail: 'blob x fails at 0' };
  const first = await issues.raise(input);
  t.equal(first.count, 1);
  t.equal(first.state, 'open');
  await new Promise((r) => setTimeout(r, 5));
  const second = await issues.raise({ ...input, detail: 'blob x fails at 4096' });
  t.equal(second.id, first.id, 'same id: same problem');
  t.equal(second.count, 2, 'counted twice');
  t.equal(second.firstSeen, first.firstSeen, 'first seen kept');
  t.ok(second.lastSeen > first.lastSeen, 'last seen moves');
  t.equal(second.detail, 'blob x fails at 4096', 'latest detail kept');
  await issues.raise({ ...input, site: 'B' });
  t.equal((await issues.list({}, 100)).issues.length, 2, 'another site is another issue');
  t.equal(await gauge('checksum-mismatch', 'open'), 2, 'gauge: two open');

  t.equal(await issues.resolve('checksum-mismatch', 'b/k', 'A', 'rebuilt'), true, 'resolve');
  const resolved = await issues.get(first.id);
  t.equal(resolved?.state, 'resolved');
  t.ok(resolved?.resolvedAt);
  t.equal(await issues.resolve('checksum-mismatch', 'b/k', 'A'), false, 'resolving twice is a no-op');
  t.equal(await gauge('checksum-mismatch', 'open'), 1);
  t.equal(await gauge('checksum-mismatch', 'resolved'), 1);

  const again = await issues.raise(input);
  t.equal(again.state, 'open', 'seen again after resolving: open again');
  t.equal(again.count, 3);
  t.equal(again.resolvedAt, undefined);
  await namespace.close();
});

t.test('acknowledged by a person; stays acknowledged when seen again; unknown ids are undefined', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'flows-issues-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { namespace, issues, gauge } = await open(dir);
  const rec = await issues.raise({ kind: 'repair-failed', subject: 'b/k', detail: 'two shards gone' });
  const acked = await issues.acknowledge(rec.id, 'curator');
  t.equal(acked?.state, 'acknowledged');
  t.equal(acked?.acknowledgedBy, 'curator');
  t.equal(await gauge('repair-failed', 'open'), 0);
  t.equal(await gauge('repair-failed', 'acknowledged'), 1);
  const seen = await issues.raise({ kind: 'repair-failed', subject: 'b/k', detail: 'still two shards gone' });
  t.equal(seen.state, 'acknowledged', 'a person knows: stays acknowledged');
  t.equal(seen.count, 2);
  t.equal(await issues.acknowledge('0'.repeat(24), 'x'), undefined);
  t.same(issues.openByKind(), {}, 'nothing open');
  await namespace.close();
});

t.test('filters by kind, state, workstation; cursor paging visits every match once; survives a reopen', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'flows-issues-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  let { namespace, issues } = await open(dir);
  for (let i = 0; i < 25; i++) await issues.raise({ kind: 'missing-copy', subject: `b/k${i}`, bucket: 'b', key: `k${i}`, site: 'A', detail: 'gone' });
  for (let i = 0; i < 5; i++) await issues.raise({ kind: 'source-changed', subject: `ws1:/f${i}`, workstation: 'ws1', detail: 'grew' });
  await issues.raise({ kind: 'source-unreadable', subject: 'ws2:/g', workstation: 'ws2', detail: 'EACCES' });
  await issues.resolve('missing-copy', 'b/k3', 'A');
  await namespace.close();

  ({ namespace, issues } = await open(dir));
  t.equal((await issues.list({}, 1000)).issues.length, 31, 'every issue persisted');
  t.equal((await issues.list({ kind: 'missing-copy' }, 1000)).issues.length, 25);
  t.equal((await issues.list({ kind: 'missing-copy', state: 'open' }, 1000)).issues.length, 24);
  t.equal((await issues.list({ state: 'resolved' }, 1000)).issues[0]?.subject, 'b/k3');
  t.same((await issues.list({ workstation: 'ws1' }, 1000)).issues.map((i) => i.kind), Array(5).fill('source-changed'));
  t.same(issues.openByKind(), { 'missing-copy': 24, 'source-changed': 5, 'source-unreadable': 1 }, 'open counts rebuilt at open');

  const seen = new Set<string>();
  let after: string | undefined;
  let pages = 0;
  for (;;) {
    const page = await issues.list({ kind: 'missing-copy' }, 7, after);
    pages++;
    for (const i of page.issues) {
      t.notOk(seen.has(i.id), 'no issue twice');
      seen.add(i.id);
    }
    if (!page.next) break;
    after = page.next;
  }
  t.equal(seen.size, 25, 'every match once');
  t.equal(pages, 4, '25 in pages of 7');
  t.equal(issueId('missing-copy', 'b/k0', 'A'), [...seen].find((id) => id === issueId('missing-copy', 'b/k0', 'A')), 'ids are derived from the problem');
  await namespace.close();
});

t.test('a filter on kind or state reads only the matching issues, through the index kept with each issue', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'flows-issues-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  let { namespace, issues } = await open(dir);
  for (let i = 0; i < 200; i++) await issues.raise({ kind: 'missing-copy', subject: `b/k${i}`, bucket: 'b', key: `k${i}`, site: 'A', detail: 'gone' });
  for (let i = 0; i < 3; i++) await issues.raise({ kind: 'quota', subject: `site S${i}`, site: `S${i}`, detail: 'full' });
  await issues.resolve('quota', 'site S1', 'S1');
  await issues.resolve('missing-copy', 'b/k7', 'A');

  const scanned = async (filter: Parameters<typeof issues.list>[0]) => {
    const before = namespace.entriesScanned;
    const page = await issues.list(filter, 1000);
    return { n: page.issues.length, read: namespace.entriesScanned - before, page };
  };
  const quota = await scanned({ kind: 'quota' });
  t.equal(quota.n, 3);
  t.ok(quota.read <= 3, `kind=quota read ${quota.read} entries, not the 203 issues`);
  const openQuota = await scanned({ kind: 'quota', state: 'open' });
  t.same(openQuota.page.issues.map((i) => i.subject).sort(), ['site S0', 'site S2'], 'kind and state together');
  t.ok(openQuota.read <= 2, `kind=quota&state=open read ${openQuota.read}`);
  const resolved = await scanned({ state: 'resolved' });
  t.same(resolved.page.issues.map((i) => i.subject).sort(), ['b/k7', 'site S1'], 'a resolved issue moved from the open index to the resolved one');
  t.ok(resolved.read <= 2, `state=resolved read ${resolved.read}`);
  const again = await issues.raise({ kind: 'quota', subject: 'site S1', site: 'S1', detail: 'full again' });
  t.equal(again.state, 'open');
  t.equal((await scanned({ state: 'resolved' })).n, 1, 'reopened: out of the resolved index');
  t.equal((await scanned({ kind: 'quota', state: 'open' })).n, 3, 'and back in the open one');
  await namespace.close();

  // A namespace written before the index existed: the index is built at open.
  const db = new Level<Buffer, unknown>(join(dir, 'ns'), { keyEncoding: 'buffer', valueEncoding: 'json' });
  await db.open();
  const dropped: Buffer[] = [];
  for await (const k of db.keys()) if (k[0] === 'X'.charCodeAt(0) || (k[0] === 'S'.charCodeAt(0) && k.subarray(2).toString() === 'indexes')) dropped.push(k);
  await db.batch(dropped.map((key) => ({ type: 'del' as const, key })));
  await db.close();
  t.ok(dropped.length > 600, 'index entries dropped');
  ({ namespace, issues } = await open(dir));
  t.equal((await issues.list({ kind: 'quota', state: 'open' }, 1000)).issues.length, 3, 'rebuilt at open');
  t.equal((await issues.list({ kind: 'missing-copy', state: 'open' }, 1000)).issues.length, 199);
  await namespace.close();
});
