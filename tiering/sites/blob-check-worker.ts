// A worker thread of blob-check.ts: reads a file front to back in large
// reads of whole units and checks each unit's CRC32. It lowers its own
// priority first to the nice value it is given (on Linux the nice value is
// per thread), so under client load the scheduler favours the gateway's
// other threads.
// A worker of the direct pool (blobs of DIRECT_MIN bytes and more) reads
// with O_DIRECT where allowed: the scrub then checks what is on the disk,
// not what the page cache holds; it costs less CPU than a read through the
// cache, cold or cached (0.49 ms against 0.53-0.64 per MiB of 1 MiB blobs,
// measured here); and it does not push clients' hot data out of the cache.
// The other pool reads smaller blobs through the cache: for them the cost
// of a disk request outweighs the copy.
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { crc32 } from 'node:zlib';
import { CHECK_READ, unitsPerRead, type CheckRequest, type UnitCheck } from './blob-check.js';

const { nice, direct } = workerData as { nice: number; direct: boolean };
try {
  setPriority(nice);
} catch {
  // Not permitted here: the check runs at normal priority.
}

/** O_DIRECT wants buffer addresses, offsets and lengths in whole blocks of the device; 4 KiB covers them. */
const ALIGN = 4096;
const WASM_PAGE = 64 * 1024;
// Node has WebAssembly; the compiler's libraries here do not declare it.
declare const WebAssembly: { Memory: new (d: { initial: number }) => { buffer: ArrayBuffer; grow(pages: number): number } };
// WebAssembly memory starts on a page boundary: the one buffer here that O_DIRECT can read into.
const memory = new WebAssembly.Memory({ initial: Math.ceil((CHECK_READ + ALIGN) / WASM_PAGE) });
let buf = Buffer.from(memory.buffer);

function room(bytes: number): Buffer {
  if (buf.length < bytes) {
    memory.grow(Math.ceil((bytes - buf.length) / WASM_PAGE));
    buf = Buffer.from(memory.buffer);
  }
  return buf;
}

/** The file opened for reading, direct when asked and the filesystem allows it (tmpfs, for one, does not). */
function openFile(path: string, direct: boolean): { f: number; direct: boolean } {
  if (direct) {
    try {
      return { f: openSync(path, constants.O_RDONLY | constants.O_DIRECT), direct: true };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
    }
  }
  return { f: openSync(path, 'r'), direct: false };
}

/**
 * Up to `want` bytes at `off` into buf[0..]; fewer only at the end of the
 * file. `probe`: the last byte asked for is the one past the blob's end, so
 * a read that stops just short of it has found the end as expected (no
 * second read to be told so: most blobs are one read). A read that stops
 * anywhere else is asked again before it counts as the end.
 */
function readAt(f: number, direct: boolean, off: number, want: number, probe: boolean): number {
  // A direct read asks for whole blocks (past the end of the file it just returns less) and goes on only from a block boundary.
  const ask = direct ? Math.ceil(want / ALIGN) * ALIGN : want;
  const b = room(ask);
  let got = 0;
  for (let n = -1; got < want && n !== 0 && (!direct || got % ALIGN === 0) && !(probe && n !== -1 && got === want - 1); got += n) n = readSync(f, b, got, ask - got, off + got);
  return Math.min(got, want);
}

function check(path: string, size: number, unit: number, crcs: Uint8Array): UnitCheck {
  const per = unitsPerRead(unit) * unit;
  let file: { f: number; direct: boolean }; // readFrom may swap it for a buffered one
  try {
    file = openFile(path, direct && per % ALIGN === 0);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return e.code === 'ENOENT' ? { state: 'missing' } : { state: 'unreadable', message: e.message };
  }
  try {
    const expected = new DataView(crcs.buffer, crcs.byteOffset, crcs.byteLength);
    for (let off = 0, u = 0; ; off += per) {
      const body = Math.min(per, size - off); // the bytes of this read's units
      const last = off + per >= size;
      // The last read asks for one byte past the end, so a blob that is too long is found without a read of its own.
      const got = readFrom(file, path, off, body + (last ? 1 : 0), last);
      for (let at = 0; at < Math.min(got, body); at += unit, u++) {
        const len = Math.min(unit, body - at);
        if (at + len > got) return { state: 'short', bytes: off + got };
        if (crc32(buf.subarray(at, at + len)) !== expected.getUint32(u * 4)) return { state: 'mismatch', unit: u };
      }
      if (got < body) return { state: 'short', bytes: off + got };
      if (last) return got > body ? { state: 'long' } : { state: 'ok' };
    }
  } catch (err) {
    return { state: 'unreadable', message: (err as Error).message };
  } finally {
    closeSync(file.f);
  }
}

/**
 * readAt on `file`; a filesystem that opened the file for direct reads but
 * refuses them (EINVAL) gets it opened again through the cache, so the check
 * goes on instead of reporting a healthy blob unreadable.
 */
function readFrom(file: { f: number; direct: boolean }, path: string, off: number, want: number, probe: boolean): number {
  try {
    return readAt(file.f, file.direct, off, want, probe);
  } catch (err) {
    if (!file.direct || (err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
    const again = openFile(path, false); // opened before the old one is closed: `finally` in check() closes whichever is held
    closeSync(file.f);
    Object.assign(file, again);
    return readAt(file.f, false, off, want, probe);
  }
}

// Checks come in batches and their results go back as one: a message each way costs more than checking a small blob.
parentPort!.on('message', (batch: CheckRequest[]) => {
  parentPort!.postMessage(batch.map(({ id, path, size, unit, crcs }) => ({ id, result: check(path, size, unit, crcs) })));
});
