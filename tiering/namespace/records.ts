// The records stored in the namespace. Every record carries a version `v` so
// a later release can read what an earlier one wrote.

export interface BucketRecord {
  v: 1;
  name: string;
  created: number; // ms since epoch
}

/**
 * One run of object bytes stored as one blob (a single PUT has one segment;
 * a multipart object has one per part). Blocks of `blockSize` bytes each
 * carry a CRC32 so a read can verify a copy block by block and move to
 * another copy before serving a bad byte.
 */
export interface Segment {
  blob: string; // generated blob id
  size: number;
  md5: string; // hex
  sha256: string; // hex
  blockSize: number;
  crc32: string; // base64 of big-endian uint32 per block
}

/**
 * replicated: hot + full replicas (A, B). coded: hot copy + erasure-coded
 * shards, replicas removed. stub: shards only; a read recalls it.
 */
export type TierState = 'replicated' | 'coded' | 'stub';

/**
 * Where a coded object's bytes live: the object is cut into stripes of k
 * pieces of `pieceSize` bytes plus m parity pieces; the last stripe has
 * smaller pieces (`lastPieceSize`, zero-padded to a multiple of 8), so a shard
 * holds about size/k bytes whatever the stripe size. Shard i is the blob
 * holding piece i of every stripe, on its own site.
 */
export interface ShardLayout {
  k: number;
  m: number;
  pieceSize: number;
  lastPieceSize: number;
  stripes: number;
  /** Indexed by piece number (0..k-1 data, k..k+m-1 parity). */
  shards: { site: string; blob: string; crc32: string /* base64, big-endian uint32 per stripe */ }[];
}

/** Content headers kept with an object and returned on GET/HEAD. */
export interface ContentHeaders {
  contentType?: string;
  contentEncoding?: string;
  contentDisposition?: string;
  contentLanguage?: string;
  cacheControl?: string;
  expires?: string;
}

/**
 * POSIX attributes set through the mounted drive. Absent on objects written
 * over S3, which show as regular files (mode 0644, the gateway's owner, mtime
 * = lastModified). `mode` holds the file type bits too (S_IFREG, S_IFDIR for
 * `dir/` markers, S_IFLNK for symbolic links, whose target is `symlink`).
 */
export interface PosixAttrs {
  mode: number;
  uid: number;
  gid: number;
  /** Set by utimens/touch; cleared when new bytes commit, so mtime follows lastModified again. */
  mtime?: number; // ms
  symlink?: string;
}

export interface ObjectRecord extends ContentHeaders {
  v: 1;
  bucket: string;
  key: string;
  size: number;
  etag: string; // quoted, as S3 returns it
  lastModified: number; // ms
  meta: Record<string, string>; // user metadata, lower-case names without x-amz-meta-
  tags: Record<string, string>;
  /** A checksum the client asked for (x-amz-checksum-*), stored and returned. */
  checksum?: { algorithm: string; value: string; type: 'FULL_OBJECT' | 'COMPOSITE' };
  /** SHA-256 of the whole object when it is known (single-part writes). */
  sha256?: string;
  segments: Segment[];
  tier: TierState;
  /** Sites holding a full copy of every segment ('hot' is the hot tier). */
  copies: string[];
  /** Fewer copies than the policy asks for; FLOWS repairs it. */
  underReplicated?: boolean;
  /** Present once coded (tier coded or stub). */
  layout?: ShardLayout;
  /** Last read (ms), kept coarsely: what stubbing goes by. Defaults to lastModified. */
  lastAccess?: number;
  posix?: PosixAttrs;
}

export interface UploadRecord extends ContentHeaders {
  v: 1;
  bucket: string;
  key: string;
  uploadId: string;
  initiated: number;
  meta: Record<string, string>;
  tags: Record<string, string>;
  checksumAlgorithm?: string;
}

export interface PartRecord {
  v: 1;
  uploadId: string;
  partNumber: number;
  etag: string;
  lastModified: number;
  segment: Segment;
  copies: string[];
  checksum?: { algorithm: string; value: string };
}

/** What went wrong, as FLOWS reports it (tiering/flows/issues.ts). */
export type IssueKind =
  | 'checksum-mismatch'
  | 'missing-copy'
  | 'site-unreachable'
  | 'repair-failed'
  | 'source-changed'
  | 'source-unreadable'
  | 'stale-upload'
  | 'quota'
  | 'broken-link';

/** open → resolved (repaired, automatically) or acknowledged (by a person); seen again → open. */
export type IssueState = 'open' | 'resolved' | 'acknowledged';

/** One FLOWS issue: the same problem seen again bumps `count` and `lastSeen`. */
export interface IssueRecord {
  v: 1;
  id: string; // derived from kind + subject + site: the dedup key
  kind: IssueKind;
  /** What it concerns: "bucket/key", a workstation file, a site, an upload. */
  subject: string;
  bucket?: string;
  key?: string;
  site?: string;
  workstation?: string;
  detail: string;
  firstSeen: number;
  lastSeen: number;
  count: number;
  state: IssueState;
  resolvedAt?: number;
  acknowledgedAt?: number;
  acknowledgedBy?: string;
}

/** Which index families this namespace holds (built once at open for data written before them). */
export interface IndexesRecord {
  v: 1;
  version: number;
}

/** The reconciler's own state: the last full pass and where the current one is. */
export interface ScrubStateRecord {
  v: 1;
  /** When the schedule started counting (first start), so a new install is not scrubbed at once. */
  since: number;
  lastFullPass?: PassSummary;
  /** A full pass in progress: each of its lanes (see reconcile.ts) resumes from its cursor after a restart. */
  current?: { startedAt: number; lanes: LaneCursor[] };
}

/** How far one lane of a full pass has got: its objects up to key `after` of `bucket` are checked, `objects` and `bytes` of them. */
export interface LaneCursor {
  bucket: string;
  after?: string;
  objects: number;
  bytes: number;
}

export interface PassSummary {
  scope: string; // '' for the whole namespace, else "bucket" or "bucket/prefix"
  startedAt: number;
  finishedAt: number;
  durationMs: number;
  objects: number;
  bytes: number;
  problems: number;
  repaired: number;
  repairFailed: number;
  orphansCleared: number;
  uploadsAborted: number;
}

/** Where a workstation file is on its way in: seen → copying → stored → verified → cleared (or failed). */
export type IngestState = 'seen' | 'copying' | 'stored' | 'verified' | 'cleared' | 'failed';

export interface WorkstationFileRecord {
  v: 1;
  workstation: string;
  /** Path inside the workstation's source directory, '/'-separated. */
  path: string;
  state: IngestState;
  size: number;
  mtimeMs: number;
  /** Since when size and mtime have not changed. */
  stableSince: number;
  firstSeen: number;
  updated: number;
  bucket: string;
  key: string;
  sha256?: string;
  /** The key of the object that holds these bytes when the bucket already held them under another key (not stored again). */
  storedAs?: string;
  verifiedAt?: number;
  clearedAt?: number;
  error?: string;
}
