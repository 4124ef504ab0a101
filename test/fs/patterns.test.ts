// Exclude-pattern semantics of features §3.6/§3.7 (and selection patterns of §4.2), table-driven.
import { describe, expect, it } from 'vitest';
import { PbsError } from '../../src/errors.js';
import { excludePatternsText, matchPatterns, parseExcludeFile, parsePattern } from '../../src/fs/patterns.js';

type Row = [patterns: string[], path: string, isDir: boolean, expected: 'include' | 'exclude' | null];

const rows: Row[] = [
  // plain names match at any depth
  [['foo'], 'foo', false, 'exclude'],
  [['foo'], 'a/b/foo', false, 'exclude'],
  [['foo'], 'a/foo/b', false, null], // a directory's children are never reached (the dir itself is matched first)
  [['foo'], 'foobar', false, null],
  // leading / anchors to the pattern root
  [['/foo'], 'foo', false, 'exclude'],
  [['/foo'], 'a/foo', false, null],
  [['/a/b'], 'a/b', true, 'exclude'],
  [['a/b'], 'x/a/b', true, 'exclude'],
  // trailing / matches directories only
  [['build/'], 'build', true, 'exclude'],
  [['build/'], 'build', false, null],
  [['/usr/'], 'usr', true, 'exclude'],
  // * and ? stay inside one component
  [['*.tmp'], 'x.tmp', false, 'exclude'],
  [['*.tmp'], 'd/e/x.tmp', false, 'exclude'],
  [['*.tmp'], 'x.tmpl', false, null],
  [['/*.tmp'], 'd/x.tmp', false, null],
  [['a*'], 'a', false, 'exclude'],
  [['/a*b'], 'a/b', false, null],
  [['?.c'], 'x.c', false, 'exclude'],
  [['?.c'], 'xy.c', false, null],
  [['/?'], 'a/', false, null],
  // ** spans directories, including none
  [['**/*.tmp'], 'x.tmp', false, 'exclude'],
  [['**/*.tmp'], 'a/b/c/x.tmp', false, 'exclude'],
  [['/a/**/z'], 'a/z', false, 'exclude'],
  [['/a/**/z'], 'a/b/c/z', false, 'exclude'],
  [['/a/**/z'], 'b/a/z', false, null],
  [['/a/**'], 'a/b/c', false, 'exclude'],
  [['/a/**'], 'a', true, null],
  // classes, complements, ranges
  [['[abc].txt'], 'b.txt', false, 'exclude'],
  [['[abc].txt'], 'd.txt', false, null],
  [['[!abc].txt'], 'd.txt', false, 'exclude'],
  [['[!abc].txt'], 'a.txt', false, null],
  [['[^abc].txt'], 'a.txt', false, null],
  [['file[0-9]'], 'file7', false, 'exclude'],
  [['file[0-9]'], 'filex', false, null],
  [['[a-z][A-Z]'], 'xY', false, 'exclude'],
  [['[]]x'], ']x', false, 'exclude'],
  [['a[/]b'], 'a/b', false, null],
  // backslash escapes
  [['\\*'], '*', false, 'exclude'],
  [['\\*'], 'x', false, null],
  [['\\[x\\]'], '[x]', false, 'exclude'],
  [['\\!important'], '!important', false, 'exclude'],
  [['a\\?'], 'ab', false, null],
  // ! re-includes; later patterns win
  [['*.log', '!keep.log'], 'keep.log', false, 'include'],
  [['*.log', '!keep.log'], 'other.log', false, 'exclude'],
  [['!keep.log', '*.log'], 'keep.log', false, 'exclude'],
  [['/data/', '!/data/'], 'data', true, 'include'],
  // regex metacharacters are literal
  [['a.b'], 'axb', false, null],
  [['(x)+'], '(x)+', false, 'exclude'],
  [['$^|{}'], '$^|{}', false, 'exclude'],
  // UTF-8 names
  [['schön*'], 'dir/schönheit', false, 'exclude'],
];

describe('patterns', () => {
  it.each(rows)('%j on %s (dir=%s) → %s', (patterns, path, isDir, expected) => {
    const list = patterns.map((p) => parsePattern(p));
    expect(matchPatterns(list, Buffer.from(path, 'utf8').toString('latin1'), isDir)).toBe(expected);
  });

  it('applies patterns relative to their base directory', () => {
    const list = [parsePattern('/x', 'sub'), parsePattern('y', 'sub')];
    expect(matchPatterns(list, 'sub/x', false)).toBe('exclude');
    expect(matchPatterns(list, 'x', false)).toBeNull();
    expect(matchPatterns(list, 'sub/deeper/x', false)).toBeNull();
    expect(matchPatterns(list, 'sub/deeper/y', false)).toBe('exclude');
    expect(matchPatterns(list, 'y', false)).toBeNull();
    expect(matchPatterns(list, 'subx/y', false)).toBeNull();
  });

  it('lets a deeper file override an outer exclude (later list entries win)', () => {
    const list = [parsePattern('*.dat'), parsePattern('!*.dat', 'keep')];
    expect(matchPatterns(list, 'a.dat', false)).toBe('exclude');
    expect(matchPatterns(list, 'keep/a.dat', false)).toBe('include');
  });

  it('matches raw non-UTF-8 bytes', () => {
    const p = parsePattern(new Uint8Array([0xff, 0x2a]));
    expect(matchPatterns([p], Buffer.from([0x61, 0x2f, 0xff, 0x41]).toString('latin1'), false)).toBe('exclude');
    expect(matchPatterns([p], Buffer.from([0xfe, 0x41]).toString('latin1'), false)).toBeNull();
  });

  it('uses include as the default type for selections', () => {
    expect(parsePattern('etc/**/*.conf', '', 'include').type).toBe('include');
    expect(parsePattern('!etc', '', 'include').type).toBe('exclude');
  });

  it.each(['', '!', '/', '[abc', 'x\\', '[z-a]', '[a\\'])('rejects %j with EINVAL', (p) => {
    expect(() => parsePattern(p)).toThrow(PbsError);
    try {
      parsePattern(p);
    } catch (e) {
      expect((e as PbsError).code).toBe('EINVAL');
    }
  });

  it('reads .pxarexclude files: comments, blank lines, whitespace, bad lines reported', () => {
    const errors: string[] = [];
    const text = '# comment\n\n  *.o  \n!/keep.o\n[bad\nbuild/\r\n';
    const list = parseExcludeFile(Buffer.from(text), Buffer.from('src'), (e) => errors.push(e.message));
    expect(list.map((p) => [p.type, p.anchored, p.dirOnly, p.glob, p.base])).toEqual([
      ['exclude', false, false, '*.o', 'src'],
      ['include', true, false, 'keep.o', 'src'],
      ['exclude', false, true, 'build', 'src'],
    ]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/\[bad/);
  });

  it('writes the .pxarexclude-cli / PRELUDE text (spec §8.5)', () => {
    const text = excludePatternsText(['/usr', '!/usr/local/', '*.tmp', 'cache/'].map((p) => parsePattern(p)));
    expect(Buffer.from(text).toString()).toBe('/usr\n!/usr/local/\n*.tmp\ncache/\n');
  });
});
