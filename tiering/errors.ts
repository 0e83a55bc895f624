// The engine's error catalogue. The engine speaks errno-flavoured errors; each
// door maps them exactly once (S3 XML codes, FUSE errno, JSON problems).
// Codes are never reused; test/tiering/errors.test.ts checks they are unique.

export const ENGINE_ERRORS = {
  NO_SUCH_BUCKET: { errno: 'ENOENT', s3Code: 'NoSuchBucket', doc: 'The bucket does not exist.' },
  NO_SUCH_KEY: { errno: 'ENOENT', s3Code: 'NoSuchKey', doc: 'The object does not exist.' },
  NO_SUCH_UPLOAD: { errno: 'ENOENT', s3Code: 'NoSuchUpload', doc: 'The multipart upload does not exist or was completed or aborted.' },
  BUCKET_EXISTS: { errno: 'EEXIST', s3Code: 'BucketAlreadyOwnedByYou', doc: 'A bucket of that name already exists.' },
  BUCKET_NOT_EMPTY: { errno: 'ENOTEMPTY', s3Code: 'BucketNotEmpty', doc: 'The bucket still holds objects or uploads.' },
  INVALID_BUCKET_NAME: { errno: 'EINVAL', s3Code: 'InvalidBucketName', doc: 'The bucket name breaks the S3 naming rules.' },
  INVALID_KEY: { errno: 'EINVAL', s3Code: 'InvalidArgument', doc: 'The object key is empty or not valid UTF-8.' },
  KEY_TOO_LONG: { errno: 'ENAMETOOLONG', s3Code: 'KeyTooLongError', doc: 'The object key is longer than 1,024 bytes.' },
  INVALID_PART: { errno: 'EINVAL', s3Code: 'InvalidPart', doc: 'A listed part was not uploaded or its ETag does not match.' },
  INVALID_PART_ORDER: { errno: 'EINVAL', s3Code: 'InvalidPartOrder', doc: 'Parts were not listed in ascending order.' },
  ENTITY_TOO_SMALL: { errno: 'EINVAL', s3Code: 'EntityTooSmall', doc: 'A part other than the last is smaller than the minimum part size.' },
  ENTITY_TOO_LARGE: { errno: 'EFBIG', s3Code: 'EntityTooLarge', doc: 'The object or part exceeds the maximum size.' },
  INCOMPLETE_BODY: { errno: 'EIO', s3Code: 'IncompleteBody', doc: 'The body ended before the declared length.' },
  SITE_UNAVAILABLE: { errno: 'EIO', s3Code: 'ServiceUnavailable', doc: 'Too few sites accepted the write; nothing was stored.' },
  NO_GOOD_COPY: { errno: 'EIO', s3Code: 'InternalError', doc: 'No copy of the object could be read with matching checksums.' },
  DIRECTORY_NOT_EMPTY: { errno: 'ENOTEMPTY', s3Code: 'InvalidRequest', doc: 'A directory rename would land on a prefix that already holds objects.' },
  ABORTED: { errno: 'ECANCELED', s3Code: 'InternalError', doc: 'The write was aborted before it committed; nothing was stored.' },
  SITE_REQUEST_FAILED: { errno: 'EIO', s3Code: 'ServiceUnavailable', doc: 'A remote site refused a request, answered with an error or could not be reached.' },
} as const;

export type EngineErrorCode = keyof typeof ENGINE_ERRORS;

export class EngineError extends Error {
  readonly code: EngineErrorCode;
  readonly errno: string;
  readonly s3Code: string;
  constructor(code: EngineErrorCode, message?: string, options?: { cause?: unknown }) {
    const entry = ENGINE_ERRORS[code];
    super(message ?? entry.doc, options);
    this.name = 'EngineError';
    this.code = code;
    this.errno = entry.errno;
    this.s3Code = entry.s3Code;
  }
}

/**
 * A request to a remote site that failed: which site, which operation, and
 * what the remote said (HTTP status and its S3 error code) or why it could
 * not be reached.
 */
export class SiteRequestError extends EngineError {
  readonly site: string;
  readonly operation: string;
  readonly status: number | undefined;
  readonly remoteCode: string | undefined;
  constructor(info: { site: string; operation: string; status?: number; remoteCode?: string; detail: string }, options?: { cause?: unknown }) {
    const answer = info.status !== undefined ? `HTTP ${info.status}${info.remoteCode ? ` ${info.remoteCode}` : ''}: ` : '';
    super('SITE_REQUEST_FAILED', `site ${info.site}: ${info.operation} failed: ${answer}${info.detail}`, options);
    this.name = 'SiteRequestError';
    this.site = info.site;
    this.operation = info.operation;
    this.status = info.status;
    this.remoteCode = info.remoteCode;
  }
}
