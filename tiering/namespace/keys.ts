// Every key family in the namespace, and the one builder for each. No other
// file concatenates key bytes. Keys are byte strings compared bytewise by
// LevelDB, so object keys sort in UTF-8 binary order as S3 lists them.
//
//   B \0 <bucket>                                 bucket record
//   O \0 <bucket> \0 <key>                        object record
//   U \0 <bucket> \0 <key> \0 <uploadId>          multipart upload record
//   P \0 <uploadId> \0 <part number, 5 digits>    uploaded part record
//   T \0 <written at, ms, 15 digits> \0 <bucket> \0 <key>
//                                                 replicated object waiting to be coded
//   H \0 <last access, ms, 15 digits> \0 <bucket> \0 <key>
//                                                 coded object with a hot copy (stub candidates, least recently read first)
//   D \0 <bucket> \0 <sha256, hex> \0 <key>       object with that whole-object SHA-256 (FLOWS dedup)
//   F \0 <issue id>                               FLOWS issue
//   X \0 <facet> \0 <issue id>                     FLOWS issue index: one entry per facet of an issue
//                                                 ("kind=quota", "state=open", "kind=quota,state=open",
//                                                 "workstation=<name>", "bucket=<name>"), so a filter reads only its matches
//   W \0 <workstation> \0 <path in its source>    FLOWS ingest state of one workstation file
//   S \0 <name>                                   FLOWS singleton state (the reconciler's: "scrub"; the
//                                                 namespace's own: "indexes", which index families are built)
//
// Bucket names cannot hold NUL, so "<bucket> \0" always ends the bucket part;
// object keys may hold any UTF-8, NUL included, and still sort correctly
// because they come last.

const SEP = 0;

export type TierQueue = 'T' | 'H';

function build(family: string, ...parts: (string | Buffer)[]): Buffer {
  const bufs: Buffer[] = [Buffer.from(family, 'latin1')];
  for (const p of parts) bufs.push(Buffer.of(SEP), typeof p === 'string' ? Buffer.from(p, 'utf8') : p);
  return Buffer.concat(bufs);
}

export const keys = {
  bucket: (bucket: string) => build('B', bucket),
  bucketsStart: () => build('B', ''),
  bucketsEnd: () => Buffer.from('B\x01', 'latin1'),

  object: (bucket: string, key: string) => build('O', bucket, key),
  /** Where a listing of `bucket` from `prefix` on begins. */
  objectsFrom: (bucket: string, prefix: string) => build('O', bucket, prefix),
  /** Exclusive end of every object key in `bucket`. */
  objectsEnd: (bucket: string) => Buffer.concat([build('O', bucket), Buffer.of(1)]),
  /** Every object record in every bucket lies in [allObjectsStart, allObjectsEnd). */
  allObjectsStart: () => Buffer.from('O\x00', 'latin1'),
  allObjectsEnd: () => Buffer.from('O\x01', 'latin1'),
  /** The object key inside an object-record key. */
  objectKeyOf: (bucket: string, k: Buffer) => k.subarray(Buffer.byteLength(bucket) + 3).toString('utf8'),

  upload: (bucket: string, key: string, uploadId: string) => build('U', bucket, key, uploadId),
  uploadsFrom: (bucket: string, prefix: string) => build('U', bucket, prefix),
  uploadsEnd: (bucket: string) => Buffer.concat([build('U', bucket), Buffer.of(1)]),

  /** Tier queues: T (to code, by write time) and H (evictable hot copies, by last access). */
  tierQueue: (family: TierQueue, at: number, bucket: string, key: string) => build(family, String(Math.max(0, Math.floor(at))).padStart(15, '0'), bucket, key),
  tierQueueStart: (family: TierQueue) => build(family, ''),
  tierQueueEnd: (family: TierQueue) => Buffer.from(`${family}\x01`, 'latin1'),
  /** Entries of `family` with a time before `at` lie below this key. */
  tierQueueBefore: (family: TierQueue, at: number) => build(family, String(Math.max(0, Math.floor(at))).padStart(15, '0')),
  parseTierQueue: (k: Buffer): { at: number; bucket: string; key: string } => {
    const at = Number(k.subarray(2, 17).toString('latin1'));
    const sep = k.indexOf(SEP, 18);
    return { at, bucket: k.subarray(18, sep).toString('utf8'), key: k.subarray(sep + 1).toString('utf8') };
  },

  /** Objects of `bucket` holding bytes with this SHA-256 lie in [sha256Start, afterPrefix(sha256Start)). */
  sha256: (bucket: string, sha256: string, key: string) => build('D', bucket, sha256, key),
  sha256Start: (bucket: string, sha256: string) => build('D', bucket, sha256, ''),
  /** The object key inside a D key. */
  sha256KeyOf: (bucket: string, k: Buffer) => k.subarray(Buffer.byteLength(bucket) + 64 + 4).toString('utf8'),

  issue: (id: string) => build('F', id),
  issueIndex: (facet: string, id: string) => build('X', facet, id),
  issueIndexStart: (facet: string) => build('X', facet, ''),
  issueIndexEnd: (facet: string) => Buffer.concat([build('X', facet), Buffer.of(1)]),
  /** The issue id inside an X key (ids are 24 hex digits, last). */
  issueIdOf: (k: Buffer) => k.subarray(k.length - 24).toString('latin1'),
  issuesStart: () => build('F', ''),
  issuesEnd: () => Buffer.from('F\x01', 'latin1'),
  flowsState: (name: string) => build('S', name),
  workstationFile: (workstation: string, path: string) => build('W', workstation, path),
  workstationFilesStart: (workstation: string) => build('W', workstation, ''),
  workstationFilesEnd: (workstation: string) => Buffer.concat([build('W', workstation), Buffer.of(1)]),

  part: (uploadId: string, partNumber: number) => build('P', uploadId, String(partNumber).padStart(5, '0')),
  partsStart: (uploadId: string) => build('P', uploadId, ''),
  partsEnd: (uploadId: string) => Buffer.concat([build('P', uploadId), Buffer.of(1)]),
};

/**
 * The smallest byte string greater than every string that starts with
 * `prefix`: used to skip a whole CommonPrefix in one seek. The last byte of
 * UTF-8 text is never 0xFF, so incrementing it cannot overflow.
 */
export function afterPrefix(prefix: Buffer): Buffer {
  const out = Buffer.from(prefix);
  out[out.length - 1] = (out[out.length - 1] ?? 0) + 1;
  return out;
}
