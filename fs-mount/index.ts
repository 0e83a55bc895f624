// The mounted drive: mount({ engine, dir, ... }) serves the engine's
// namespace as a FUSE filesystem until close(). Writes commit on close
// through the same write path as an S3 PUT, so either door reads what the
// other wrote at once.
import { mkdir, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Registry } from 'prom-client';
import type { Engine, Logger } from '../tiering/index.js';
import { errnoOf } from './errors.js';
import { clearStaleMount, fuseUnavailable, mountFuse, mountPoints } from './fuse-port.js';
import { createMountMetrics } from './metrics.js';
import { MountedFs } from './operations.js';

export { fuseUnavailable, mountFuse, type FsOps, type Stat, type StatFs } from './fuse-port.js';

export interface MountDeps {
  engine: Engine;
  dir: string;
  /** Scratch space for files being written; emptied at mount (leftovers of a crash were never committed). */
  tmpDir: string;
  allowOther: boolean;
  log: Logger;
  registry: Registry;
  /** fuse-native's own per-operation timeout (ETIMEDOUT); reads answer EIO a little before it. */
  timeoutMs?: number;
}

export interface Mount {
  dir: string;
  /** Commit what open files hold, then unmount. */
  close(): Promise<void>;
}

export class MountUnavailableError extends Error {
  constructor(reason: string) {
    super(`FUSE is not available: ${reason}`);
    this.name = 'MountUnavailableError';
  }
}

export async function mount(deps: MountDeps): Promise<Mount> {
  const why = await fuseUnavailable();
  if (why) throw new MountUnavailableError(why);
  if ((await clearStaleMount(deps.dir)) === 'cleared') deps.log.warn({ dir: deps.dir }, 'cleared a stale mount left by an earlier run');
  await mkdir(deps.dir, { recursive: true });
  await rm(deps.tmpDir, { recursive: true, force: true });
  await mkdir(deps.tmpDir, { recursive: true });
  const metrics = createMountMetrics(deps.registry);
  const timeoutMs = deps.timeoutMs ?? 30_000;
  const fs = new MountedFs({
    engine: deps.engine,
    tmpDir: deps.tmpDir,
    owner: { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 },
    log: deps.log,
    metrics,
    readDeadlineMs: Math.max(timeoutMs - 5_000, 1_000),
  });
  const port = await mountFuse(deps.dir, fs, {
    allowOther: deps.allowOther,
    timeoutMs,
    // Commits, the first change to an existing file (which copies it into
    // the temp file, recalling a stub) and directory renames take as long as
    // their bytes or entries: the write path bounds them, not a timer. Reads
    // keep the timer and answer EIO before it (readDeadlineMs).
    untimed: ['flush', 'fsync', 'release', 'rename', 'write', 'truncate', 'ftruncate'],
    errnoOf: (err) => errnoOf(err).errno,
    observe: (op, seconds, errno, err) => {
      metrics.ops.inc({ op, result: errno ?? 'ok' });
      metrics.opSeconds.observe({ op }, seconds);
      if (errno && !errnoOf(err).expected) deps.log.error({ op, errno, err: String(err) }, 'FUSE operation failed');
    },
  });
  let closed = false;
  // fuse-native keeps running when someone else unmounts the drive
  // (`fusermount -u`); say so once rather than serve a drive nobody sees.
  const watch = setInterval(() => {
    void mountPoints().then((m) => {
      if (closed || m.has(resolve(deps.dir))) return;
      clearInterval(watch);
      deps.log.warn({ dir: deps.dir }, 'the drive was unmounted from outside the gateway; S3 keeps serving, restart to mount again');
    });
  }, 5_000);
  watch.unref();
  return {
    dir: deps.dir,
    close: async () => {
      if (closed) return;
      closed = true;
      clearInterval(watch);
      await fs.commitAll();
      await port.unmount().catch((err: unknown) => deps.log.warn({ err: String(err) }, 'unmount failed'));
      await rm(deps.tmpDir, { recursive: true, force: true }).catch(() => undefined);
    },
  };
}
