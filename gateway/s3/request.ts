// What the S3 door knows about a request once its target is parsed: path-style
// addressing (/bucket/key), the query as a map, and helpers shared by every
// handler for reading bounded bodies and answering with XML.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuthContext } from './auth.js';
import { S3Error } from './errors.js';
import { parseXml, xmlDocument, type ParsedElement, type XmlNode } from './xml.js';

export interface S3Target {
  bucket: string; // '' for the service
  key: string; // '' for a bucket
  query: Map<string, string>;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Percent-decode to bytes, then insist on valid UTF-8 (hostile keys stop here). */
export function decodeComponent(s: string): string {
  if (!s.includes('%')) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25) {
      const hex = s.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw new S3Error('InvalidArgument', 'Malformed percent-encoding in the request target.');
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (c < 0x80) {
      bytes.push(c);
    } else {
      bytes.push(...Buffer.from(s[i]!, 'utf8'));
    }
  }
  try {
    return utf8.decode(Uint8Array.from(bytes));
  } catch {
    throw new S3Error('InvalidArgument', 'The request target is not valid UTF-8.');
  }
}

export function parseTarget(rawUrl: string): S3Target {
  const q = rawUrl.indexOf('?');
  const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
  if (!path.startsWith('/')) throw new S3Error('InvalidRequest', 'The request target must be an absolute path.');
  const slash = path.indexOf('/', 1);
  const bucket = decodeComponent(slash < 0 ? path.slice(1) : path.slice(1, slash));
  const key = slash < 0 ? '' : decodeComponent(path.slice(slash + 1));
  const query = new Map<string, string>();
  if (q >= 0) {
    for (const pair of rawUrl.slice(q + 1).split('&')) {
      if (pair === '') continue;
      const eq = pair.indexOf('=');
      query.set(decodeComponent(eq < 0 ? pair : pair.slice(0, eq)), eq < 0 ? '' : decodeComponent(pair.slice(eq + 1)));
    }
  }
  return { bucket, key, query };
}

export interface S3Call extends S3Target {
  req: FastifyRequest;
  reply: FastifyReply;
  auth: AuthContext;
  requestId: string;
}

export function sendXml(reply: FastifyReply, root: XmlNode, status = 200): void {
  reply.code(status).header('content-type', 'application/xml').send(xmlDocument(root));
}

/** Read a small request body (XML documents) with a hard cap. */
export async function readSmallBody(body: AsyncIterable<Buffer>, maxBytes: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of body) {
    n += chunk.length;
    if (n > maxBytes) throw new S3Error('MalformedXML', `The XML body is larger than ${maxBytes} bytes.`);
    parts.push(chunk);
  }
  return Buffer.concat(parts);
}

export async function readXmlBody(body: AsyncIterable<Buffer>, maxBytes: number, rootName: string): Promise<ParsedElement> {
  const buf = await readSmallBody(body, maxBytes);
  let text: string;
  try {
    text = utf8.decode(buf);
  } catch {
    throw new S3Error('MalformedXML', 'The XML body is not valid UTF-8.');
  }
  const root = parseXml(text);
  if (root.name !== rootName) throw new S3Error('MalformedXML', `Expected a <${rootName}> document.`);
  return root;
}

/** RFC 1123 date as HTTP headers carry it. */
export const httpDate = (ms: number) => new Date(ms).toUTCString();
/** ISO 8601 with milliseconds, as S3 listings carry it. */
export const isoDate = (ms: number) => new Date(ms).toISOString();
