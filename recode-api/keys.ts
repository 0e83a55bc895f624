// Every key family in RECODE's LevelDB, and the one builder for each. No other
// file concatenates key bytes. Parts are joined by NUL; identifiers and
// indexed values never hold control characters (the schema step refuses
// them), so NUL always ends a part and a record key sorts in catalogue order.
//
//   R \0 <inst> \0 <coll> \0 <cat>                          record
//   I \0 <f> \0 <value> \0 <inst> \0 <coll> \0 <cat>        index entry (empty value), written with its record;
//                                                           <f> is the field's one-letter code (INDEX_CODES);
//                                                           no entries for the values in schema.ts UNINDEXED
//   A \0 <inst> \0 <coll> \0 <cat> \0 <seq>                 audit entry (append-only; an import's creation is implied by the record, store.ts)
//   L \0 <bucket> \0 <key> \0 <inst> \0 <coll> \0 <cat>     media link, by object (value: the link)
//   E \0 <eventId>                                          workflow event
//   X \0 <downloadId>                                       download event
//   C \0 <inst> \0 <coll> \0 <cat> \0 <download>            download count entry, append-only: one per download that exported the
//                                                           record, value "1"; the count is the sum of the record's entries (stores
//                                                           written before also hold one entry without <download>: the count so far)
//   N \0 <inst> \0 <coll>                                   records in a collection
//   S \0 schema                                             the collection schema in force

export type RecordId = readonly [institutionCode: string, collectionCode: string, catalogNumber: string];

const SEP = 0;
const R = Buffer.from('R', 'latin1');

/**
 * One letter per indexed field in index keys: an import writes up to ten index
 * entries per record, and a short, fixed code keeps each key small. Codes are
 * on disk: never reuse or change one.
 */
const INDEX_CODES: Readonly<Record<string, string>> = {
  scientificName: 'n',
  family: 'f',
  genus: 'g',
  country: 'c',
  basisOfRecord: 'b',
  recordedBy: 'r',
  typeStatus: 't',
  status: 's',
  eventDate: 'd',
  decimalLatitude: 'y',
  decimalLongitude: 'x',
};
function code(field: string): string {
  const c = INDEX_CODES[field];
  if (c === undefined) throw new Error(`no index key code for field '${field}'`);
  return c;
}

/** A download's id as its count entries name it: the UUID's 16 bytes in 22 characters. */
function downloadTag(download: string): string {
  return Buffer.from(download.replaceAll('-', ''), 'hex').toString('base64url');
}

/** Family letter and parts joined by NUL (one string, one encode: this runs ~14 times per imported record). */
function build(family: string, ...parts: string[]): Buffer {
  return Buffer.from(parts.length === 0 ? family : `${family}\0${parts.join('\0')}`, 'utf8');
}

/** A family letter and a record id: build() written out, for the keys made once or more per imported or exported record. */
function idKey(family: string, id: RecordId): Buffer {
  return Buffer.from(`${family}\0${id[0]}\0${id[1]}\0${id[2]}`, 'utf8');
}

/** The exclusive end of every key that starts with `prefix` + NUL. */
function under(prefix: Buffer): { gt: Buffer; lt: Buffer } {
  return { gt: Buffer.concat([prefix, Buffer.of(SEP)]), lt: Buffer.concat([prefix, Buffer.of(SEP + 1)]) };
}

/** The parts of a key after its family letter. */
export function splitKey(k: Buffer): string[] {
  return k.subarray(2).toString('utf8').split('\0');
}

export const keys = {
  record: (id: RecordId) => idKey('R', id),
  /** Records of one institution, one collection, or all (fewer parts). */
  records: (...scope: string[]) => (scope.length === 0 ? under(Buffer.from('R', 'latin1')) : under(build('R', ...scope))),
  /** The id in a record key, given as text (store.recordChunks). */
  recordIdOf: (k: string): RecordId => k.slice(2).split('\0') as unknown as RecordId,

  // Written out rather than through build(): an import makes up to ten of these per record.
  index: (field: string, value: string, id: RecordId) => Buffer.from(`I\0${code(field)}\0${value}\0${id[0]}\0${id[1]}\0${id[2]}`, 'utf8'),
  /** Entries of `field` whose value is exactly `value`. */
  indexExact: (field: string, value: string) => under(build('I', code(field), value)),
  /** Entries of `field` whose value starts with `prefix` (any continuation). */
  indexPrefix: (field: string, prefix: string) => {
    const p = build('I', code(field), prefix);
    return { gt: p, lt: Buffer.concat([p, Buffer.of(0xff)]) };
  },
  /** Entries of `field` with from <= value <= to (either bound optional). */
  indexRange: (field: string, from?: string, to?: string) => {
    const all = under(build('I', code(field)));
    return {
      gt: from === undefined ? all.gt : build('I', code(field), from),
      lt: to === undefined ? all.lt : Buffer.concat([build('I', code(field), to), Buffer.of(SEP + 1)]),
    };
  },
  /** The record an index entry points at. */
  indexRecordOf: (k: Buffer): RecordId => splitKey(k).slice(2) as unknown as RecordId,
  /** The key of that record, cut from the entry's bytes (the value ends at the first NUL after `I\0<f>\0`). */
  recordOfIndex: (k: Buffer): Buffer => Buffer.concat([R, k.subarray(k.indexOf(SEP, 4))]),

  audit: (id: RecordId, seq: string) => build('A', ...id, seq),
  audits: (id: RecordId) => under(build('A', ...id)),

  link: (bucket: string, key: string, id: RecordId) => build('L', bucket, key, ...id),
  links: () => under(Buffer.from('L', 'latin1')),
  linksOf: (bucket: string, key: string) => under(build('L', bucket, key)),

  event: (eventId: string) => build('E', eventId),
  download: (downloadId: string) => build('X', downloadId),
  /**
   * The builder of one download's count entries, one per record: `download`
   * is the download event's id (a UUID), written in 22 characters, once.
   */
  downloadCount: (download: string) => {
    const tag = downloadTag(download);
    return (id: RecordId) => Buffer.from(`C\0${id[0]}\0${id[1]}\0${id[2]}\0${tag}`, 'utf8');
  },
  downloadTag: (download: string) => downloadTag(download),
  downloads: () => under(Buffer.from('X', 'latin1')),
  /** Every count entry of every record, a record's together (its entry without a download first). */
  allDownloadCounts: () => under(Buffer.from('C', 'latin1')),
  /** A count entry's parts: the key of its record's entry without a download, and its download's tag if it has one. */
  countEntryParts: (k: Buffer): { base: Buffer; tag?: string } => {
    let at = -1;
    for (let n = 0; n < 4; n++) {
      at = k.indexOf(SEP, at + 1); // the fourth NUL comes before <download>
      if (at < 0) return { base: k };
    }
    return { base: k.subarray(0, at), tag: k.subarray(at + 1).toString('latin1') };
  },
  /** Every count entry of a record, the one without a download included. */
  downloadCounts: (id: RecordId) => {
    const k = idKey('C', id);
    return { gte: k, lt: Buffer.concat([k, Buffer.of(SEP + 1)]) };
  },
  collectionCount: (inst: string, coll: string) => build('N', inst, coll),
  collectionCounts: () => under(Buffer.from('N', 'latin1')),
  schema: () => build('S', 'schema'),
};

/** Resume strictly after `k` within a range. */
export function after(range: { gt: Buffer; lt: Buffer }, k: Buffer | undefined): { gt: Buffer; lt: Buffer } {
  return k === undefined || Buffer.compare(k, range.gt) <= 0 ? range : { gt: k, lt: range.lt };
}
