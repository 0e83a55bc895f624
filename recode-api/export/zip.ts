// A streaming zip writer: entries are deflated as they arrive and never held
// whole. Each entry's CRC-32 and sizes follow its data in a data descriptor
// (general-purpose flag bit 3); the central directory at the end repeats
// them, with Zip64 fields once a size, offset or count outgrows 32 bits.
import { Readable } from 'node:stream';
import { crc32, createDeflateRaw } from 'node:zlib';

export interface ZipEntry {
  name: string;
  data: AsyncIterable<Buffer | string> | Iterable<Buffer | string>;
}

const MAX32 = 0xffffffff;
const FLAGS = 0x0008 | 0x0800; // data descriptor follows; names are UTF-8

function dosTime(d: Date): { time: number; date: number } {
  return {
    time: (d.getHours() << 11) | (d.getMinutes() << 5) | (d.getSeconds() >> 1),
    date: ((Math.max(d.getFullYear(), 1980) - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate(),
  };
}

interface Written {
  name: Buffer;
  crc: number;
  size: number;
  csize: number;
  offset: number;
}

/** The bytes of a zip archive holding `entries`, produced as they are read. */
export async function* zip(entries: AsyncIterable<ZipEntry> | Iterable<ZipEntry>, now = new Date()): AsyncGenerator<Buffer> {
  const { time, date } = dosTime(now);
  const written: Written[] = [];
  let offset = 0;
  for await (const entry of entries) {
    const name = Buffer.from(entry.name, 'utf8');
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed
    local.writeUInt16LE(FLAGS, 6);
    local.writeUInt16LE(8, 8); // deflate
    local.writeUInt16LE(time, 10);
    local.writeUInt16LE(date, 12);
    // crc, sizes: 0 here, in the data descriptor
    local.writeUInt16LE(name.length, 26);
    const w: Written = { name, crc: 0, size: 0, csize: 0, offset };
    yield Buffer.concat([local, name]);
    offset += local.length + name.length;
    async function* counted(): AsyncGenerator<Buffer> {
      for await (const c of entry.data) {
        const b = typeof c === 'string' ? Buffer.from(c, 'utf8') : c;
        w.crc = crc32(b, w.crc);
        w.size += b.length;
        yield b;
      }
    }
    for await (const c of Readable.from(counted()).pipe(createDeflateRaw())) {
      w.csize += (c as Buffer).length;
      yield c as Buffer;
    }
    offset += w.csize;
    const big = w.size > MAX32 || w.csize > MAX32;
    const dd = Buffer.alloc(big ? 24 : 16);
    dd.writeUInt32LE(0x08074b50, 0);
    dd.writeUInt32LE(w.crc >>> 0, 4);
    if (big) {
      dd.writeBigUInt64LE(BigInt(w.csize), 8);
      dd.writeBigUInt64LE(BigInt(w.size), 16);
    } else {
      dd.writeUInt32LE(w.csize, 8);
      dd.writeUInt32LE(w.size, 12);
    }
    yield dd;
    offset += dd.length;
    written.push(w);
  }

  const cdStart = offset;
  for (const w of written) {
    const z64: bigint[] = [];
    if (w.size >= MAX32) z64.push(BigInt(w.size));
    if (w.csize >= MAX32) z64.push(BigInt(w.csize));
    if (w.offset >= MAX32) z64.push(BigInt(w.offset));
    const extra = Buffer.alloc(z64.length > 0 ? 4 + 8 * z64.length : 0);
    if (z64.length > 0) {
      extra.writeUInt16LE(0x0001, 0);
      extra.writeUInt16LE(8 * z64.length, 2);
      z64.forEach((v, i) => extra.writeBigUInt64LE(v, 4 + 8 * i));
    }
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE((3 << 8) | 45, 4); // made by: Unix, 4.5
    cd.writeUInt16LE(z64.length > 0 ? 45 : 20, 6);
    cd.writeUInt16LE(FLAGS, 8);
    cd.writeUInt16LE(8, 10);
    cd.writeUInt16LE(time, 12);
    cd.writeUInt16LE(date, 14);
    cd.writeUInt32LE(w.crc >>> 0, 16);
    cd.writeUInt32LE(Math.min(w.csize, MAX32), 20);
    cd.writeUInt32LE(Math.min(w.size, MAX32), 24);
    cd.writeUInt16LE(w.name.length, 28);
    cd.writeUInt16LE(extra.length, 30);
    cd.writeUInt32LE((0o100644 << 16) >>> 0, 38); // a regular file, rw-r--r--
    cd.writeUInt32LE(Math.min(w.offset, MAX32), 42);
    const rec = Buffer.concat([cd, w.name, extra]);
    yield rec;
    offset += rec.length;
  }
  const cdSize = offset - cdStart;
  const z64End = written.length >= 0xffff || cdStart >= MAX32 || cdSize >= MAX32;
  if (z64End) {
    const rec = Buffer.alloc(56);
    rec.writeUInt32LE(0x06064b50, 0);
    rec.writeBigUInt64LE(44n, 4);
    rec.writeUInt16LE((3 << 8) | 45, 12);
    rec.writeUInt16LE(45, 14);
    rec.writeBigUInt64LE(BigInt(written.length), 24);
    rec.writeBigUInt64LE(BigInt(written.length), 32);
    rec.writeBigUInt64LE(BigInt(cdSize), 40);
    rec.writeBigUInt64LE(BigInt(cdStart), 48);
    const loc = Buffer.alloc(20);
    loc.writeUInt32LE(0x07064b50, 0);
    loc.writeBigUInt64LE(BigInt(offset), 8);
    loc.writeUInt32LE(1, 16);
    yield Buffer.concat([rec, loc]);
  }
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Math.min(written.length, 0xffff), 8);
  end.writeUInt16LE(Math.min(written.length, 0xffff), 10);
  end.writeUInt32LE(Math.min(cdSize, MAX32), 12);
  end.writeUInt32LE(Math.min(cdStart, MAX32), 16);
  yield end;
}
