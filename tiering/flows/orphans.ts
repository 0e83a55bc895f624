// Clearing the storage side of ingest leftovers, once per full pass:
//   - multipart uploads abandoned for longer than uploadMaxAge are aborted
//     (their parts go with them);
//   - temp files of writes older than tempMaxAge are removed from each site;
//   - blobs no record points to are deleted, but only once they have been
//     seen unreferenced for orphanGrace: a write in flight commits its blobs
//     before its record, so a blob seen once may be about to be referenced.
// Sites that are down are skipped.
import type { Engine } from '../engine.js';
import type { Logger } from '../log.js';
import type { Namespace } from '../namespace/namespace.js';
import type { Site } from '../sites/site.js';
import type { IssueLog } from './issues.js';
import type { FlowsMetrics } from './metrics.js';

export interface SweepParts {
  engine: Engine;
  namespace: Namespace;
  hot: Site;
  sites: Site[];
  issues: IssueLog;
  metrics: FlowsMetrics;
  log: Logger;
  options: { orphanGraceMs: number; uploadMaxAgeMs: number; tempMaxAgeMs: number };
  down: ReadonlySet<string>;
  /** "site/blob" → when it was first seen unreferenced; kept by the caller between passes. */
  orphanSeen: Map<string, number>;
}

export async function sweepStorage(p: SweepParts): Promise<{ orphansCleared: number; uploadsAborted: number; tempCleared: number }> {
  const uploadsAborted = await abortStaleUploads(p);
  let tempCleared = 0;
  const up = [p.hot, ...p.sites].filter((s) => !p.down.has(s.name));
  for (const site of up) tempCleared += await site.clearStaleTemp(p.options.tempMaxAgeMs).catch(() => 0);
  const orphansCleared = await clearOrphans(p, up);
  return { orphansCleared, uploadsAborted, tempCleared };
}

async function abortStaleUploads(p: SweepParts): Promise<number> {
  const cutoff = Date.now() - p.options.uploadMaxAgeMs;
  let n = 0;
  for (const b of await p.engine.listBuckets()) {
    for (const up of await p.namespace.listUploads(b.name, '', 100_000)) {
      if (up.initiated > cutoff) continue;
      const subject = `${up.bucket}/${up.key} upload ${up.uploadId}`;
      await p.issues.raise({
        kind: 'stale-upload',
        subject,
        bucket: up.bucket,
        key: up.key,
        detail: `multipart upload started ${new Date(up.initiated).toISOString()} was never completed`,
      });
      try {
        await p.engine.abortUpload(up.bucket, up.key, up.uploadId);
        n++;
        p.metrics.uploadsAborted.inc();
        await p.issues.resolve('stale-upload', subject, undefined, 'aborted; its parts were deleted');
      } catch (err) {
        if ((err as { code?: string }).code === 'NO_SUCH_UPLOAD') await p.issues.resolve('stale-upload', subject, undefined, 'completed or aborted meanwhile');
        else p.log.warn({ subject, err: String(err) }, 'could not abort a stale upload');
      }
    }
  }
  return n;
}

/**
 * The blobs each site's records point to: object copies and shards, and
 * parts of uploads in progress. Per site, so a replica left behind on a site
 * the record no longer lists (a delete that failed after coding) is an
 * orphan even though the same blob id is still held in the hot tier.
 */
async function referencedBlobs(p: SweepParts): Promise<Map<string, Set<string>>> {
  const bySite = new Map<string, Set<string>>();
  const add = (site: string, blob: string) => {
    let ids = bySite.get(site);
    if (!ids) bySite.set(site, (ids = new Set()));
    ids.add(blob);
  };
  for await (const rec of p.namespace.allObjects()) {
    for (const seg of rec.segments) for (const site of rec.copies) add(site, seg.blob);
    for (const sh of rec.layout?.shards ?? []) add(sh.site, sh.blob);
  }
  for (const b of await p.engine.listBuckets()) {
    for (const up of await p.namespace.listUploads(b.name, '', 100_000)) {
      for (const part of await p.namespace.listParts(up.uploadId)) for (const site of part.copies) add(site, part.segment.blob);
    }
  }
  return bySite;
}

async function clearOrphans(p: SweepParts, sites: Site[]): Promise<number> {
  // List first, then read the namespace: a blob listed whose record commits
  // after the scan passed its key is caught by the grace period.
  const listed: { site: Site; blobs: string[] }[] = [];
  for (const site of sites) {
    const blobs: string[] = [];
    listed.push({ site, blobs });
    try {
      for await (const blob of site.list()) blobs.push(blob);
    } catch (err) {
      p.log.warn({ site: site.name, err: String(err) }, 'could not list a site for orphans');
    }
  }
  const referenced = await referencedBlobs(p);
  const now = Date.now();
  const stillOrphan = new Set<string>();
  let cleared = 0;
  for (const { site, blobs } of listed) {
    const held = referenced.get(site.name) ?? new Set<string>();
    for (const blob of blobs) {
      if (held.has(blob)) continue;
      const id = `${site.name}/${blob}`;
      stillOrphan.add(id);
      const since = p.orphanSeen.get(id);
      if (since === undefined) {
        p.orphanSeen.set(id, now);
        continue;
      }
      if (now - since < p.options.orphanGraceMs) continue;
      try {
        await site.delete(blob);
        cleared++;
        p.orphanSeen.delete(id);
        p.metrics.orphansCleared.inc({ site: site.name });
      } catch (err) {
        p.log.warn({ site: site.name, blob, err: String(err) }, 'could not delete an orphan blob');
      }
    }
  }
  for (const id of p.orphanSeen.keys()) if (!stillOrphan.has(id)) p.orphanSeen.delete(id);
  if (cleared > 0) p.log.info({ cleared }, 'orphan blobs cleared');
  return cleared;
}
