// The one importer of fuse-native (a native dependency hidden behind the
// small interface the mount uses). It adapts the binding's callbacks to async
// operations that return a value or throw, maps errno names to the binding's
// numbers, and hands libfuse the mount options fuse-native has no switch for:
// without big_writes the kernel sends 4 KiB writes (~17 MiB/s instead of
// ~355 MiB/s on a pass-through).
import { execFile } from 'node:child_process';
import { access, constants, readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { promisify } from 'node:util';

export interface Stat {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number; // ms
  atime: number;
  ctime: number;
  nlink: number;
  blocks: number;
  blksize: number;
}

export interface StatFs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail: number;
  namemax: number;
}

/** What a filesystem implements; throw to answer with an errno (see errors.ts). */
export interface FsOps {
  getattr(path: string): Promise<Stat>;
  readdir(path: string): Promise<string[]>;
  statfs(path: string): Promise<StatFs>;
  open(path: string, flags: number): Promise<number>;
  create(path: string, mode: number): Promise<number>;
  read(path: string, fh: number, buf: Buffer, len: number, pos: number): Promise<number>;
  write(path: string, fh: number, buf: Buffer, len: number, pos: number): Promise<number>;
  flush(path: string, fh: number): Promise<void>;
  fsync(path: string, fh: number): Promise<void>;
  release(path: string, fh: number): Promise<void>;
  truncate(path: string, size: number): Promise<void>;
  ftruncate(path: string, fh: number, size: number): Promise<void>;
  unlink(path: string): Promise<void>;
  mkdir(path: string, mode: number): Promise<void>;
  rmdir(path: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  chmod(path: string, mode: number): Promise<void>;
  chown(path: string, uid: number, gid: number): Promise<void>;
  utimens(path: string, atime: number, mtime: number): Promise<void>;
  symlink(target: string, path: string): Promise<void>;
  /** A hard link to `existing` at `path`. */
  link(existing: string, path: string): Promise<void>;
  readlink(path: string): Promise<string>;
  /** Resolve undefined when the attribute does not exist. */
  getxattr(path: string, name: string): Promise<Buffer | undefined>;
  listxattr(path: string): Promise<string[]>;
  setxattr(path: string, name: string, value: Buffer, flags: number): Promise<void>;
  removexattr(path: string, name: string): Promise<void>;
}

export interface PortOptions {
  allowOther: boolean;
  /** Per-operation deadline after which fuse-native answers ETIMEDOUT itself. */
  timeoutMs: number;
  /** Operations that may legitimately take longer (commits of large files). */
  untimed: (keyof FsOps)[];
  /** Called once per operation with its duration and errno (undefined when it succeeded). */
  observe: (op: keyof FsOps, seconds: number, errno: string | undefined, err: unknown) => void;
  /** Maps a thrown error to an errno name. */
  errnoOf: (err: unknown) => string;
}

export interface MountedPort {
  unmount(): Promise<void>;
}

const run = promisify(execFile);
const require = createRequire(import.meta.url);

type FuseCtor = {
  new (mnt: string, ops: object, opts: object): FuseInstance;
  [errno: string]: unknown;
};
interface FuseInstance {
  mount(cb: (err: Error | null) => void): void;
  unmount(cb: (err: Error | null) => void): void;
}

let loaded: FuseCtor | undefined;
function binding(): FuseCtor {
  loaded ??= require('fuse-native') as FuseCtor;
  return loaded;
}

/** Why FUSE cannot be used here, or undefined when it can. */
export async function fuseUnavailable(): Promise<string | undefined> {
  try {
    await access('/dev/fuse', constants.R_OK | constants.W_OK);
  } catch {
    return '/dev/fuse is missing or not accessible (load the fuse module, or give the container --device /dev/fuse)';
  }
  try {
    await run('fusermount', ['-V']);
  } catch {
    return 'fusermount is not installed (apt-get install fuse)';
  }
  try {
    binding();
  } catch (err) {
    return `the FUSE library could not be loaded (apt-get install libfuse2): ${(err as Error).message.split('\n')[0]}`;
  }
  return undefined;
}

/** Mount points currently listed by the kernel. */
export async function mountPoints(): Promise<Set<string>> {
  const text = await readFile('/proc/self/mounts', 'utf8').catch(() => '');
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return new Set(text.split('\n').map((l) => unescape(l.split(' ')[1] ?? '')));
}

/**
 * A mount left behind by a crashed gateway answers ENOTCONN until it is
 * unmounted: clear it. A live mount at `dir` belongs to a running process
 * and is refused rather than pulled from under it.
 */
export async function clearStaleMount(dir: string): Promise<'none' | 'cleared'> {
  const mnt = resolve(dir);
  if (!(await mountPoints()).has(mnt)) return 'none';
  const err = await stat(mnt).then(
    () => undefined,
    (e: NodeJS.ErrnoException) => e,
  );
  if (!err || (err.code !== 'ENOTCONN' && err.code !== 'EIO')) {
    throw new Error(`${mnt} is already mounted and answering; is another gateway serving it?`);
  }
  await run('fusermount', ['-uz', mnt]);
  return 'cleared';
}

export async function unmountDir(dir: string): Promise<void> {
  await run('fusermount', ['-uz', resolve(dir)]);
}

export async function mountFuse(dir: string, ops: FsOps, opts: PortOptions): Promise<MountedPort> {
  const Fuse = binding();
  const errno = (err: unknown): number => {
    const n = Fuse[opts.errnoOf(err)];
    return typeof n === 'number' ? n : -5; // EIO
  };
  // Each op: call the async implementation, time it, answer the callback once.
  type Callback = (...args: unknown[]) => void;
  const wrap =
    <A extends unknown[], R>(op: keyof FsOps, impl: (...a: A) => Promise<R>, answer: (cb: Callback, r: R) => void) =>
    (...args: [...A, Callback]) => {
      const cb = args.pop() as Callback;
      const t0 = process.hrtime.bigint();
      impl(...(args as unknown as A)).then(
        (r) => {
          opts.observe(op, Number(process.hrtime.bigint() - t0) / 1e9, undefined, undefined);
          answer(cb, r);
        },
        (err: unknown) => {
          const e = opts.errnoOf(err);
          opts.observe(op, Number(process.hrtime.bigint() - t0) / 1e9, e, err);
          cb(errno(err));
        },
      );
    };
  const ok = (cb: Callback) => cb(0);
  const value = (cb: Callback, r: unknown) => cb(0, r);
  const count = (cb: Callback, n: number) => cb(n);
  const handlers = {
    getattr: wrap('getattr', (p: string) => ops.getattr(p), value),
    readdir: wrap('readdir', (p: string) => ops.readdir(p), value),
    statfs: wrap('statfs', (p: string) => ops.statfs(p), value),
    open: wrap('open', (p: string, flags: number) => ops.open(p, flags), value),
    create: wrap('create', (p: string, mode: number) => ops.create(p, mode), value),
    read: wrap('read', (p: string, fh: number, buf: Buffer, len: number, pos: number) => ops.read(p, fh, buf, len, pos), count),
    write: wrap('write', (p: string, fh: number, buf: Buffer, len: number, pos: number) => ops.write(p, fh, buf, len, pos), count),
    flush: wrap('flush', (p: string, fh: number) => ops.flush(p, fh), ok),
    fsync: wrap('fsync', (p: string, _datasync: number, fh: number) => ops.fsync(p, fh), ok),
    release: wrap('release', (p: string, fh: number) => ops.release(p, fh), ok),
    truncate: wrap('truncate', (p: string, size: number) => ops.truncate(p, size), ok),
    ftruncate: wrap('ftruncate', (p: string, fh: number, size: number) => ops.ftruncate(p, fh, size), ok),
    unlink: wrap('unlink', (p: string) => ops.unlink(p), ok),
    mkdir: wrap('mkdir', (p: string, mode: number) => ops.mkdir(p, mode), ok),
    rmdir: wrap('rmdir', (p: string) => ops.rmdir(p), ok),
    rename: wrap('rename', (a: string, b: string) => ops.rename(a, b), ok),
    chmod: wrap('chmod', (p: string, mode: number) => ops.chmod(p, mode), ok),
    chown: wrap('chown', (p: string, uid: number, gid: number) => ops.chown(p, uid, gid), ok),
    utimens: wrap('utimens', (p: string, atime: number, mtime: number) => ops.utimens(p, atime, mtime), ok),
    symlink: wrap('symlink', (target: string, p: string) => ops.symlink(target, p), ok),
    link: wrap('link', (existing: string, p: string) => ops.link(existing, p), ok),
    readlink: wrap('readlink', (p: string) => ops.readlink(p), value),
    // fuse-native answers ENODATA for a null value.
    getxattr: wrap('getxattr', (p: string, name: string, _position: number) => ops.getxattr(p, name), (cb, v) => cb(0, v ?? null)),
    listxattr: wrap('listxattr', (p: string) => ops.listxattr(p), value),
    setxattr: wrap('setxattr', (p: string, name: string, v: Buffer, _position: number, flags: number) => ops.setxattr(p, name, Buffer.from(v), flags), ok),
    removexattr: wrap('removexattr', (p: string, name: string) => ops.removexattr(p, name), ok),
  };
  const options = [
    'fsname=valentine',
    'subtype=valentine',
    'default_permissions',
    ...(opts.allowOther ? ['allow_other'] : []),
    'big_writes',
    'max_write=131072',
    'max_read=131072',
    'atomic_o_trunc',
    // The other door can change any object at any moment: sizes and times
    // are asked for afresh rather than cached for libfuse's default second.
    'attr_timeout=0',
  ];
  const timeout: Record<string, number | false> = { default: opts.timeoutMs };
  for (const op of opts.untimed) timeout[op] = false;
  // fuse-native builds its "-o" string from a fixed set of switches; this
  // subclass supplies the whole option list instead.
  const Mounted = class extends (Fuse as unknown as new (...a: unknown[]) => FuseInstance) {
    _fuseOptions(): string {
      return `-o${options.join(',')}`;
    }
  };
  const fuse = new Mounted(resolve(dir), handlers, { timeout, mkdir: true });
  await new Promise<void>((res, rej) => fuse.mount((err) => (err ? rej(err) : res())));
  return {
    unmount: () =>
      new Promise<void>((res, rej) => {
        fuse.unmount((err) => (err ? rej(err) : res()));
      }),
  };
}
