// Signs raw HTTP requests with the AWS SDK's own SigV4 signer, for tests that
// need control of the wire (slow or broken bodies, forged chunks).
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import type { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { ACCESS_KEY, SECRET_KEY } from './gateway.js';

export const signer = new SignatureV4({
  service: 's3',
  region: 'us-east-1',
  credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
  sha256: Sha256,
  uriEscapePath: false,
});

export interface RawRequest {
  method: string;
  url: string; // full URL; its path is signed exactly as written (no ../ folding)
  headers?: Record<string, string>;
  /** Defaults to UNSIGNED-PAYLOAD. */
  payloadHash?: string;
}

/** Headers (lower-case) that make `req` pass SigV4 at the gateway. */
export async function signedHeaders(req: RawRequest, date = new Date()): Promise<Record<string, string>> {
  const u = new URL(req.url);
  const query: Record<string, string> = {};
  u.searchParams.forEach((v, k) => (query[k] = v));
  const rawPath = req.url.slice(u.origin.length).split('?')[0]!;
  const headers = { host: u.host, 'x-amz-content-sha256': req.payloadHash ?? 'UNSIGNED-PAYLOAD', ...req.headers };
  const signed = await signer.sign(
    { method: req.method, protocol: u.protocol, hostname: u.hostname, port: Number(u.port), path: rawPath, query, headers },
    { signingDate: date },
  );
  return signed.headers as Record<string, string>;
}

/** A presigned URL made by the AWS SDK's own presigner. */
export async function presign(client: S3Client, command: GetObjectCommand | PutObjectCommand, expiresIn: number, signingDate = new Date()): Promise<string> {
  return getSignedUrl(client, command, { expiresIn, signingDate });
}
