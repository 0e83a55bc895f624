// A real gateway process serving a real FUSE mount in a temp dir, and real
// tools run against it in child processes (never synchronous calls from the
// test process into a mount: only the gateway serves it, but a hung mount
// must not hang the test runner either).
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Test } from 'tap';
import { removeDir, startGateway, tempDir, type Gateway } from '../helpers/gateway.js';

const exec = promisify(execFile);

export interface Mounted {
  gw: Gateway;
  root: string;
  mnt: string;
  dataDir: string;
}

/** Run a shell command line; resolves stdout, rejects with stderr on a non-zero exit. */
export async function sh(cmd: string, opts: { cwd?: string; timeoutMs?: number } = {}): Promise<string> {
  const { stdout } = await exec('sh', ['-c', cmd], { cwd: opts.cwd, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 << 20, killSignal: 'SIGKILL' });
  return stdout;
}

/** Run a command and return its exit status and stderr (for expected failures). */
export async function shStatus(cmd: string, cwd?: string): Promise<{ code: number; stderr: string; stdout: string }> {
  try {
    const { stdout, stderr } = await exec('sh', ['-c', cmd], { cwd, timeout: 60_000 });
    return { code: 0, stderr, stdout };
  } catch (err) {
    const e = err as { code?: number; stderr?: string; stdout?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stderr: e.stderr ?? '', stdout: e.stdout ?? '' };
  }
}

export const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export async function unmount(mnt: string): Promise<void> {
  await exec('fusermount', ['-uz', mnt]).catch(() => undefined);
}

/** Start a gateway mounted at <root>/mnt; the teardown stops it and always unmounts. */
export async function startMounted(t: Test, opts: { root?: string } = {}): Promise<Mounted> {
  const root = opts.root ?? (await tempDir('valentine-mount-'));
  const mnt = join(root, 'mnt');
  const dataDir = join(root, 'data');
  await mkdir(dataDir, { recursive: true });
  const gw = await startGateway({ dataDir, args: ['--mount', mnt] });
  t.teardown(async () => {
    await gw.stop();
    await unmount(mnt);
    if (!opts.root) await removeDir(root);
  });
  const ready = gw.logs.map((l) => JSON.parse(l) as { msg?: string; mount?: string }).find((l) => l.msg === 'valentine ready');
  if (ready?.mount !== mnt) throw new Error(`the gateway did not mount ${mnt}: ${gw.logs.join('\n')}`);
  return { gw, root, mnt, dataDir };
}
