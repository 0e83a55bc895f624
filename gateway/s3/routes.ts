// The S3 route table: method × scope × subresource (× header) → handler, the
// permission it needs and the operation name used in metrics. The first row
// that matches wins, so specific rows come before general ones.
import type { Role } from './auth.js';
import type { Handler } from './handlers/common.js';
import * as bucket from './handlers/bucket.js';
import * as multipart from './handlers/multipart.js';
import * as object from './handlers/object.js';

export type Scope = 'service' | 'bucket' | 'object';
export type Action = 'read' | 'write';

export interface Route {
  method: string;
  scope: Scope;
  /** Query parameter that selects this call (`?uploads`, `?tagging`…). */
  sub?: string;
  /** Query parameter with a required value (list-type=2). */
  subValue?: string;
  /** Header whose presence selects this call (x-amz-copy-source). */
  header?: string;
  op: string;
  action: Action;
  handler: Handler;
}

const r = (method: string, scope: Scope, op: string, action: Action, handler: Handler, extra: Partial<Route> = {}): Route => ({
  method,
  scope,
  op,
  action,
  handler,
  ...extra,
});

export const ROUTES: readonly Route[] = [
  r('GET', 'service', 'ListBuckets', 'read', bucket.listBuckets),

  r('GET', 'bucket', 'GetBucketLocation', 'read', bucket.getBucketLocation, { sub: 'location' }),
  r('GET', 'bucket', 'ListMultipartUploads', 'read', multipart.listMultipartUploads, { sub: 'uploads' }),
  r('GET', 'bucket', 'ListObjectsV2', 'read', bucket.listObjectsV2, { sub: 'list-type', subValue: '2' }),
  r('GET', 'bucket', 'ListObjects', 'read', bucket.listObjectsV1),
  r('HEAD', 'bucket', 'HeadBucket', 'read', bucket.headBucket),
  r('PUT', 'bucket', 'CreateBucket', 'write', bucket.createBucket),
  r('DELETE', 'bucket', 'DeleteBucket', 'write', bucket.deleteBucket),
  r('POST', 'bucket', 'DeleteObjects', 'write', bucket.deleteObjects, { sub: 'delete' }),

  r('PUT', 'object', 'UploadPartCopy', 'write', multipart.uploadPartCopy, { sub: 'uploadId', header: 'x-amz-copy-source' }),
  r('PUT', 'object', 'UploadPart', 'write', multipart.uploadPart, { sub: 'uploadId' }),
  r('PUT', 'object', 'PutObjectTagging', 'write', object.putObjectTagging, { sub: 'tagging' }),
  r('PUT', 'object', 'CopyObject', 'write', object.copyObject, { header: 'x-amz-copy-source' }),
  r('PUT', 'object', 'PutObject', 'write', object.putObject),
  r('GET', 'object', 'ListParts', 'read', multipart.listParts, { sub: 'uploadId' }),
  r('GET', 'object', 'GetObjectTagging', 'read', object.getObjectTagging, { sub: 'tagging' }),
  r('GET', 'object', 'GetObject', 'read', object.getObject),
  r('HEAD', 'object', 'HeadObject', 'read', object.headObject),
  r('DELETE', 'object', 'AbortMultipartUpload', 'write', multipart.abortMultipartUpload, { sub: 'uploadId' }),
  r('DELETE', 'object', 'DeleteObjectTagging', 'write', object.deleteObjectTagging, { sub: 'tagging' }),
  r('DELETE', 'object', 'DeleteObject', 'write', object.deleteObject),
  r('POST', 'object', 'RestoreObject', 'write', object.restoreObject, { sub: 'restore' }),
  r('POST', 'object', 'CreateMultipartUpload', 'write', multipart.createMultipartUpload, { sub: 'uploads' }),
  r('POST', 'object', 'CompleteMultipartUpload', 'write', multipart.completeMultipartUpload, { sub: 'uploadId' }),
];

/** Subresources of real S3 this gateway does not implement: answered NotImplemented, never misrouted. */
const UNSUPPORTED = [
  'acl', 'policy', 'cors', 'lifecycle', 'versioning', 'versions', 'website', 'logging', 'notification', 'replication',
  'encryption', 'object-lock', 'retention', 'legal-hold', 'accelerate', 'requestPayment', 'analytics', 'inventory',
  'metrics', 'ownershipControls', 'publicAccessBlock', 'intelligent-tiering', 'torrent', 'select', 'attributes',
];

export function matchRoute(method: string, scope: Scope, query: Map<string, string>, headers: Record<string, unknown>): Route | 'unsupported' | undefined {
  for (const route of ROUTES) {
    if (route.method !== method || route.scope !== scope) continue;
    if (route.sub !== undefined && (!query.has(route.sub) || (route.subValue !== undefined && query.get(route.sub) !== route.subValue))) continue;
    if (route.header !== undefined && headers[route.header] === undefined) continue;
    if (route.sub === undefined && UNSUPPORTED.some((s) => query.has(s))) return 'unsupported';
    return route;
  }
  return undefined;
}

/** What each role may do. */
export function allowed(role: Role, action: Action): boolean {
  return action === 'read' || role === 'readwrite' || role === 'admin';
}
