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

export type TierState = 'replicated' | 'coded' | 'stub';

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
