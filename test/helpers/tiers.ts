// Helpers for tiering tests: the tier state an object reports over S3, the
// admin route that forces transitions, waiting for a state, and what the
// local sites hold on disk.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ACCESS_KEY, SECRET_KEY, type Gateway } from './gateway.js';
import { signedHeaders } from './sign.js';

/** The object's headers from a signed HEAD (x-valentine-tier, x-amz-restore…). */
export async function headRaw(gw: Gateway, bucket: string, key: string): Promise<Headers> {
  const url = `${gw.s3Url}/${bucket}/${encodeURIComponent(key)}`;
  const res = await fetch(url, { method: 'HEAD', headers: await signedHeaders({ method: 'HEAD', url }) });
  if (res.status !== 200) throw new Error(`HEAD ${bucket}/${key}: ${res.status}`);
  return res.headers;
}

export async function tierOf(gw: Gateway, bucket: string, key: string): Promise<string> {
  return (await headRaw(gw, bucket, key)).get('x-valentine-tier') ?? 'none';
}

export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function waitForTier(gw: Gateway, bucket: string, keys: string[], tier: string, timeoutMs = 90_000): Promise<void> {
  await waitFor(`${keys.length} objects to be ${tier}`, async () => (await Promise.all(keys.map((k) => tierOf(gw, bucket, k)))).every((s) => s === tier), timeoutMs);
}

export const basicAuth = `Basic ${Buffer.from(`${ACCESS_KEY}:${SECRET_KEY}`).toString('base64')}`;

/** POST /admin/tier/ACTION on the gateway's admin listener. */
export async function forceTier(gw: Gateway, action: 'code' | 'stub' | 'recall', bucket: string, path = ''): Promise<{ status: number; body: { matched: number; changed: number; failed: unknown[] } }> {
  const res = await fetch(`${gw.adminUrl}/admin/tier/${action}`, {
    method: 'POST',
    headers: { authorization: basicAuth, 'content-type': 'application/json' },
    body: JSON.stringify({ bucket, path }),
  });
  return { status: res.status, body: (await res.json()) as { matched: number; changed: number; failed: unknown[] } };
}

/** Path and size of every committed blob a local site holds ('hot' or a site name). */
export async function blobsOn(dataDir: string, site: string): Promise<{ path: string; size: number }[]> {
  const root = site === 'hot' ? join(dataDir, 'hot', 'blobs') : join(dataDir, 'sites', site, 'blobs');
  const out: { path: string; size: number }[] = [];
  for (const shard of await readdir(root)) {
    for (const name of await readdir(join(root, shard))) {
      const path = join(root, shard, name);
      out.push({ path, size: (await stat(path)).size });
    }
  }
  return out;
}

export async function blobSizes(dataDir: string, site: string): Promise<number[]> {
  return (await blobsOn(dataDir, site)).map((b) => b.size).sort((a, b) => a - b);
}
