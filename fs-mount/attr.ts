// What `stat` and the extended attributes show for buckets, directories,
// objects and files being written. Objects written over S3 carry no POSIX
// attributes and show as regular files (0644, owned by the gateway's user,
// mtime = the S3 LastModified); what chmod/chown/utimens set is kept in the
// record's `posix` field. User metadata is the `user.` xattr namespace.
import type { ObjectRecord, PosixAttrs } from '../tiering/index.js';
import type { Stat } from './fuse-port.js';

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const PERMS = 0o7777;

export interface Owner {
  uid: number;
  gid: number;
}

const BLKSIZE = 128 * 1024;

export function defaultPosix(kind: 'file' | 'dir', owner: Owner): PosixAttrs {
  return { mode: kind === 'dir' ? S_IFDIR | 0o755 : S_IFREG | 0o644, uid: owner.uid, gid: owner.gid };
}

/** POSIX attributes of a record, with defaults for objects written over S3. */
export function posixOf(rec: ObjectRecord, owner: Owner): PosixAttrs {
  return rec.posix ?? defaultPosix(rec.key.endsWith('/') ? 'dir' : 'file', owner);
}

export function statOf(attrs: PosixAttrs, size: number, lastModified: number, ctime = lastModified): Stat {
  const isDir = (attrs.mode & S_IFMT) === S_IFDIR;
  const mtime = attrs.mtime ?? lastModified;
  return {
    mode: attrs.mode,
    uid: attrs.uid,
    gid: attrs.gid,
    size: isDir ? 4096 : size,
    mtime,
    atime: mtime,
    ctime: Math.max(ctime, mtime),
    // 1 for directories too: find(1) then makes no leaf-count assumptions.
    nlink: 1,
    blocks: Math.ceil((isDir ? 4096 : size) / 512),
    blksize: BLKSIZE,
  };
}

export function recordStat(rec: ObjectRecord, owner: Owner): Stat {
  return statOf(posixOf(rec, owner), rec.size, rec.lastModified);
}

export function dirStat(owner: Owner, time: number, posix?: PosixAttrs): Stat {
  return statOf(posix ?? defaultPosix('dir', owner), 4096, time);
}

// ---- extended attributes ----

export const XATTR_TIER = 'user.valentine.tier';
export const XATTR_SITES = 'user.valentine.sites';
const RESERVED = 'user.valentine.';
const USER = 'user.';
/** setxattr flags (linux/xattr.h). */
export const XATTR_CREATE = 1;
export const XATTR_REPLACE = 2;
/** The S3 door's limit on user metadata (JSON bytes). */
export const MAX_META_BYTES = 8192;

/** Attributes computed from the record, read-only. */
export function systemXattr(rec: ObjectRecord, name: string): string | undefined {
  if (name === XATTR_TIER) return rec.tier;
  // Full copies by site name, then shards as site:piece (e.g. "hot,A:0,B:1,C:2").
  if (name === XATTR_SITES) return [...rec.copies, ...(rec.layout?.shards.map((sh, i) => `${sh.site}:${i}`) ?? [])].join(',');
  return undefined;
}

export type XattrName = { kind: 'meta'; key: string } | { kind: 'reserved' } | { kind: 'unsupported' };

/**
 * `user.<name>` is the S3 user metadata `x-amz-meta-<name>`; S3 header names
 * are case-insensitive, so names are kept lower-case. Other namespaces
 * (security., trusted., system.) are not stored.
 */
export function classifyXattr(name: string): XattrName {
  if (name.startsWith(RESERVED)) return { kind: 'reserved' };
  if (!name.startsWith(USER) || name.length === USER.length) return { kind: 'unsupported' };
  return { kind: 'meta', key: name.slice(USER.length).toLowerCase() };
}

/** A metadata name S3 can carry as an HTTP header name. */
export function validMetaKey(key: string): boolean {
  return /^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(key);
}

/** A metadata value S3 can carry as a header value: UTF-8 text without control characters. */
export function metaValue(value: Buffer): string | undefined {
  const s = value.toString('utf8');
  if (!Buffer.from(s, 'utf8').equals(value) || /[\x00-\x08\x0a-\x1f\x7f]/.test(s)) return undefined;
  return s;
}
