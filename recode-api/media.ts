// Media links: the stored objects that depict a record. A link is checked to
// exist when it is made; reading shows each object's size, checksums and
// tier state as the engine holds it now, and an object deleted since shows as
// a broken link. brokenLinks() walks every link for FLOWS to report.
import { EngineError, type Engine, type TierState } from '../tiering/index.js';
import type { FieldError } from './errors.js';
import type { LinkEntry, MediaLink, RecodeStore } from './store.js';

export interface ResolvedLink extends MediaLink {
  broken: boolean;
  size?: number;
  etag?: string;
  sha256?: string;
  checksum?: { algorithm: string; value: string };
  contentType?: string;
  tier?: TierState;
  lastModified?: string;
}

/** The object a link names, or undefined when storage no longer holds it. */
async function head(engine: Engine, bucket: string, key: string) {
  try {
    return await engine.headObject(bucket, key);
  } catch (err) {
    if (err instanceof EngineError && (err.code === 'NO_SUCH_KEY' || err.code === 'NO_SUCH_BUCKET' || err.code === 'INVALID_KEY' || err.code === 'KEY_TOO_LONG' || err.code === 'INVALID_BUCKET_NAME')) return undefined;
    throw err;
  }
}

export async function resolveLinks(engine: Engine, media: readonly MediaLink[]): Promise<ResolvedLink[]> {
  return Promise.all(
    media.map(async (m): Promise<ResolvedLink> => {
      const o = await head(engine, m.bucket, m.key);
      if (!o) return { ...m, broken: true };
      return {
        ...m,
        broken: false,
        size: o.size,
        etag: o.etag,
        ...(o.sha256 !== undefined && { sha256: o.sha256 }),
        ...(o.checksum && { checksum: { algorithm: o.checksum.algorithm, value: o.checksum.value } }),
        ...(o.contentType !== undefined && { contentType: o.contentType }),
        tier: o.tier,
        lastModified: new Date(o.lastModified).toISOString(),
      };
    }),
  );
}

/** Field errors for links that name no stored object, or the same object twice. */
export async function checkLinks(engine: Engine, media: readonly MediaLink[], root = '/media'): Promise<FieldError[]> {
  const seen = new Set<string>();
  const out: FieldError[] = [];
  await Promise.all(
    media.map(async (m, i) => {
      const k = `${m.bucket}\0${m.key}`;
      if (seen.has(k)) out.push({ pointer: `${root}/${i}`, detail: `s3://${m.bucket}/${m.key} is linked twice` });
      seen.add(k);
      if (!(await head(engine, m.bucket, m.key))) out.push({ pointer: `${root}/${i}`, detail: `no stored object s3://${m.bucket}/${m.key}` });
    }),
  );
  return out.sort((a, b) => a.pointer.localeCompare(b.pointer));
}

/**
 * Links whose object is gone, in (bucket, key) order, visiting at most
 * `budget` links from after `cursor`; `next` resumes. One HEAD per distinct object.
 */
export async function brokenLinks(
  store: RecodeStore,
  engine: Engine,
  cursor: Buffer | undefined,
  budget: number,
): Promise<{ broken: LinkEntry[]; next?: Buffer }> {
  const broken: LinkEntry[] = [];
  let lastObject = '';
  let lastBroken = false;
  let visited = 0;
  let last: Buffer | undefined;
  for await (const [k, link] of store.links(cursor)) {
    if (visited === budget) return { broken, ...(last && { next: last }) };
    visited++;
    last = k;
    const obj = `${link.bucket}\0${link.key}`;
    if (obj !== lastObject) {
      lastObject = obj;
      lastBroken = (await head(engine, link.bucket, link.key)) === undefined;
    }
    if (lastBroken) broken.push(link);
  }
  return { broken };
}
