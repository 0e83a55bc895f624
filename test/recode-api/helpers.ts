// Helpers for RECODE tests: a gateway with extra credentials (one per role),
// a small JSON-over-HTTP client, and a seeded generator of Darwin Core records.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ACCESS_KEY, SECRET_KEY, startGateway, tempDir, type Gateway } from '../helpers/gateway.js';

export const ADMIN: Key = [ACCESS_KEY, SECRET_KEY];
export const READER: Key = ['RECODEREADER', 'reader-secret-0123'];
export const WRITER: Key = ['RECODEWRITER', 'writer-secret-0123'];
export type Key = readonly [accessKey: string, secretKey: string];

/** A real gateway whose config also holds a readonly and a readwrite key. */
export async function startRecodeGateway(dataDir?: string): Promise<Gateway> {
  const dir = dataDir ?? (await tempDir('valentine-recode-'));
  const config = join(dir, 'test-config.json');
  await writeFile(
    config,
    JSON.stringify({
      credentials: [
        { accessKey: READER[0], secretKey: READER[1], role: 'readonly' },
        { accessKey: WRITER[0], secretKey: WRITER[1], role: 'readwrite' },
      ],
    }),
  );
  return startGateway({ dataDir: dir, args: ['--config', config] });
}

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

export interface CallOptions {
  json?: unknown;
  body?: string | Buffer | ReadableStream<Uint8Array>;
  headers?: Record<string, string>;
  as?: Key | null;
}

export async function call(gw: Pick<Gateway, 'adminUrl'>, method: string, path: string, opts: CallOptions = {}): Promise<Reply> {
  const headers: Record<string, string> = { ...opts.headers };
  const key = opts.as === undefined ? ADMIN : opts.as;
  if (key) headers.authorization = `Basic ${Buffer.from(`${key[0]}:${key[1]}`).toString('base64')}`;
  let body: string | Buffer | ReadableStream<Uint8Array> | undefined = opts.body;
  if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(`${gw.adminUrl}/recode/v1${path}`, { method, headers, ...(body !== undefined && { body, duplex: 'half' }) } as RequestInit);
  const text = await res.text();
  let parsed: unknown = undefined;
  if (/^application\/(problem\+)?json/.test(res.headers.get('content-type') ?? '')) parsed = JSON.parse(text);
  return { status: res.status, headers: res.headers, text, body: parsed };
}

/** A deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const GENERA: [string, string][] = [
  ['Apis', 'Apidae'],
  ['Bombus', 'Apidae'],
  ['Carabus', 'Carabidae'],
  ['Papilio', 'Papilionidae'],
  ['Quercus', 'Fagaceae'],
  ['Rosa', 'Rosaceae'],
  ['Felis', 'Felidae'],
  ['Passer', 'Passeridae'],
];
const EPITHETS = ['alba', 'mellifera', 'terrestris', 'robur', 'canina', 'catus', 'domesticus', 'nemoralis', 'machaon', 'major'];
const COUNTRIES = ['United Kingdom', 'France', 'Kenya', 'Brazil', 'Japan', 'Australia'];
const COLLECTORS = ['A. Smith', 'B. Jones', 'C. Darwin', 'D. Okafor', 'E. Tanaka'];
const BASIS = ['PreservedSpecimen', 'FossilSpecimen', 'MaterialSample'];
export const COLLECTIONS = ['BOT', 'ENT', 'ZOO'];

export type Data = Record<string, unknown>;

/** `n` Darwin Core records, the same for the same seed. */
export function generate(n: number, seed = 1, from = 0): Data[] {
  const r = rng(seed);
  const pick = <T>(a: readonly T[]) => a[Math.floor(r() * a.length)]!;
  const out: Data[] = [];
  for (let i = from; i < from + n; i++) {
    const [genus, family] = pick(GENERA);
    const year = 1850 + Math.floor(r() * 170);
    const month = 1 + Math.floor(r() * 12);
    const day = 1 + Math.floor(r() * 28);
    const precision = r();
    const eventDate =
      precision < 0.1 ? String(year) : precision < 0.2 ? `${year}-${String(month).padStart(2, '0')}` : `${year}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
    const d: Data = {
      institutionCode: 'NHM',
      collectionCode: pick(COLLECTIONS),
      catalogNumber: `NHM-${String(i).padStart(7, '0')}`,
      basisOfRecord: pick(BASIS),
      scientificName: `${genus} ${pick(EPITHETS)}`,
      family,
      genus,
      recordedBy: pick(COLLECTORS),
      eventDate,
      country: pick(COUNTRIES),
      decimalLatitude: Math.round((r() * 180 - 90) * 1e5) / 1e5,
      decimalLongitude: Math.round((r() * 360 - 180) * 1e5) / 1e5,
      preparations: pick(['pinned', 'pressed', 'skin', 'alcohol']),
    };
    if (r() < 0.05) d.typeStatus = pick(['holotype', 'paratype', 'syntype']);
    if (r() < 0.3) d.dynamicProperties = { drawer: Math.floor(r() * 500), tray: pick(['A', 'B']) };
    if (r() < 0.2) d.locality = `Site, "north" field\t${i}`;
    out.push(d);
  }
  return out;
}

export const idOfData = (d: Data) => `${String(d.institutionCode)}/${String(d.collectionCode)}/${String(d.catalogNumber)}`;
export const ndjsonOf = (rows: Data[]) => rows.map((data) => JSON.stringify({ data })).join('\n') + '\n';

/** The first day a DwC date covers (the semantics the date filters promise), written out independently. */
export function firstDay(s: string): string {
  const [y, m = '01', d = '01'] = s.split('/')[0]!.split('T')[0]!.split('-');
  return `${y}-${m}-${d}`;
}
