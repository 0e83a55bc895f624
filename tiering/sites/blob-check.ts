// Checking a stored blob against the CRC32 of each of its units (a full
// copy's blocks, a shard's pieces). A local file is checked on worker
// threads that run at a lower priority than the gateway: the scrub's reads
// and checksums stay off the event loop that serves clients, which only
// passes them batches of checks, and the scheduler favours the gateway's
// other threads (blob-check-worker.ts). The scrub is a steady load of
// whole-blob reads; a GET is not.
import { Worker } from 'node:worker_threads';

/** What a blob should hold: `size` bytes in units of `unit` bytes (the last may be shorter), each unit's CRC32 big-endian in `crcs`. */
export interface UnitChecksums {
  size: number;
  unit: number;
  crcs: Uint8Array;
}

/** What checking a blob against its UnitChecksums found. */
export type UnitCheck =
  | { state: 'ok' }
  | { state: 'missing' }
  /** It ends after `bytes`, inside its units. */
  | { state: 'short'; bytes: number }
  /** Unit `unit` fails its CRC32 (the first that does). */
  | { state: 'mismatch'; unit: number }
  /** It holds more than `size` bytes. */
  | { state: 'long' }
  | { state: 'unreadable'; message: string };

/** Bytes per read: several units at once, so a check costs few system calls. */
export const CHECK_READ = 4 << 20;

/** Units per read for `unit`-byte units: whole units only, so no unit spans two reads. */
export function unitsPerRead(unit: number): number {
  return Math.max(1, Math.floor(CHECK_READ / Math.max(1, unit)));
}

/**
 * The checking threads' default nice value. Under a GET load that keeps
 * both cores busy, a first pass over 10 GiB here checked 200-261 MB/s of
 * objects at nice 7 over four runs, with the GETs 5.0-16.4% slower. With
 * a second direct reader (four threads), nice 7 gave 224-230 MB/s
 * (10.6-13.3% slower) and nice 5 234 MB/s (24.1%): below 7 the clients pay
 * more than the scrub gains.
 */
export const DEFAULT_CHECK_NICE = 7;

/**
 * Blobs of this size and larger are read with O_DIRECT, by workers of their
 * own (see FileChecker and blob-check-worker.ts).
 */
export const DIRECT_MIN = 1 << 20;

/** One check as sent to the worker. */
export interface CheckRequest extends UnitChecksums {
  id: number;
  path: string;
}

type Pending = { resolve: (c: UnitCheck) => void; reject: (e: Error) => void };

/** A checking thread and the checks it holds. */
interface Slot {
  worker: Worker | undefined;
  pending: Map<number, Pending>;
}

/**
 * Workers that check local files, each one blob at a time in the order
 * given. Checks asked for in one turn of the event loop go out together, one
 * message per worker, and each worker answers a message with one: a message
 * each way costs more than checking a small blob, and a pass asks for an
 * object's copies together. Each check goes to the worker holding the
 * fewest, so one's wait on the disk overlaps another's checksumming.
 * Started on first use; they hold the process open only while checks are
 * pending. A worker that dies fails the checks it held and is started again
 * on the next.
 */
class CheckerPool {
  private readonly slots: Slot[];
  private outbox: { req: CheckRequest; p: Pending }[] = [];
  private next = 0;

  /** `direct`: the workers read with O_DIRECT where they can; `nice()`: their priority when started. */
  constructor(
    workers: number,
    private readonly direct: boolean,
    private readonly nice: () => number,
  ) {
    this.slots = Array.from({ length: workers }, () => ({ worker: undefined, pending: new Map() }));
  }

  check(path: string, expect: UnitChecksums): Promise<UnitCheck> {
    if (this.outbox.length === 0) setImmediate(() => this.send());
    return new Promise((resolve, reject) => this.outbox.push({ req: { id: this.next++, path, size: expect.size, unit: expect.unit, crcs: expect.crcs }, p: { resolve, reject } }));
  }

  private send(): void {
    const batches = new Map<Slot, CheckRequest[]>();
    for (const { req, p } of this.outbox) {
      const slot = this.slots.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
      try {
        if (!slot.worker) this.start(slot);
      } catch (err) {
        // No thread to be had (resources): this check fails, as a blob it could not read, instead of the process.
        p.reject(new Error(`the blob check worker could not start: ${(err as Error).message}`));
        continue;
      }
      slot.pending.set(req.id, p);
      const batch = batches.get(slot);
      if (batch) batch.push(req);
      else batches.set(slot, [req]);
    }
    this.outbox = [];
    for (const [slot, batch] of batches) {
      slot.worker!.ref();
      slot.worker!.postMessage(batch);
    }
  }

  /** A new worker for `slot`, with a pending map of its own: a dead worker's late 'exit' must not fail its successor's checks. */
  private start(slot: Slot): void {
    const w = new Worker(new URL('./blob-check-worker.js', import.meta.url), { workerData: { nice: this.nice(), direct: this.direct } });
    const pending = new Map<number, Pending>();
    w.unref();
    w.on('message', (results: { id: number; result: UnitCheck }[]) => {
      for (const { id, result } of results) {
        pending.get(id)?.resolve(result);
        pending.delete(id);
      }
      if (pending.size === 0) w.unref();
    });
    const fail = (err: Error) => {
      if (slot.worker === w) slot.worker = undefined;
      const waiting = [...pending.values()];
      pending.clear();
      for (const p of waiting) p.reject(new Error(`the blob check worker failed: ${err.message}`));
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`it exited with code ${code}`)));
    slot.worker = w;
    slot.pending = pending;
  }
}

/**
 * The checking workers of every local site of the process, in two pools:
 * blobs of DIRECT_MIN bytes and more are read direct and mostly wait on the
 * disk, a small blob's check mostly costs CPU. In pools of their own, a
 * pass's small objects are never queued behind a large blob's reads (a pass
 * checks both kinds at once: see reconcile.ts). Two for small blobs, so one
 * checksums while the other waits on the disk; one direct reader: a second
 * made passes faster alone (513 against 476 MB/s over 10 GiB here) but,
 * beside the GET load, took the clients' CPU (a second pass: 288 MB/s with
 * the GETs 22.8% slower, against 226 MB/s and 6.5% with one).
 */
class FileChecker {
  /** The nice value of the checking threads (Linux: per thread); takes effect for workers started after it is set. */
  nice = DEFAULT_CHECK_NICE;
  private readonly cached = new CheckerPool(2, false, () => this.nice);
  private readonly direct = new CheckerPool(1, true, () => this.nice);

  check(path: string, expect: UnitChecksums): Promise<UnitCheck> {
    return (expect.size >= DIRECT_MIN ? this.direct : this.cached).check(path, expect);
  }
}

export const fileChecker = new FileChecker();
