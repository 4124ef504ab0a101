// PBS section-config text (datastore.cfg and friends) and the comma-separated property strings
// used inside values such as `tuning` — pure text <-> values, no I/O.
// Grammar as the PBS parser applies it: a header line `type: id` (first char a letter), then
// property lines that start with whitespace, `key value`; a blank line ends a section.
// No `#` comment lines: PBS rejects them as a syntax error, so we do too.
import { PbsError } from '../errors.js';

export interface Section {
  type: string;
  id: string;
  /** Properties in file order; a key may repeat (PBS array properties). */
  props: Array<[key: string, value: string]>;
}

// PBS refuses control characters in ids and values when writing
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

export function parseSectionConfig(text: string, path?: string): Section[] {
  const sections: Section[] = [];
  let current: Section | undefined;
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  lines.forEach((rawLine, i) => {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    const fail = (msg: string): never => {
      throw new PbsError('ECORRUPT', `section config line ${i + 1}: ${msg}`, { path });
    };
    if (line.trim() === '') {
      current = undefined;
      return;
    }
    if (!current) {
      const m = /^(\p{L}[^:]*):(.*)$/u.exec(line);
      const type = m?.[1]?.trim();
      const id = m?.[2]?.trim();
      if (!type || id === undefined) fail('syntax error (expected a "type: id" header)');
      current = { type: type!, id: id!, props: [] };
      sections.push(current);
      return;
    }
    if (!/^\s/.test(line)) fail('syntax error (expected an indented "key value" property)');
    const m = /^(\S+)(?:\s(.*))?$/s.exec(line.trimStart());
    if (!m || m[2] === undefined) fail(`syntax error (property ${JSON.stringify(line.trim())} has no value)`);
    current.props.push([m![1]!, m![2]!.trim()]);
  });
  return sections;
}

export function encodeSectionConfig(sections: readonly Section[]): string {
  const out: string[] = [];
  for (const s of sections) {
    if (!/^\p{L}[^:\s]*$/u.test(s.type)) throw new PbsError('EINVAL', `invalid section type ${JSON.stringify(s.type)}`);
    if (s.id === '' || CONTROL.test(s.id) || s.id !== s.id.trim()) {
      throw new PbsError('EINVAL', `invalid section id ${JSON.stringify(s.id)}`);
    }
    let text = `${s.type}: ${s.id}\n`;
    for (const [key, value] of s.props) {
      if (!/^[^\s]+$/.test(key) || CONTROL.test(key)) throw new PbsError('EINVAL', `invalid property name ${JSON.stringify(key)} in section '${s.id}'`);
      if (CONTROL.test(value)) throw new PbsError('EINVAL', `control character in property '${key}' of section '${s.id}'`);
      if (value !== value.trim()) throw new PbsError('EINVAL', `property '${key}' of section '${s.id}' has leading/trailing whitespace, which would not survive a re-read`);
      text += `\t${key} ${value}\n`;
    }
    out.push(text);
  }
  return out.join('\n');
}

/** `k1=v1,k2="v,2"` → ordered pairs; a bare item (no `=`) belongs to `defaultKey`. */
export function parsePropertyString(text: string, defaultKey?: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let i = 0;
  const fail = (msg: string): never => {
    throw new PbsError('EINVAL', `invalid property string ${JSON.stringify(text)}: ${msg}`);
  };
  const readValue = (): string => {
    if (text[i] !== '"') {
      const end = text.indexOf(',', i);
      const v = text.slice(i, end < 0 ? text.length : end);
      i = end < 0 ? text.length : end;
      return v;
    }
    let v = '';
    i++;
    for (;;) {
      if (i >= text.length) fail('unterminated quote');
      const c = text[i++]!;
      if (c === '"') break;
      if (c === '\\') {
        if (i >= text.length) fail('unterminated escape');
        v += text[i++];
      } else {
        v += c;
      }
    }
    if (i < text.length && text[i] !== ',') fail('garbage after closing quote');
    return v;
  };
  while (i < text.length) {
    const eq = text.indexOf('=', i);
    const comma = text.indexOf(',', i);
    let key: string;
    if (eq >= 0 && (comma < 0 || eq < comma) && text[i] !== '"') {
      key = text.slice(i, eq);
      i = eq + 1;
    } else {
      if (defaultKey === undefined) fail('item without a key');
      key = defaultKey!;
    }
    if (!/^[A-Za-z0-9_-]+$/.test(key)) fail(`bad key ${JSON.stringify(key)}`);
    if (out.some(([k]) => k === key)) fail(`duplicate key '${key}'`);
    out.push([key, readValue()]);
    if (text[i] === ',') {
      i++;
      if (i === text.length) fail('trailing comma');
    }
  }
  return out;
}

export function encodePropertyString(pairs: ReadonlyArray<readonly [string, string]>): string {
  return pairs
    .map(([k, v]) => {
      if (!/^[A-Za-z0-9_-]+$/.test(k)) throw new PbsError('EINVAL', `bad property key ${JSON.stringify(k)}`);
      const quoted = /[,"=\\\s]/.test(v) || v === '' ? `"${v.replace(/["\\]/g, (c) => `\\${c}`)}"` : v;
      return `${k}=${quoted}`;
    })
    .join(',');
}
