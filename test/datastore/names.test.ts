import { describe, expect, it } from 'vitest';
import { isPbsError } from '../../src/errors.js';
import {
  describeSnapshot,
  formatBackupTime,
  formatNamespace,
  formatSnapshotPath,
  groupRelPath,
  namespaceRelPath,
  parseBackupTime,
  parseBackupType,
  parseGroupPath,
  parseNamespace,
  parseSnapshotPath,
  parseSnapshotRelPath,
  snapshotName,
  snapshotRelPath,
  validateArchiveName,
  validateBackupId,
  validateStoreName,
} from '../../src/datastore/names.js';

function einval(fn: () => unknown, mentions?: string): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(isPbsError(err, 'EINVAL'), `expected EINVAL, got ${String(err)}`).toBe(true);
  if (mentions !== undefined) expect((err as Error).message).toContain(mentions);
}

describe('backup type and id', () => {
  it('accepts the three types only', () => {
    expect(parseBackupType('vm')).toBe('vm');
    expect(parseBackupType('ct')).toBe('ct');
    expect(parseBackupType('host')).toBe('host');
    for (const bad of ['VM', 'lxc', '', 'vm ', 'qemu']) einval(() => parseBackupType(bad), JSON.stringify(bad));
  });

  it('accepts PBS safe ids', () => {
    for (const id of ['100', 'elsa', 'a', '_x', 'a.b-c_d', '9'.repeat(255), 'host.example.com']) expect(validateBackupId(id)).toBe(id);
  });

  it('rejects traversal, separators, NUL, empty, leading dot/dash and names longer than NAME_MAX', () => {
    for (const bad of ['../x', '..', '.', 'a/b', 'a\0b', '', '.hidden', '-x', 'a b', 'ä', 'x'.repeat(256)]) einval(() => validateBackupId(bad));
    einval(() => validateBackupId('a/b'), '"a/b"');
  });

  it('archive and store names', () => {
    expect(validateArchiveName('root.pxar.didx')).toBe('root.pxar.didx');
    einval(() => validateArchiveName('../index.json.blob'));
    einval(() => validateArchiveName('a/b.blob'));
    expect(validateStoreName('abc')).toBe('abc');
    expect(validateStoreName('s'.repeat(32))).toBe('s'.repeat(32));
    einval(() => validateStoreName('ab'), 'shorter than 3');
    einval(() => validateStoreName('s'.repeat(33)), 'longer than 32');
    einval(() => validateStoreName('my store'));
  });
});

describe('namespaces', () => {
  it('parses and formats', () => {
    expect(parseNamespace('')).toEqual([]);
    expect(parseNamespace('a/b/c')).toEqual(['a', 'b', 'c']);
    expect(formatNamespace(parseNamespace('a/b/c'))).toBe('a/b/c');
    expect(namespaceRelPath(parseNamespace('a/b'))).toBe('ns/a/ns/b');
    expect(namespaceRelPath(parseNamespace(''))).toBe('');
  });

  it('allows 7 levels and refuses 8', () => {
    expect(parseNamespace('1/2/3/4/5/6/7')).toHaveLength(7);
    einval(() => parseNamespace('1/2/3/4/5/6/7/8'), 'deeper than 7');
  });

  it('refuses bad components and empty segments', () => {
    for (const bad of ['a//b', '/a', 'a/', '..', 'a/../b', 'a/.x', 'a\0', 'a b']) einval(() => parseNamespace(bad));
  });

  it('limits the total length to 256 the way PBS counts it', () => {
    const c = 'x'.repeat(50);
    // 5 components of 50 plus 4 slashes = 254; PBS's check adds one per component: 254 + 1 <= 256
    expect(parseNamespace([c, c, c, c, c].join('/'))).toHaveLength(5);
    einval(() => parseNamespace([c, c, c, c, c, 'yy'].join('/')), 'longer than 256');
  });
});

describe('backup time', () => {
  it('formats and parses UTC second precision', () => {
    expect(formatBackupTime(0)).toBe('1970-01-01T00:00:00Z');
    expect(formatBackupTime(1704067200)).toBe('2024-01-01T00:00:00Z');
    expect(parseBackupTime('2019-10-09T08:01:06Z')).toBe(1570608066);
    expect(parseBackupTime(formatBackupTime(1717171717))).toBe(1717171717);
  });

  it('rejects anything but the strict form', () => {
    for (const bad of [
      '2024-01-01T00:00:00',
      '2024-01-01 00:00:00Z',
      '2024-01-01T00:00:00+00:00',
      '2024-01-01T00:00:00.000Z',
      '2024-1-01T00:00:00Z',
      '2024-02-30T00:00:00Z',
      '2024-13-01T00:00:00Z',
      '2024-01-01T24:00:00Z',
      '2024-01-01T00:60:00Z',
      '2024-01-01T00:00:60Z',
      '0099-01-01T00:00:00Z',
      ' 2024-01-01T00:00:00Z',
      '2024-01-01t00:00:00z',
      '',
    ]) {
      einval(() => parseBackupTime(bad));
    }
    for (const bad of [-1, 1.5, Number.NaN, 253402300800]) einval(() => formatBackupTime(bad));
  });
});

describe('group and snapshot paths', () => {
  it('parses group and snapshot names strictly', () => {
    expect(parseGroupPath('vm/100')).toEqual({ type: 'vm', id: '100' });
    expect(parseSnapshotPath('vm/100/2024-01-01T00:00:00Z')).toEqual({ type: 'vm', id: '100', time: 1704067200 });
    for (const bad of ['vm', 'vm/100/x', 'xx/100', 'vm/../x', '/vm/100']) einval(() => parseGroupPath(bad));
    for (const bad of ['vm/100', 'vm/100/2024-01-01', 'vm/1/2024-01-01T00:00:00Z/x', 'vm/../2024-01-01T00:00:00Z']) einval(() => parseSnapshotPath(bad));
  });

  it('builds relative paths with ns/ prefixes and parses them back', () => {
    const ref = { ns: parseNamespace('a/b'), type: 'ct' as const, id: '101', time: 1704067200 };
    expect(snapshotName(ref)).toBe('ct/101/2024-01-01T00:00:00Z');
    expect(formatSnapshotPath(ref)).toBe('ns/a/ns/b/ct/101/2024-01-01T00:00:00Z');
    expect(snapshotRelPath(ref)).toBe(formatSnapshotPath(ref));
    expect(groupRelPath(ref)).toBe('ns/a/ns/b/ct/101');
    expect(parseSnapshotRelPath('ns/a/ns/b/ct/101/2024-01-01T00:00:00Z')).toEqual(ref);
    expect(parseSnapshotRelPath('host/ns/2024-01-01T00:00:00Z')).toEqual({ ns: [], type: 'host', id: 'ns', time: 1704067200 });
    expect(describeSnapshot(ref)).toBe('a/b:ct/101/2024-01-01T00:00:00Z');
    einval(() => parseSnapshotRelPath('ns/a/ct/101'));
    einval(() => parseSnapshotRelPath('ns/../ct/101/2024-01-01T00:00:00Z'));
  });
});
