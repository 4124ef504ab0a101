// Exclude/include glob patterns of `.pxarexclude`, `--exclude` and extraction selection (features §3.6, §3.7, §4.1, §4.2).
// Paths and patterns are matched as raw bytes (Linux names need not be UTF-8), held as latin1 strings, one char per byte.
import { PbsError } from '../errors.js';

export type MatchType = 'include' | 'exclude';

export interface PathPattern {
  type: MatchType;
  /** Leading `/`: matches only from the pattern root, not in subdirectories too. */
  anchored: boolean;
  /** Trailing `/`: matches directories only. */
  dirOnly: boolean;
  /** The glob without `!`, the leading `/` and the trailing `/` (latin1 bytes). */
  glob: string;
  /** Pattern root: archive-relative directory path (latin1 bytes, no leading or trailing `/`; '' for the root). */
  base: string;
  readonly regex: RegExp;
}

/** Archive-relative path bytes as the latin1 string the patterns match against. */
export function pathKey(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

function toKey(text: string | Uint8Array): string {
  return typeof text === 'string' ? Buffer.from(text, 'utf8').toString('latin1') : pathKey(text);
}

function bad(pattern: string, why: string): PbsError {
  return new PbsError('EINVAL', `bad pattern ${JSON.stringify(Buffer.from(pattern, 'latin1').toString('utf8'))}: ${why}`);
}

function hexChar(c: string): string {
  return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
}

/** One `[...]` class starting at g[i] === '['; returns the regex and the index after `]`. */
function parseClass(g: string, i: number): { re: string; next: number } {
  let j = i + 1;
  let negate = false;
  if (g[j] === '!' || g[j] === '^') {
    negate = true;
    j++;
  }
  let body = '';
  let first = true;
  for (;;) {
    if (j >= g.length) throw bad(g, 'unterminated [ class');
    let c = g[j]!;
    if (c === ']' && !first) break;
    first = false;
    if (c === '\\') {
      j++;
      if (j >= g.length) throw bad(g, 'trailing \\ in a class');
      c = g[j]!;
    }
    if (g[j + 1] === '-' && g[j + 2] !== undefined && g[j + 2] !== ']') {
      let hi = g[j + 2]!;
      let skip = 3;
      if (hi === '\\') {
        if (g[j + 3] === undefined) throw bad(g, 'trailing \\ in a class');
        hi = g[j + 3]!;
        skip = 4;
      }
      if (hi < c) throw bad(g, `empty range ${c}-${hi}`);
      body += `${hexChar(c)}-${hexChar(hi)}`;
      j += skip;
    } else {
      body += hexChar(c);
      j++;
    }
  }
  // A class never matches the path separator.
  return { re: negate ? `[^/${body}]` : `(?!/)[${body}]`, next: j + 1 };
}

/** The regex source of a glob: `*` and `?` stay within a component, `**` spans components. */
function globToRegex(g: string): string {
  let re = '';
  for (let i = 0; i < g.length; ) {
    const c = g[i]!;
    if (c === '*') {
      let j = i;
      while (g[j] === '*') j++;
      const wholeComponent = j - i >= 2 && (i === 0 || g[i - 1] === '/') && (j === g.length || g[j] === '/');
      if (wholeComponent && j === g.length) {
        re += '.*';
        i = j;
      } else if (wholeComponent) {
        re += '(?:[^/]*/)*'; // `**/`: this directory and any depth below
        i = j + 1;
      } else {
        re += '[^/]*';
        i = j;
      }
    } else if (c === '?') {
      re += '[^/]';
      i++;
    } else if (c === '[') {
      const cls = parseClass(g, i);
      re += cls.re;
      i = cls.next;
    } else if (c === '\\') {
      if (i + 1 >= g.length) throw bad(g, 'trailing \\');
      re += hexChar(g[i + 1]!);
      i += 2;
    } else {
      re += hexChar(c);
      i++;
    }
  }
  return re;
}

/**
 * Parses one pattern line: `!` re-includes, a leading `/` anchors to `base`, a trailing `/` matches directories only.
 * `defaultType` is what a pattern without `!` does (exclude for exclude lists, include for extraction selections).
 */
export function parsePattern(text: string | Uint8Array, base: Uint8Array | string = '', defaultType: MatchType = 'exclude'): PathPattern {
  let g = toKey(text);
  const original = g;
  let type = defaultType;
  if (g.startsWith('!')) {
    type = defaultType === 'exclude' ? 'include' : 'exclude';
    g = g.slice(1);
  }
  const anchored = g.startsWith('/');
  if (anchored) g = g.replace(/^\/+/, '');
  let dirOnly = false;
  if (g.endsWith('/') && !g.endsWith('\\/')) {
    dirOnly = true;
    g = g.replace(/\/+$/, '');
  }
  if (g.length === 0) throw bad(original, 'empty');
  const body = globToRegex(g);
  const regex = new RegExp(anchored ? `^${body}$` : `^(?:.*/)?${body}$`, 's');
  return { type, anchored, dirOnly, glob: g, base: typeof base === 'string' ? toKey(base) : pathKey(base), regex };
}

/**
 * Patterns of a `.pxarexclude` file in directory `base`: one per line, surrounding whitespace ignored, blank lines and
 * `#` comments skipped. Bad lines are reported through `onError` and skipped, like the PBS client does.
 */
export function parseExcludeFile(content: Uint8Array, base: Uint8Array, onError: (e: PbsError) => void): PathPattern[] {
  const out: PathPattern[] = [];
  for (const raw of pathKey(content).split('\n')) {
    const line = raw.replace(/^[\t\n\v\f\r ]+|[\t\n\v\f\r ]+$/g, '');
    if (line.length === 0 || line.startsWith('#')) continue;
    try {
      out.push(parsePattern(line, base));
    } catch (e) {
      onError(e as PbsError);
    }
  }
  return out;
}

/**
 * The result of the last pattern (later ones win) that matches `path` (archive-relative, latin1 key), or null when
 * none does. `isDir` is needed for directory-only patterns.
 */
export function matchPatterns(patterns: readonly PathPattern[], path: string, isDir: boolean): MatchType | null {
  for (let i = patterns.length - 1; i >= 0; i--) {
    const p = patterns[i]!;
    if (p.dirOnly && !isDir) continue;
    let rel = path;
    if (p.base.length > 0) {
      if (path.length <= p.base.length + 1 || !path.startsWith(p.base) || path[p.base.length] !== '/') continue;
      rel = path.slice(p.base.length + 1);
    }
    if (p.regex.test(rel)) return p.type;
  }
  return null;
}

/** The text of `.pxarexclude-cli` / the PRELUDE (spec §8.5): one line per pattern, `!` for includes, `/` for dir-only. */
export function excludePatternsText(patterns: readonly PathPattern[]): Uint8Array {
  let text = '';
  for (const p of patterns) {
    text += `${p.type === 'include' ? '!' : ''}${p.anchored ? '/' : ''}${p.glob}${p.dirOnly ? '/' : ''}\n`;
  }
  return new Uint8Array(Buffer.from(text, 'latin1'));
}
