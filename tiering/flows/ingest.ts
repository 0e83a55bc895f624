// Workstation ingest: files that appear in a workstation's source directory
// are copied into a bucket through the engine's write path, verified, and
// then (per its clear-down policy, and only once the object has reached the
// protection level the workstation asks for) moved to a done folder or
// deleted. Ingest artefacts (*.tmp, ~$*, .DS_Store...) are deleted once they
// have settled.
//
// Every step is recorded in the namespace as it happens:
//   seen → copying → verified → cleared     (failed: retried; a copy is stored and
//                                             verified in one step, so "stored" is only ever
//                                             seen in records written before that)
// A source is only ever moved or deleted from the verified state, once the
// engine's durable record is seen to hold its SHA-256 and after its
// size and mtime are checked once more against what was verified, so a
// crash (kill -9) at any point can leave work to redo but never a source
// deleted that is not stored; start-up resumes from the recorded states.
// A file is taken only once its size and mtime have not changed for the
// settle time (a camera still writing is never half-copied); one that
// changes during the copy is re-queued, not cleared (source-changed).
//
// The source is read twice, independently: once to hash it, once by the
// engine's write path (which hashes what it stores). Verified means the two
// SHA-256s agree and size and mtime held across both. The first hash also
// finds bytes the target bucket already holds (under any key: a SHA-256 →
// key index kept in the batch of each object record); such a file is not
// stored again but recorded as verified against that object (`storedAs`),
// and its clear-down waits on that object's protection.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import type { Engine } from '../engine.js';
import { EngineError } from '../errors.js';
import { KeyLock } from '../key-lock.js';
import type { Logger } from '../log.js';
import { keys } from '../namespace/keys.js';
import type { Namespace } from '../namespace/namespace.js';
import type { IngestState, ObjectRecord, WorkstationFileRecord } from '../namespace/records.js';
import { Periodic } from '../periodic.js';
import type { IssueLog } from './issues.js';
import type { FlowsMetrics } from './metrics.js';

export const DEFAULT_ARTEFACTS: readonly string[] = ['*.tmp', '*.part', '~$*', '.DS_Store', 'Thumbs.db', '*.crdownload'];
export const INGEST_STATES: readonly IngestState[] = ['seen', 'copying', 'stored', 'verified', 'cleared', 'failed'];

export interface WorkstationConfig {
  name: string;
  /** A local directory or a mounted share. */
  source: string;
  bucket: string;
  /** Prepended to the file's path inside `source` to make its key. */
  prefix: string;
  /** Glob patterns (on the file name) of files to take. */
  include: readonly string[];
  /** Glob patterns of ingest artefacts to delete. */
  artefacts: readonly string[];
  clearDown: 'keep' | 'move' | 'delete';
  /** The object's protection that must be reached before its source is cleared. */
  protection: 'replicated' | 'coded';
  /** Where `move` puts cleared files (default `<source>/done`); never scanned. */
  doneDir: string;
  settleMs: number;
}

export interface IngestParts {
  engine: Engine;
  namespace: Namespace;
  issues: IssueLog;
  metrics: FlowsMetrics;
  log: Logger;
  workstations: readonly WorkstationConfig[];
  /** Pause between scans of every workstation. */
  intervalMs: number;
  /** Files copied at once per workstation. */
  concurrency: number;
  /** How long the state of a cleared file is kept (what /flows/workstations counts); the totals are counters. */
  historyMs: number;
}

export interface WorkstationSummary {
  name: string;
  source: string;
  target: string;
  clearDown: WorkstationConfig['clearDown'];
  protection: WorkstationConfig['protection'];
  files: Record<IngestState, number>;
  bytes: Record<IngestState, number>;
  /** Files (of those still tracked) whose bytes were already stored under another key, so not stored again. */
  duplicates: number;
  lastActivity?: number;
  /** Why the last scan of the source failed, if it did. */
  error?: string;
}

/** A glob on a file name: `*` any run, `?` one character; everything else literal. */
export function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 's');
}

class SourceChanged extends Error {}

function protectionReached(rec: ObjectRecord, level: WorkstationConfig['protection']): boolean {
  if (rec.tier === 'coded' || rec.tier === 'stub') return true;
  return level === 'replicated' && !rec.underReplicated;
}

/** Read size for source files: large reads, few syscalls (the default is 64 KiB). */
const READ_CHUNK = 1 << 20;
/** Source files stat'ed at once while a folder is scanned. */
const STAT_BATCH = 64;

/** A source file as a stream; a small file is read in one buffer of its size (not 1 MiB: most workstation files are small). */
function readSource(path: string, size: number) {
  return createReadStream(path, { highWaterMark: Math.min(READ_CHUNK, size + 1) });
}

async function sha256File(path: string, size: number): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of readSource(path, size)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Files and bytes per state of one workstation, kept in step with every save (so a summary reads no records). */
class Tally {
  readonly files = Object.fromEntries(INGEST_STATES.map((s) => [s, 0])) as Record<IngestState, number>;
  readonly bytes = { ...this.files };
  duplicates = 0;
  lastActivity: number | undefined;

  add(rec: WorkstationFileRecord, sign = 1): void {
    this.files[rec.state] += sign;
    this.bytes[rec.state] += sign * rec.size;
    if (rec.storedAs !== undefined) this.duplicates += sign;
    if (sign > 0) this.lastActivity = Math.max(this.lastActivity ?? 0, rec.updated);
  }
}

export class Ingest {
  private readonly periodic: Periodic;
  private readonly include: Map<string, RegExp[]>;
  private readonly artefacts: Map<string, RegExp[]>;
  private readonly scanErrors = new Map<string, string>();
  private readonly tallies = new Map<string, Tally>();
  /** One file at a time per bucket and SHA-256, so two identical files arriving together are stored once. */
  private readonly shaLocks = new KeyLock();

  constructor(private readonly p: IngestParts) {
    this.include = new Map(p.workstations.map((w) => [w.name, w.include.map(globToRegExp)]));
    this.artefacts = new Map(p.workstations.map((w) => [w.name, w.artefacts.map(globToRegExp)]));
    this.periodic = new Periodic('ingest pass', p.intervalMs, () => this.scanAll(), p.log);
  }

  async start(): Promise<void> {
    for (const ws of this.p.workstations) {
      const tally = new Tally();
      for await (const f of this.p.namespace.workstationFiles(ws.name)) tally.add(f);
      this.tallies.set(ws.name, tally);
    }
    await this.publish();
    this.periodic.start();
  }

  stop(): Promise<void> {
    return this.periodic.stop();
  }

  /** One scan of every workstation now (also what the timer runs). */
  runOnce(): Promise<void> {
    return this.periodic.runNow();
  }

  private get stopped(): boolean {
    return this.periodic.stopped;
  }

  private async scanAll(): Promise<void> {
    for (const ws of this.p.workstations) {
      if (this.stopped) break;
      try {
        await this.scan(ws);
        this.scanErrors.delete(ws.name);
      } catch (err) {
        this.scanErrors.set(ws.name, (err as Error).message);
        this.p.log.warn({ workstation: ws.name, err: String(err) }, 'workstation scan failed');
      }
    }
    await this.publish();
  }

  async summaries(): Promise<WorkstationSummary[]> {
    const out: WorkstationSummary[] = [];
    for (const ws of this.p.workstations) {
      const tally = this.tallies.get(ws.name) ?? new Tally();
      const { lastActivity } = tally;
      const error = this.scanErrors.get(ws.name);
      out.push({
        name: ws.name,
        source: ws.source,
        target: `${ws.bucket}/${ws.prefix}`,
        clearDown: ws.clearDown,
        protection: ws.protection,
        files: { ...tally.files },
        bytes: { ...tally.bytes },
        duplicates: tally.duplicates,
        ...(lastActivity !== undefined && { lastActivity }),
        ...(error && { error }),
      });
    }
    return out;
  }

  private async publish(): Promise<void> {
    for (const s of await this.summaries()) {
      for (const state of INGEST_STATES) {
        this.p.metrics.ingestFiles.set({ workstation: s.name, state }, s.files[state]);
        this.p.metrics.ingestBytes.set({ workstation: s.name, state }, s.bytes[state]);
      }
    }
  }

  /**
   * Not fsynced: no decision rests on this record alone. A source is only
   * cleared after the engine's own (durable) record is checked to hold its
   * bytes, so a state lost in a crash means work redone, never a loss.
   */
  private save(rec: WorkstationFileRecord, old: WorkstationFileRecord | undefined): Promise<void> {
    return this.saveAll([[rec, old]]);
  }

  /** Several file records (new, and the one each replaces) in one batch. */
  private async saveAll(changes: [WorkstationFileRecord, WorkstationFileRecord | undefined][]): Promise<void> {
    const now = Date.now();
    await this.p.namespace.batch(
      changes.map(([rec]) => {
        rec.updated = now;
        return { type: 'put', key: keys.workstationFile(rec.workstation, rec.path), value: rec };
      }),
      false,
    );
    for (const [rec, old] of changes) {
      const tally = this.tallies.get(rec.workstation);
      if (old) tally?.add(old, -1);
      tally?.add(rec);
    }
  }

  private async forget(rec: WorkstationFileRecord): Promise<void> {
    await this.p.namespace.batch([{ type: 'del', key: keys.workstationFile(rec.workstation, rec.path) }], false);
    this.tallies.get(rec.workstation)?.add(rec, -1);
  }

  /** Walk the source once: note new and changed files, take settled ones, clear verified ones. */
  private async scan(ws: WorkstationConfig): Promise<void> {
    const found = new Map<string, { abs: string; size: number; mtimeMs: number }>();
    const artefacts: { abs: string; mtimeMs: number }[] = [];
    const walk = async (dir: string): Promise<void> => {
      const files: string[] = [];
      for (const ent of await readdir(dir, { withFileTypes: true })) {
        const abs = join(dir, ent.name);
        if (ent.isDirectory()) {
          if (abs !== ws.doneDir) await walk(abs);
        } else if (ent.isFile()) files.push(ent.name);
      }
      // stat a batch at a time: a folder of thousands of files is not stat'ed one round trip after another.
      for (let i = 0; i < files.length; i += STAT_BATCH) {
        const names = files.slice(i, i + STAT_BATCH);
        const stats = await Promise.all(names.map((n) => stat(join(dir, n)).catch(() => undefined)));
        names.forEach((name, j) => {
          const st = stats[j];
          if (!st) return; // gone meanwhile
          const abs = join(dir, name);
          if (this.artefacts.get(ws.name)!.some((re) => re.test(name))) artefacts.push({ abs, mtimeMs: st.mtimeMs });
          else if (this.include.get(ws.name)!.some((re) => re.test(name))) found.set(relative(ws.source, abs).split(sep).join('/'), { abs, size: st.size, mtimeMs: st.mtimeMs });
        });
      }
    };
    await walk(ws.source);
    const now = Date.now();
    for (const a of artefacts) if (now - a.mtimeMs >= ws.settleMs) await unlink(a.abs).catch(() => undefined);

    const due: { rec: WorkstationFileRecord; abs: string }[] = [];
    const known = new Set<string>();
    for await (const rec of this.p.namespace.workstationFiles(ws.name)) {
      known.add(rec.path);
      const f = found.get(rec.path);
      if (!f) {
        // Gone from the source: cleared by us (a crash may have come before the record said so), or by someone else.
        if (rec.state === 'verified' && ws.clearDown !== 'keep') await this.save({ ...rec, state: 'cleared', clearedAt: now }, rec);
        else if (rec.state === 'cleared' ? now - (rec.clearedAt ?? rec.updated) > this.p.historyMs : rec.state !== 'verified') {
          // History past its keep, or a file taken away before it was stored: nothing left to track.
          if (rec.state !== 'cleared') this.p.log.warn({ workstation: ws.name, path: rec.path, state: rec.state }, 'file left the workstation before it was stored');
          await this.forget(rec);
        }
        continue;
      }
      if (f.size !== rec.size || f.mtimeMs !== rec.mtimeMs) {
        if (rec.state === 'stored' || rec.state === 'verified') {
          await this.sourceChanged(ws, rec, `changed after it was copied (size ${rec.size} → ${f.size})`);
        }
        await this.save({ ...rec, state: 'seen', size: f.size, mtimeMs: f.mtimeMs, stableSince: now }, rec);
        continue;
      }
      if (rec.state === 'cleared' && ws.clearDown !== 'keep') {
        // Cleared before, yet here with the same size and mtime: a crash between clear-down and the record; the object is safe.
        continue;
      }
      due.push({ rec, abs: f.abs });
    }
    const fresh: [WorkstationFileRecord, undefined][] = [];
    for (const [path, f] of found) {
      if (known.has(path)) continue;
      fresh.push([{
        v: 1,
        workstation: ws.name,
        path,
        state: 'seen',
        size: f.size,
        mtimeMs: f.mtimeMs,
        stableSince: now,
        firstSeen: now,
        updated: now,
        bucket: ws.bucket,
        key: `${ws.prefix}${path}`,
      }, undefined]);
    }
    for (let i = 0; i < fresh.length; i += STAT_BATCH * 16) await this.saveAll(fresh.slice(i, i + STAT_BATCH * 16));
    // Settled files, a few at a time.
    let next = 0;
    const worker = async () => {
      while (next < due.length && !this.stopped) {
        const item = due[next++]!;
        await this.advance(ws, item.rec, item.abs).catch((err) => this.p.log.warn({ workstation: ws.name, path: item.rec.path, err: String(err) }, 'ingest step failed'));
      }
    };
    await Promise.all(Array.from({ length: this.p.concurrency }, worker));
  }

  /** Move one settled file on as far as it can go now. */
  private async advance(ws: WorkstationConfig, rec: WorkstationFileRecord, abs: string): Promise<void> {
    if (rec.state === 'cleared' || (rec.state === 'verified' && ws.clearDown === 'keep')) return;
    if (Date.now() - rec.stableSince < ws.settleMs) return;
    let cur = rec;
    if (cur.state === 'seen' || cur.state === 'copying' || cur.state === 'failed' || cur.state === 'stored') {
      const copied = await this.copy(ws, cur, abs);
      if (!copied) return;
      cur = copied;
    }
    if (cur.state === 'verified' && ws.clearDown !== 'keep') await this.clearDown(ws, cur, abs);
  }

  /**
   * Hash the source, then copy it (unless the bucket already holds these
   * bytes) and verify: the copy's SHA-256 must equal the source's, with size
   * and mtime unchanged since the file settled.
   */
  private async copy(ws: WorkstationConfig, rec: WorkstationFileRecord, abs: string): Promise<WorkstationFileRecord | undefined> {
    const subject = `${ws.name}:${rec.path}`;
    const { error: _, storedAs: __, ...rest } = rec;
    let cur: WorkstationFileRecord = { ...rest, state: 'copying' };
    await this.save(cur, rec);
    let stored: ObjectRecord;
    let sha256: string;
    try {
      sha256 = await sha256File(abs, cur.size);
      stored = await this.shaLocks.run(`${ws.bucket}\0${sha256}`, async () => {
        const existing = await this.alreadyStored(ws.bucket, cur, sha256);
        if (existing) return existing;
        return this.p.engine.putObject(ws.bucket, cur.key, readSource(abs, cur.size), {
          meta: { 'flows-workstation': ws.name, 'flows-source-path': encodeURIComponent(cur.path), 'flows-source-mtime': String(Math.round(cur.mtimeMs)) },
          expectedSize: cur.size,
          beforeCommit: async (d) => {
            const st = await stat(abs);
            if (st.size !== cur.size || st.mtimeMs !== cur.mtimeMs || d.size !== cur.size || d.sha256.toString('hex') !== sha256) throw new SourceChanged('the file changed while it was copied');
            return {};
          },
        });
      });
    } catch (err) {
      if (err instanceof SourceChanged || (err instanceof EngineError && err.code === 'INCOMPLETE_BODY')) {
        await this.sourceChanged(ws, cur, (err as Error).message);
        await this.save({ ...cur, state: 'seen', stableSince: Date.now() }, cur);
        return undefined;
      }
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return undefined; // gone; the next scan notes it
      if (code === 'EACCES' || code === 'EPERM' || code === 'EIO' || code === 'EISDIR') {
        await this.p.issues.raise({ kind: 'source-unreadable', subject, workstation: ws.name, bucket: ws.bucket, key: cur.key, detail: (err as Error).message });
      }
      await this.save({ ...cur, state: 'failed', error: (err as Error).message }, cur);
      throw err;
    }
    // Verify: the source, read on its own, hashed to what the object holds, and has not changed since it settled.
    // (Stored and verified are one step, so no record says "stored" in between.)
    const st = await stat(abs);
    if (sha256 !== stored.sha256 || st.size !== cur.size || st.mtimeMs !== cur.mtimeMs) {
      await this.sourceChanged(ws, cur, 'the file read back differs from the stored object');
      await this.save({ ...cur, state: 'seen', size: st.size, mtimeMs: st.mtimeMs, stableSince: Date.now() }, cur);
      return undefined;
    }
    const now = Date.now();
    const verified: WorkstationFileRecord = { ...cur, state: 'verified', sha256, verifiedAt: now, ...(stored.key !== cur.key && { storedAs: stored.key }) };
    await this.save(verified, cur);
    cur = verified;
    this.p.metrics.ingestSeconds.observe({ workstation: ws.name }, (now - cur.stableSince) / 1000);
    this.p.metrics.ingestedFiles.inc({ workstation: ws.name });
    this.p.metrics.ingestedBytes.inc({ workstation: ws.name }, cur.size);
    if (cur.storedAs !== undefined) this.p.metrics.ingestDuplicates.inc({ workstation: ws.name });
    await this.p.issues.resolveAll(['source-changed', 'source-unreadable'], subject, [''], 'stored and verified');
    return cur;
  }

  /**
   * An object of `bucket` that already holds these bytes (the file's own key
   * first), found through the SHA-256 index; its record is checked too.
   */
  private async alreadyStored(bucket: string, rec: WorkstationFileRecord, sha256: string): Promise<ObjectRecord | undefined> {
    const found = await this.p.namespace.keysWithSha256(bucket, sha256);
    // The index commits with each record, so an object it does not list does not hold these bytes.
    for (const key of found.includes(rec.key) ? [rec.key, ...found.filter((k) => k !== rec.key)] : found) {
      const obj = await this.p.namespace.getObject(bucket, key);
      if (obj?.sha256 === sha256 && obj.size === rec.size) return obj;
    }
    return undefined;
  }

  private async sourceChanged(ws: WorkstationConfig, rec: WorkstationFileRecord, detail: string): Promise<void> {
    await this.p.issues.raise({ kind: 'source-changed', subject: `${ws.name}:${rec.path}`, workstation: ws.name, bucket: ws.bucket, key: rec.key, detail });
  }

  /** Move or delete a verified source once its object is protected as the workstation asks. */
  private async clearDown(ws: WorkstationConfig, rec: WorkstationFileRecord, abs: string): Promise<void> {
    const obj = await this.p.namespace.getObject(ws.bucket, rec.storedAs ?? rec.key);
    if (!obj || obj.sha256 !== rec.sha256) {
      // The object was overwritten or deleted since: store this file again.
      await this.save({ ...rec, state: 'seen' }, rec);
      return;
    }
    if (!protectionReached(obj, ws.protection)) return; // not yet: the next scan looks again
    const st = await stat(abs).catch(() => undefined);
    if (!st) return;
    if (st.size !== rec.size || st.mtimeMs !== rec.mtimeMs) return; // changed: the next scan re-queues it
    if (ws.clearDown === 'move') {
      const to = join(ws.doneDir, ...rec.path.split('/'));
      await mkdir(dirname(to), { recursive: true });
      await rename(abs, to);
    } else {
      await unlink(abs);
    }
    await this.save({ ...rec, state: 'cleared', clearedAt: Date.now() }, rec);
  }
}
