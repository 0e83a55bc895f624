// The collection schema: a JSON Schema for a record's `data`, Darwin Core by
// default and replaceable by an admin. Validation uses ajv with every error
// listed, each turned into a field error. The indexed fields are fixed here
// (they are what search plans over); a schema change never drops them.
import { Ajv, type ValidateFunction } from 'ajv';
import { ajvFieldError, RecodeError, type FieldError } from './errors.js';

const text = { type: 'string', maxLength: 1000 } as const;
/** Identifiers: no control characters (they delimit keys); no '/' in institution and collection (it delimits ids). */
const code = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[^\\u0000-\\u001f/]+$' } as const;

export const DARWIN_CORE_SCHEMA = {
  $id: 'urn:valentine:recode:darwin-core',
  title: 'Darwin Core occurrence',
  type: 'object',
  additionalProperties: false,
  required: ['institutionCode', 'collectionCode', 'catalogNumber', 'scientificName', 'basisOfRecord'],
  properties: {
    institutionCode: code,
    collectionCode: code,
    catalogNumber: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[^\\u0000-\\u001f]+$' },
    occurrenceID: text,
    basisOfRecord: {
      enum: ['PreservedSpecimen', 'FossilSpecimen', 'LivingSpecimen', 'MaterialSample', 'MaterialEntity', 'HumanObservation', 'MachineObservation', 'MaterialCitation', 'Occurrence'],
    },
    scientificName: { type: 'string', minLength: 1, maxLength: 1000 },
    scientificNameAuthorship: text,
    kingdom: text,
    phylum: text,
    class: text,
    order: text,
    family: text,
    genus: text,
    specificEpithet: text,
    infraspecificEpithet: text,
    taxonRank: text,
    vernacularName: text,
    recordedBy: text,
    recordNumber: text,
    identifiedBy: text,
    dateIdentified: { type: 'string', format: 'dwc-date' },
    eventDate: { type: 'string', format: 'dwc-date' },
    country: text,
    countryCode: { type: 'string', pattern: '^[A-Z]{2}$' },
    stateProvince: text,
    locality: text,
    decimalLatitude: { type: 'number', minimum: -90, maximum: 90 },
    decimalLongitude: { type: 'number', minimum: -180, maximum: 180 },
    coordinateUncertaintyInMeters: { type: 'number', minimum: 0 },
    typeStatus: text,
    preparations: text,
    sex: text,
    lifeStage: text,
    individualCount: { type: 'integer', minimum: 0 },
    occurrenceRemarks: { type: 'string', maxLength: 10000 },
    dynamicProperties: { type: 'object' },
  },
} as const;

const DATE = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?)?)?$/;

/** A Darwin Core date: ISO 8601 year, month, day (optionally with time), or an interval a/b. */
export function isDwcDate(s: string): boolean {
  if (isPlainDay(s)) return true;
  const parts = s.split('/');
  if (parts.length > 2) return false;
  const starts = parts.map(dateStart);
  if (starts.some((d) => d === undefined)) return false;
  return starts.length === 1 || starts[0]! <= starts[1]!;
}

/**
 * The first day a Darwin Core date covers, as YYYY-MM-DD (what the date
 * index and range filters use). An import asks twice per record (validation,
 * index), and dates repeat: recent answers are kept.
 */
export function dateStart(s: string): string | undefined {
  if (isPlainDay(s)) return s; // the common case, checked without the pattern or the cache
  if (recentStarts.has(s)) return recentStarts.get(s);
  if (recentStarts.size >= 65_536) recentStarts.clear();
  const start = parseDateStart(s);
  recentStarts.set(s, start);
  return start;
}
const recentStarts = new Map<string, string | undefined>();

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
const DIGIT_POSITIONS = [0, 1, 2, 3, 5, 6, 8, 9];

/**
 * Whether `s` is YYYY-MM-DD, a real day, in years 1000-9999 (earlier years
 * go to parseDateStart, whose Date.UTC reads years below 100 as 19xx).
 */
function isPlainDay(s: string): boolean {
  if (s.length !== 10 || s.charCodeAt(4) !== 0x2d || s.charCodeAt(7) !== 0x2d || s.charCodeAt(0) === 0x30) return false;
  for (const i of DIGIT_POSITIONS) if (!isDigit(s.charCodeAt(i))) return false;
  const year = Number(s.slice(0, 4));
  const month = Number(s.slice(5, 7));
  const day = Number(s.slice(8, 10));
  if (month < 1 || month > 12 || day < 1) return false;
  const leap = month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return day <= DAYS_IN_MONTH[month - 1]! + (leap ? 1 : 0);
}

function parseDateStart(s: string): string | undefined {
  const m = DATE.exec(s.split('/')[0] ?? '');
  if (!m) return undefined;
  const [, y, mo = '01', d = '01', h = '00', mi = '00', se = '00'] = m;
  const month = Number(mo);
  const day = Number(d);
  const days = new Date(Date.UTC(Number(y), month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > days || Number(h) > 23 || Number(mi) > 59 || Number(se) > 60) return undefined;
  return `${y}-${mo}-${d}`;
}

export type IndexKind = 'text' | 'date' | 'number';

/**
 * The indexed fields. `text` supports exact and prefix filters, `date` and
 * `number` ranges (dates by their first day, see dateStart). `status` is the
 * workflow state; the rest are fields of `data`.
 */
export const INDEXES: Readonly<Record<string, IndexKind>> = {
  scientificName: 'text',
  family: 'text',
  genus: 'text',
  country: 'text',
  basisOfRecord: 'text',
  recordedBy: 'text',
  typeStatus: 'text',
  status: 'text',
  eventDate: 'date',
  decimalLatitude: 'number',
  decimalLongitude: 'number',
};

/**
 * Index values that are not written. Every record starts `registered` and
 * most stay so: its entries would be a twelfth of an import's writes for an
 * index that selects nearly everything. A filter that can match it is
 * answered by walking the records (or another filter's index), and its count
 * is the collection counts less the status index (search.ts).
 */
export const UNINDEXED: Readonly<Record<string, string>> = { status: 'registered' };

/** A number as a string that sorts bytewise in numeric order (IEEE 754 with the sign flipped). */
export function sortableNumber(n: number): string {
  // One shared view and a table of hex pairs: an import encodes two numbers per record.
  NUMBER.setFloat64(0, n === 0 ? 0 : n); // big-endian; -0 sorts as 0
  const negative = (NUMBER.getUint8(0) & 0x80) !== 0;
  let out = '';
  for (let i = 0; i < 8; i++) {
    const b = NUMBER.getUint8(i);
    out += HEX_PAIRS[negative ? ~b & 0xff : i === 0 ? b | 0x80 : b];
  }
  return out;
}
const NUMBER = new DataView(new ArrayBuffer(8));
const HEX_PAIRS = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

/** The index value of a field's value, or undefined when it is not indexable. */
export function indexValue(kind: IndexKind, v: unknown): string | undefined {
  if (kind === 'number') return typeof v === 'number' && Number.isFinite(v) ? sortableNumber(v) : undefined;
  if (typeof v !== 'string' || v === '') return undefined;
  return kind === 'date' ? dateStart(v) : v;
}

/** Fields whose values go into keys, where a control character would end a part early. */
const KEYED_FIELDS = ['institutionCode', 'collectionCode', 'catalogNumber', ...Object.keys(INDEXES)];

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f]/;

export type RecordData = Record<string, unknown>;

/** A compiled collection schema. */
export class CollectionSchema {
  private constructor(
    readonly json: Readonly<Record<string, unknown>>,
    private readonly check: ValidateFunction,
  ) {}

  /** Compile `json`, refusing a schema that could not identify records. */
  static compile(json: Record<string, unknown>): CollectionSchema {
    const ajv = new Ajv({ allErrors: true, strict: false });
    ajv.addFormat('dwc-date', { type: 'string', validate: isDwcDate });
    const props = (json.properties ?? {}) as Record<string, { type?: string }>;
    const required = (json.required ?? []) as string[];
    const problems: FieldError[] = [];
    if (json.type !== 'object') problems.push({ pointer: '/type', detail: "must be 'object'" });
    for (const f of ['institutionCode', 'collectionCode', 'catalogNumber']) {
      if (props[f]?.type !== 'string') problems.push({ pointer: `/properties/${f}`, detail: 'must be declared as a string' });
      if (!required.includes(f)) problems.push({ pointer: '/required', detail: `must list ${f}` });
    }
    if (problems.length > 0) throw new RecodeError('INVALID_SCHEMA', 'the schema cannot identify records', problems);
    let check: ValidateFunction;
    try {
      check = ajv.compile({ ...json, $id: undefined });
    } catch (err) {
      throw new RecodeError('INVALID_SCHEMA', `the schema does not compile: ${(err as Error).message}`);
    }
    return new CollectionSchema(Object.freeze(structuredClone(json)), check);
  }

  /** The field names in schema order (CSV and DwC-A columns). */
  get fields(): string[] {
    return Object.keys((this.json.properties ?? {}) as object);
  }

  /** Field type as declared ('string', 'number', 'integer', 'object', ...), for CSV decoding. */
  typeOf(field: string): string | undefined {
    const p = ((this.json.properties ?? {}) as Record<string, { type?: string; enum?: unknown[] }>)[field];
    return p?.type ?? (p?.enum ? 'string' : undefined);
  }

  /** Every problem with `data` as field errors under `root` (empty when it is valid). */
  problems(data: unknown, root = '/data'): FieldError[] {
    if (typeof data !== 'object' || data === null || Array.isArray(data)) return [{ pointer: root, detail: 'must be an object' }];
    const out: FieldError[] = [];
    if (!this.check(data)) for (const e of this.check.errors ?? []) out.push(ajvFieldError(e, root));
    const d = data as RecordData;
    for (const f of KEYED_FIELDS) {
      if (typeof d[f] === 'string' && CONTROL.test(d[f]) && !out.some((e) => e.pointer === `${root}/${f}`)) out.push({ pointer: `${root}/${f}`, detail: 'must not contain control characters' });
    }
    return out;
  }
}
