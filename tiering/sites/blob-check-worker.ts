// The worker thread of blob-check.ts: reads a file front to back in large
// reads of whole units and checks each unit's CRC32. It lowers its own
// priority first (on Linux the nice value is per thread), so under client
// load the scheduler favours the gateway's other threads.
import { closeSync, openSync, readSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import { crc32 } from 'node:zlib';
import { unitsPerRead, type UnitCheck } from './blob-check.js';

/** Nice 10: a CPU shared with the event loop gives this thread about a tenth of it. */
const NICE = 10;
try {
  setPriority(NICE);
} catch {
  // Not permitted here: the check runs at normal priority.
}

let buf = Buffer.alloc(0);

function check(path: string, size: number, unit: number, crcs: Uint8Array): UnitCheck {
  let f: number;
  try {
    f = openSync(path, 'r');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return e.code === 'ENOENT' ? { state: 'missing' } : { state: 'unreadable', message: e.message };
  }
  try {
    const expected = new DataView(crcs.buffer, crcs.byteOffset, crcs.byteLength);
    const per = unitsPerRead(unit) * unit;
    if (buf.length < Math.min(per, size) + 1) buf = Buffer.allocUnsafe(Math.min(per, size) + 1);
    for (let off = 0, u = 0; ; off += per) {
      const body = Math.min(per, size - off); // the bytes of this read's units
      const last = off + per >= size;
      // The last read asks for one byte past the end, so a blob that is too long is found without a read of its own.
      const want = body + (last ? 1 : 0);
      let got = 0;
      for (let n = -1; got < want && n !== 0; got += n) n = readSync(f, buf, got, want - got, off + got);
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
    closeSync(f);
  }
}

parentPort!.on('message', ({ id, path, size, unit, crcs }: { id: number; path: string; size: number; unit: number; crcs: Uint8Array }) => {
  parentPort!.postMessage({ id, result: check(path, size, unit, crcs) });
});
