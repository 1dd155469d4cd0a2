// JSON request bodies, strictly: a body that names a member twice, at any depth, is refused. JSON.parse
// keeps the last of two equal names, so `{"keyId":A,"keyId":B}` would sign with B while a proxy, a log
// or a reviewer that reads the first one sees A. fastify's own parser (secure-json-parse: prototype
// poisoning refused, the body limit kept) parses first; a single pass over the text then compares the
// member names of each object as JSON.parse decodes them (`"keyId"` and `"key\u0049d"` are the same name).
import type { FastifyInstance } from 'fastify';
import { CloacinaSignError } from '../errors';
import { quoted } from '../names';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** The first member name some object of `text` (valid JSON) has twice, else undefined. */
export function duplicateMemberName(text: string): string | undefined {
  // One entry per open container: the names seen so far of an object, null for an array.
  const open: (Set<string> | null)[] = [];
  const length = text.length;
  for (let i = 0; i < length; i += 1) {
    const c = text.charCodeAt(i);
    if (c === 0x7b /* { */) open.push(new Set());
    else if (c === 0x5b /* [ */) open.push(null);
    else if (c === 0x7d /* } */ || c === 0x5d /* ] */) open.pop();
    else if (c === QUOTE) {
      const start = i;
      let escaped = false;
      for (i += 1; i < length; i += 1) {
        const d = text.charCodeAt(i);
        if (d === BACKSLASH) {
          escaped = true;
          i += 1;
        } else if (d === QUOTE) break;
      }
      const names = open[open.length - 1];
      if (!names) continue;
      // A string in an object is a member name when a colon follows it (the text is valid JSON).
      let next = i + 1;
      while (next < length && isJsonSpace(text.charCodeAt(next))) next += 1;
      if (text.charCodeAt(next) !== 0x3a /* : */) continue;
      const name = escaped ? (JSON.parse(text.slice(start, i + 1)) as string) : text.slice(start + 1, i);
      if (names.has(name)) return name;
      names.add(name);
    }
  }
  return undefined;
}

function isJsonSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/** Replaces the application/json parser of `app` with one that also refuses duplicate member names (INVALID_INPUT, 400). */
export function useStrictJson(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = String(body);
    parse(request, text, (error, value) => {
      if (error) return done(error, undefined);
      const duplicate = duplicateMemberName(text);
      if (duplicate !== undefined) {
        const error = new CloacinaSignError('INVALID_INPUT', `the JSON body has the member ${quoted(duplicate.slice(0, 64))} twice in one object`);
        return done(error, undefined);
      }
      done(null, value);
    });
  });
}
