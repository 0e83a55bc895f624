// Checking a stored blob against the CRC32 of each of its units (a full
// copy's blocks, a shard's pieces). A local file is checked on a worker
// thread that runs at a lower priority than the gateway: the scrub's reads
// and checksums then use the CPU that client traffic leaves over, and the
// event loop only sends and receives one message per blob (blob-check-
// worker.ts). The scrub is a steady load of whole-blob reads; a GET is not.
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

/** One check as sent to the worker. */
export interface CheckRequest extends UnitChecksums {
  id: number;
  path: string;
}

type Pending = { resolve: (c: UnitCheck) => void; reject: (e: Error) => void };

/**
 * The worker that checks local files, one at a time in the order asked.
 * Checks asked for in one turn of the event loop go to it as one message,
 * and it answers each message with one: a message each way costs more than
 * checking a small blob, and a pass asks for an object's copies together.
 * Started on first use; it holds the process open only while checks are
 * pending. A worker that dies fails the checks it held and is started again
 * on the next.
 */
class FileChecker {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private outbox: CheckRequest[] = [];
  private next = 0;

  check(path: string, expect: UnitChecksums): Promise<UnitCheck> {
    const id = this.next++;
    if (this.outbox.length === 0) setImmediate(() => this.send());
    this.outbox.push({ id, path, size: expect.size, unit: expect.unit, crcs: expect.crcs });
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  private send(): void {
    const w = this.worker ?? this.start();
    w.ref();
    w.postMessage(this.outbox);
    this.outbox = [];
  }

  private start(): Worker {
    const w = new Worker(new URL('./blob-check-worker.js', import.meta.url));
    w.unref();
    w.on('message', (results: { id: number; result: UnitCheck }[]) => {
      for (const { id, result } of results) {
        this.pending.get(id)?.resolve(result);
        this.pending.delete(id);
      }
      if (this.pending.size === 0) w.unref();
    });
    const fail = (err: Error) => {
      if (this.worker === w) this.worker = undefined;
      const waiting = [...this.pending.entries()].filter(([id]) => !this.outbox.some((r) => r.id === id));
      for (const [id, p] of waiting) {
        this.pending.delete(id);
        p.reject(new Error(`the blob check worker failed: ${err.message}`));
      }
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`it exited with code ${code}`)));
    this.worker = w;
    return w;
  }
}

/** One worker for every local site of the process: checks take turns on one core. */
export const fileChecker = new FileChecker();
