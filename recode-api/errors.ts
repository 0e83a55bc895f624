// RECODE's error catalogue. Every refusal is one of these codes; the door
// maps it once (toProblem) to an RFC 9457 problem document. Codes are never
// reused; test/recode-api/errors.test.ts checks they are unique and documented.

export const RECODE_ERRORS = {
  INVALID_RECORD: { status: 422, title: 'Invalid record', doc: 'The record breaks the collection schema; `errors` lists each field.' },
  INVALID_REQUEST: { status: 400, title: 'Invalid request', doc: 'The request (path, query or body shape) is not valid; `errors` lists each field.' },
  MALFORMED_JSON: { status: 400, title: 'Malformed JSON', doc: 'The request body is not valid JSON.' },
  BODY_TOO_LARGE: { status: 413, title: 'Body too large', doc: 'The request body exceeds the limit for this route.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported media type', doc: 'The body is not in a media type this route accepts.' },
  NOT_FOUND: { status: 404, title: 'Not found', doc: 'No such record, event, download or route.' },
  RECORD_DELETED: { status: 410, title: 'Record deleted', doc: 'The record was deleted (soft); the reason is in `deleted`.' },
  DUPLICATE_RECORD: { status: 409, title: 'Duplicate catalogue number', doc: 'A record with this catalogNumber already exists in the institution and collection.' },
  PRECONDITION_REQUIRED: { status: 428, title: 'Precondition required', doc: 'Changes need If-Match with the ETag last read, so no change is lost.' },
  VERSION_CONFLICT: { status: 412, title: 'Version conflict', doc: 'The record changed since the ETag given in If-Match was read.' },
  TRANSITION_REFUSED: { status: 409, title: 'Transition refused', doc: 'The workflow event is not allowed for one or more records in their current state; nothing changed.' },
  BROKEN_MEDIA_LINK: { status: 422, title: 'Broken media link', doc: 'A media link names an object that does not exist in storage.' },
  INVALID_SCHEMA: { status: 422, title: 'Invalid collection schema', doc: 'The proposed collection schema does not compile or lacks the identifying fields.' },
  INVALID_CURSOR: { status: 400, title: 'Invalid cursor', doc: 'The cursor is not one this search returned.' },
  INTERNAL: { status: 500, title: 'Internal error', doc: 'An unexpected failure; nothing half-written is visible.' },
} as const;

export type RecodeErrorCode = keyof typeof RECODE_ERRORS;

/** One field-level problem: a JSON pointer into the request and what is wrong there. */
export interface FieldError {
  pointer: string;
  detail: string;
}

export class RecodeError extends Error {
  readonly status: number;
  constructor(
    readonly code: RecodeErrorCode,
    message?: string,
    readonly errors: FieldError[] = [],
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message ?? RECODE_ERRORS[code].doc);
    this.name = 'RecodeError';
    this.status = RECODE_ERRORS[code].status;
  }
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: RecodeErrorCode;
  instance?: string;
  errors?: FieldError[];
  [extra: string]: unknown;
}

export const problemType = (code: RecodeErrorCode) => `urn:valentine:recode:${code.toLowerCase().replaceAll('_', '-')}`;

interface FrameworkError {
  code?: string;
  statusCode?: number;
  validation?: { instancePath: string; message?: string; keyword: string; params: Record<string, unknown> }[];
  validationContext?: string;
}

/** Map any failure to a RecodeError: ours pass through, fastify's are translated, the rest are INTERNAL. */
export function toRecodeError(err: unknown): RecodeError {
  if (err instanceof RecodeError) return err;
  const f = err as FrameworkError;
  if (f?.validation) {
    const where = f.validationContext === 'querystring' ? 'query' : (f.validationContext ?? 'body');
    return new RecodeError('INVALID_REQUEST', `the ${where} is not valid`, f.validation.filter((v) => v.keyword !== 'if').map((v) => ajvFieldError(v, `/${where}`)));
  }
  switch (f?.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new RecodeError('MALFORMED_JSON', (err as Error).message);
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new RecodeError('BODY_TOO_LARGE');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new RecodeError('UNSUPPORTED_MEDIA_TYPE', (err as Error).message);
  }
  if (err instanceof SyntaxError) return new RecodeError('MALFORMED_JSON', err.message);
  return new RecodeError('INTERNAL', 'internal error');
}

/** An ajv error as a field error, its pointer rooted at `root`. */
export function ajvFieldError(e: { instancePath: string; message?: string; keyword: string; params: Record<string, unknown> }, root: string): FieldError {
  if (e.keyword === 'additionalProperties') {
    const name = String(e.params.additionalProperty);
    return { pointer: `${root}${e.instancePath}/${escapePointer(name)}`, detail: `unknown field '${name}'` };
  }
  if (e.keyword === 'required') {
    const name = String(e.params.missingProperty);
    return { pointer: `${root}${e.instancePath}/${escapePointer(name)}`, detail: 'is required' };
  }
  return { pointer: `${root}${e.instancePath}`, detail: e.message ?? e.keyword };
}

const escapePointer = (s: string) => s.replaceAll('~', '~0').replaceAll('/', '~1');

export function toProblem(e: RecodeError, instance?: string): Problem {
  const entry = RECODE_ERRORS[e.code];
  return {
    type: problemType(e.code),
    title: entry.title,
    status: entry.status,
    detail: e.message,
    code: e.code,
    ...(instance !== undefined && { instance }),
    ...(e.errors.length > 0 && { errors: e.errors }),
    ...e.extra,
  };
}
