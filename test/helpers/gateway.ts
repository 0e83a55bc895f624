// Starts a real gateway process (the built `valentine serve`) on loopback
// ports chosen by the OS, and the clients tests drive it with.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { S3Client } from '@aws-sdk/client-s3';

export const ROOT = resolve(fileURLToPath(import.meta.url), '../../../..');
export const MAIN = join(ROOT, 'dist/gateway/main.js');
export const ACCESS_KEY = 'TESTACCESSKEY';
export const SECRET_KEY = 'test-secret-key-0123456789';

export interface Gateway {
  s3Url: string;
  adminUrl: string;
  dataDir: string;
  proc: ChildProcess;
  /** Log lines the gateway printed (JSON). */
  logs: string[];
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit: a crash. */
  kill(): Promise<void>;
}

export interface StartOptions {
  dataDir?: string;
  args?: string[];
  env?: Record<string, string>;
}

export async function tempDir(prefix = 'valentine-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

export async function startGateway(opts: StartOptions = {}): Promise<Gateway> {
  const dataDir = opts.dataDir ?? (await tempDir());
  const proc = spawn(
    process.execPath,
    [MAIN, 'serve', '--data', dataDir, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', ...(opts.args ?? [])],
    {
      env: { ...process.env, VALENTINE_ACCESS_KEY: ACCESS_KEY, VALENTINE_SECRET_KEY: SECRET_KEY, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const logs: string[] = [];
  const stderr: string[] = [];
  proc.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
  const exited = new Promise<void>((res) => proc.once('exit', () => res()));
  const ready = await new Promise<{ s3: string; admin: string }>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`gateway did not start in 20 s: ${stderr.join('')}`)), 20_000);
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      logs.push(line);
      try {
        const msg = JSON.parse(line) as { msg?: string; s3?: string; admin?: string };
        if (msg.msg === 'valentine ready') {
          clearTimeout(timer);
          res({ s3: msg.s3!, admin: msg.admin! });
        }
      } catch {}
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`gateway exited with ${code} before it was ready: ${stderr.join('')}`));
    });
  });
  let ending = false;
  proc.once('exit', (code, signal) => {
    if (!ending) process.stderr.write(`gateway exited unexpectedly (${code ?? signal}):\n${stderr.join('')}\n`);
  });
  const end = async (signal: NodeJS.Signals) => {
    ending = true;
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    await exited;
  };
  return { s3Url: ready.s3, adminUrl: ready.admin, dataDir, proc, logs, stop: () => end('SIGTERM'), kill: () => end('SIGKILL') };
}

export function s3Client(gw: Pick<Gateway, 's3Url'>, overrides: Partial<ConstructorParameters<typeof S3Client>[0]> = {}): S3Client {
  return new S3Client({
    endpoint: gw.s3Url,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
    maxAttempts: 1,
    ...overrides,
  });
}

/** A gateway on a config file of its own, restartable on the same data directory. */
export interface Restartable {
  gw: Gateway;
  s3: S3Client;
  /** The directory holding config.json and data/ (tests may put more beside them). */
  dir: string;
  restart(): Promise<void>;
}

/** Start a gateway with `config` written to a file; stopped and removed at teardown (error logs echoed). */
export async function gatewayWithConfig(t: { teardown(fn: () => Promise<void>): void }, config: unknown, dir?: string): Promise<Restartable> {
  const root = dir ?? (await tempDir());
  const file = join(root, 'config.json');
  await writeFile(file, JSON.stringify(config));
  const start = () => startGateway({ dataDir: join(root, 'data'), args: ['--config', file] });
  const gw = await start();
  const r: Restartable = {
    gw,
    s3: s3Client(gw),
    dir: root,
    restart: async () => {
      r.s3.destroy();
      r.gw = await start();
      r.s3 = s3Client(r.gw);
    },
  };
  t.teardown(async () => {
    for (const l of r.gw.logs) if (l.includes('"level":50')) process.stderr.write(`gateway: ${l.slice(0, 400)}\n`);
    r.s3.destroy();
    await r.gw.stop();
    await removeDir(root);
  });
  return r;
}

/** An 8 MiB tmpfs for a site to fill, unmounted at teardown; undefined (the test skipped) where mounting needs root. */
export async function smallFilesystem(t: { comment(msg: string): void; teardown(fn: () => Promise<void>): void }): Promise<string | undefined> {
  const dir = await tempDir('valentine-tmpfs-');
  try {
    await promisify(execFile)('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', dir]);
  } catch (err) {
    await removeDir(dir);
    t.comment(`skipped: cannot mount a tmpfs here (needs root): ${(err as Error).message.split('\n')[0]}`);
    return undefined;
  }
  t.teardown(async () => {
    await promisify(execFile)('umount', ['-l', dir]).catch(() => undefined);
    await removeDir(dir);
  });
  return dir;
}
