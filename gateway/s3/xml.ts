// XML for the S3 door. Responses are built from typed nodes that escape text
// by construction; requests are parsed by a small strict parser that refuses
// DTDs and entity declarations outright (no XXE, no billion laughs) and
// enforces a size cap before parsing.
import { S3Error } from './errors.js';

export type XmlChild = XmlNode | string | number | boolean | undefined | null;
export interface XmlNode {
  name: string;
  children: XmlChild[];
}

/** An element. Undefined/null children are skipped, so optional fields read naturally. */
export function el(name: string, ...children: (XmlChild | XmlChild[])[]): XmlNode {
  return { name, children: children.flat() };
}

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

export function escapeXml(s: string): string {
  // XML 1.0 cannot carry these control characters even as references; clients
  // that need such keys exactly ask for encoding-type=url.
  return s.replace(/[&<>"']/g, (c) => ESC[c]!).replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, '\uFFFD');
}

function render(node: XmlChild, out: string[]): void {
  if (node === undefined || node === null) return;
  if (typeof node !== 'object') {
    out.push(escapeXml(String(node)));
    return;
  }
  out.push('<', node.name, '>');
  for (const c of node.children) render(c, out);
  out.push('</', node.name, '>');
}

export function xmlDocument(root: XmlNode): string {
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>\n'];
  out.push('<', root.name, ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/">');
  for (const c of root.children) render(c, out);
  out.push('</', root.name, '>');
  return out.join('');
}

// ---- parsing ----

export interface ParsedElement {
  name: string; // local name, namespace prefix dropped
  children: ParsedElement[];
  text: string;
}

/** Parse a request body; anything not well-formed is MalformedXML. */
export function parseXml(src: string): ParsedElement {
  if (/<!DOCTYPE|<!ENTITY/i.test(src)) throw new S3Error('MalformedXML', 'XML with a DOCTYPE or entity declarations is not accepted.');
  let i = 0;
  const fail = (why: string): never => {
    throw new S3Error('MalformedXML', `The XML you provided was not well-formed: ${why}.`);
  };
  const skipMisc = () => {
    for (;;) {
      while (i < src.length && /\s/.test(src[i]!)) i++;
      if (src.startsWith('<?', i)) {
        const end = src.indexOf('?>', i);
        if (end < 0) fail('unterminated declaration');
        i = end + 2;
      } else if (src.startsWith('<!--', i)) {
        const end = src.indexOf('-->', i);
        if (end < 0) fail('unterminated comment');
        i = end + 3;
      } else return;
    }
  };
  const parseElement = (depth: number): ParsedElement => {
    if (depth > 32) fail('nested too deeply');
    if (src[i] !== '<') fail(`expected an element at offset ${i}`);
    const m = /^<([A-Za-z_][\w.:-]*)((?:\s+[\w.:-]+\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)>/.exec(src.slice(i, i + 4096));
    if (!m) fail(`bad start tag at offset ${i}`);
    const [whole, qname, , selfClose] = m!;
    i += whole.length;
    const node: ParsedElement = { name: qname!.replace(/^.*:/, ''), children: [], text: '' };
    if (selfClose) return node;
    let text = '';
    for (;;) {
      if (i >= src.length) fail(`unclosed element <${qname}>`);
      if (src.startsWith('</', i)) {
        const close = /^<\/([A-Za-z_][\w.:-]*)\s*>/.exec(src.slice(i, i + 512));
        if (!close || close[1] !== qname) fail(`mismatched end tag at offset ${i}`);
        i += close![0].length;
        node.text = text;
        return node;
      }
      if (src.startsWith('<!--', i)) {
        const end = src.indexOf('-->', i);
        if (end < 0) fail('unterminated comment');
        i = end + 3;
      } else if (src.startsWith('<![CDATA[', i)) {
        const end = src.indexOf(']]>', i);
        if (end < 0) fail('unterminated CDATA');
        text += src.slice(i + 9, end);
        i = end + 3;
      } else if (src[i] === '<') {
        node.children.push(parseElement(depth + 1));
      } else {
        const end = src.indexOf('<', i);
        text += decodeEntities(src.slice(i, end < 0 ? src.length : end), fail);
        i = end < 0 ? src.length : end;
      }
    }
  };
  skipMisc();
  const root = parseElement(0);
  skipMisc();
  if (i !== src.length) fail('content after the root element');
  return root;
}

function decodeEntities(s: string, fail: (why: string) => never): string {
  if (/&(?![^;\s]{1,10};)/.test(s)) fail('bare & in text');
  return s.replace(/&([^;\s]{1,10});/g, (_, ent: string) => {
    switch (ent) {
      case 'amp': return '&';
      case 'lt': return '<';
      case 'gt': return '>';
      case 'quot': return '"';
      case 'apos': return "'";
    }
    const cp = ent.startsWith('#x') ? parseInt(ent.slice(2), 16) : ent.startsWith('#') ? parseInt(ent.slice(1), 10) : NaN;
    if (!Number.isInteger(cp) || cp < 0 || cp > 0x10ffff) fail(`unknown entity &${ent};`);
    return String.fromCodePoint(cp);
  });
}

/** Child elements named `name`. */
export function children(node: ParsedElement, name: string): ParsedElement[] {
  return node.children.filter((c) => c.name === name);
}

/** Text of the first child named `name`, if present. */
export function childText(node: ParsedElement, name: string): string | undefined {
  return node.children.find((c) => c.name === name)?.text;
}
