// A minimal pass-through FUSE filesystem over a local directory, through the
// same fuse-native port and mount options as the gateway's drive: the
// ceiling for this binding in bench/mount.ts. Run as a child process:
//   node dist/bench/passthrough-fs.js SOURCE_DIR MOUNT_DIR
// prints {"ready":true} once mounted; SIGTERM unmounts.
import { constants } from 'node:fs';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { mountFuse, type FsOps, type Stat } from '../fs-mount/index.js';

const [source, mnt] = process.argv.slice(2);
if (!source || !mnt) {
  process.stderr.write('usage: node dist/bench/passthrough-fs.js SOURCE_DIR MOUNT_DIR\n');
  process.exit(2);
}
const real = (p: string) => join(source, p);
const files = new Map<number, fs.FileHandle>();
let next = 1;
const handle = (fh: number) => {
  const h = files.get(fh);
  if (!h) throw Object.assign(new Error('bad fh'), { code: 'EBADF' });
  return h;
};
const toStat = (s: import('node:fs').Stats): Stat => ({
  mode: s.mode, uid: s.uid, gid: s.gid, size: s.size, mtime: s.mtimeMs, atime: s.atimeMs, ctime: s.ctimeMs, nlink: s.nlink, blocks: s.blocks, blksize: s.blksize,
});
const keep = (h: fs.FileHandle) => {
  const fh = next++;
  files.set(fh, h);
  return fh;
};

const ops: FsOps = {
  getattr: async (p) => toStat(await fs.lstat(real(p))),
  readdir: async (p) => ['.', '..', ...(await fs.readdir(real(p)))],
  statfs: async (p) => {
    const s = await fs.statfs(real(p));
    return { bsize: s.bsize, frsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree, favail: s.ffree, namemax: 255 };
  },
  open: async (p, flags) => keep(await fs.open(real(p), flags & ~constants.O_CREAT)),
  create: async (p, mode) => keep(await fs.open(real(p), constants.O_CREAT | constants.O_RDWR | constants.O_TRUNC, mode)),
  read: async (_p, fh, buf, len, pos) => (await handle(fh).read(buf, 0, len, pos)).bytesRead,
  write: async (_p, fh, buf, len, pos) => (await handle(fh).write(buf, 0, len, pos)).bytesWritten,
  flush: async () => {},
  fsync: async (_p, fh) => handle(fh).sync(),
  release: async (_p, fh) => {
    const h = handle(fh);
    files.delete(fh);
    await h.close();
  },
  truncate: (p, size) => fs.truncate(real(p), size),
  ftruncate: (_p, fh, size) => handle(fh).truncate(size),
  unlink: (p) => fs.unlink(real(p)),
  mkdir: async (p, mode) => void (await fs.mkdir(real(p), mode)),
  rmdir: (p) => fs.rmdir(real(p)),
  rename: (a, b) => fs.rename(real(a), real(b)),
  chmod: (p, mode) => fs.chmod(real(p), mode),
  chown: (p, uid, gid) => fs.lchown(real(p), uid, gid),
  utimens: (p, atime, mtime) => fs.lutimes(real(p), atime / 1000, mtime / 1000),
  symlink: (target, p) => fs.symlink(target, real(p)),
  link: (a, b) => fs.link(real(a), real(b)),
  readlink: (p) => fs.readlink(real(p)),
  getxattr: async () => undefined,
  listxattr: async () => [],
  setxattr: async () => {
    throw Object.assign(new Error('no xattrs'), { code: 'EOPNOTSUPP' });
  },
  removexattr: async () => {
    throw Object.assign(new Error('no xattrs'), { code: 'ENODATA' });
  },
};

const port = await mountFuse(mnt, ops, {
  allowOther: false,
  timeoutMs: 30_000,
  untimed: ['flush', 'fsync', 'release'],
  observe: () => {},
  errnoOf: (err) => {
    const code = (err as NodeJS.ErrnoException).code;
    return typeof code === 'string' ? code : 'EIO';
  },
});
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
const stop = () => void port.unmount().finally(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
