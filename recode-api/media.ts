// Media links: the stored objects that depict a record. A link is checked to
// exist when it is made; reading shows each object's size, checksums and
// tier state as the engine holds it now, and an object deleted since shows as
// a broken link. brokenLinks() walks every link. Whatever a read or a walk
// finds goes to FLOWS through one LinkReporter: a `broken-link` issue per
// object that is gone, resolved once it is stored again or no longer linked.
import { EngineError, type Engine, type IssueLog, type Logger, type TierState } from '../tiering/index.js';
import type { FieldError } from './errors.js';
import type { LinkEntry, MediaLink, RecodeStore } from './store.js';

/** The part of FLOWS's issue log that RECODE reports to. */
export type LinkIssues = Pick<IssueLog, 'raise' | 'resolve' | 'list'>;

const KIND = 'broken-link';
const subjectOf = (m: { bucket: string; key: string }) => `${m.bucket}/${m.key}`;

/** Reports what RECODE finds about linked objects to FLOWS. Never throws: a read must not fail because the issue log could not be written. */
export class LinkReporter {
  constructor(
    private readonly issues: LinkIssues,
    private readonly log: Logger,
  ) {}

  /** One look at a linked object: gone raises its issue (seen again: counted), present resolves it. */
  async seen(m: MediaLink, record: string, gone: boolean): Promise<void> {
    try {
      if (gone) await this.issues.raise({ kind: KIND, subject: subjectOf(m), bucket: m.bucket, key: m.key, detail: `RECODE record ${record} links it (${m.role}) but storage no longer holds it` });
      else await this.issues.resolve(KIND, subjectOf(m), undefined, 'the object is stored again');
    } catch (err) {
      this.log.warn({ err: String(err), bucket: m.bucket, key: m.key }, 'could not record a broken-link issue');
    }
  }

  /** A walk saw every link and found the objects in `broken` gone: the other open issues are about objects no record links any more. */
  async walked(broken: ReadonlySet<string>): Promise<void> {
    try {
      for (let after: string | undefined, more = true; more; ) {
        const page = await this.issues.list({ kind: KIND }, 1000, after);
        for (const i of page.issues) if (i.state !== 'resolved' && !broken.has(i.subject)) await this.issues.resolve(KIND, i.subject, undefined, 'no record links it any more');
        after = page.next;
        more = after !== undefined;
      }
    } catch (err) {
      this.log.warn({ err: String(err) }, 'could not resolve broken-link issues');
    }
  }
}

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

/** Each link with its object as storage holds it now (reported to FLOWS as `record`'s links when a reporter is given). */
export async function resolveLinks(engine: Engine, media: readonly MediaLink[], report?: { to: LinkReporter; record: string }): Promise<ResolvedLink[]> {
  return Promise.all(
    media.map(async (m): Promise<ResolvedLink> => {
      const o = await head(engine, m.bucket, m.key);
      await report?.to.seen(m, report.record, o === undefined);
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
 * `budget` links from after `cursor`; `next` resumes. One HEAD per distinct
 * object, each reported; a walk over every link in one call also resolves
 * the issues of objects no longer linked.
 */
export async function brokenLinks(
  store: RecodeStore,
  engine: Engine,
  cursor: Buffer | undefined,
  budget: number,
  report?: LinkReporter,
): Promise<{ broken: LinkEntry[]; next?: Buffer }> {
  const broken: LinkEntry[] = [];
  const gone = new Set<string>();
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
      if (lastBroken) gone.add(subjectOf(link));
      await report?.seen(link, link.record, lastBroken);
    }
    if (lastBroken) broken.push(link);
  }
  if (cursor === undefined) await report?.walked(gone);
  return { broken };
}
