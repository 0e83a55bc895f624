// The shipped Grafana dashboard against a running gateway: /metrics passes
// `promtool check metrics`, and every metric the dashboard queries is one
// the gateway exports.
import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import t from 'tap';
import { ROOT, removeDir, s3Client, startGateway, tempDir } from '../helpers/gateway.js';
import { basicAuth, forceTier } from '../helpers/tiers.js';

interface Panel {
  type: string;
  title: string;
  targets?: { expr: string }[];
}

function promtool(input: string): Promise<{ code: number; out: string }> {
  return new Promise((res, rej) => {
    const p = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', rej);
    p.on('close', (code) => res({ code: code ?? -1, out }));
    p.stdin.end(input);
  });
}

t.test('the dashboard imports as is and queries only metrics a running gateway exports; promtool accepts /metrics', async (t) => {
  const dash = JSON.parse(await readFile(join(ROOT, 'docs/grafana/valentine-dashboard.json'), 'utf8')) as { uid: string; panels: Panel[]; templating: unknown };
  t.ok(dash.uid, 'has a uid');
  const rows = dash.panels.filter((p) => p.type === 'row').map((p) => p.title);
  t.same(rows, ['S3 traffic and latency', 'Protection', 'Recall', 'Sites', 'FLOWS', 'Mount'], 'the rows operators look for');

  const dir = await tempDir();
  const src = join(dir, 'ws');
  await mkdir(src);
  await writeFile(join(src, 'a.tif'), 'x'.repeat(1000));
  const config = join(dir, 'config.json');
  await writeFile(config, JSON.stringify({ flows: { ingestInterval: '100ms', workstations: [{ name: 'cam', source: src, bucket: 'imaging', settle: '100ms' }] } }));
  const gw = await startGateway({ dataDir: join(dir, 'data'), args: ['--config', config] });
  const s3 = s3Client(gw);
  t.teardown(async () => {
    s3.destroy();
    await gw.stop();
    await removeDir(dir);
  });
  // Some traffic so labelled series exist: S3 calls, a coded object read as a stub (recall), a scrub.
  await s3.send(new CreateBucketCommand({ Bucket: 'dash' }));
  await s3.send(new PutObjectCommand({ Bucket: 'dash', Key: 'k', Body: 'hello dashboard' }));
  await forceTier(gw, 'stub', 'dash', 'k');
  await (await s3.send(new GetObjectCommand({ Bucket: 'dash', Key: 'k' }))).Body!.transformToString();
  await fetch(`${gw.adminUrl}/flows/scrub`, { method: 'POST', headers: { authorization: basicAuth, 'content-type': 'application/json' }, body: '{}' });

  const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  const checked = await promtool(text);
  t.equal(checked.code, 0, `promtool check metrics: ${checked.out.trim() || 'clean'}`);

  const families = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
  const queried = new Set<string>();
  for (const p of dash.panels) for (const target of p.targets ?? []) for (const m of target.expr.matchAll(/valentine_[a-z0-9_]+/g)) queried.add(m[0].replace(/_(bucket|sum|count)$/, ''));
  t.ok(queried.size >= 30, `${queried.size} metrics queried`);
  for (const name of [...queried].sort()) t.ok(families.has(name), `${name} is exported`);
});
