// The walk order the previous archive is merged in (metadata change detection), and the metadata comparison.
import { describe, expect, test } from 'vitest';
import { sameMetadata } from '../../src/backup/payload-reuse.js';
import { walkOrder } from '../../src/pxar/names.js';
import { emptyMetadata } from '../../src/pxar/format.js';

const b = (s: string) => Buffer.from(s, 'latin1');

describe('walkOrder', () => {
  test('matches a depth-first walk with children sorted by name bytes', () => {
    // What the archiver emits for: x/, x/y, x-a, x.txt, xa/, xa/b/, xa/b/c, y (sorted: "x" < "x-a" < "x.txt" < "xa")
    const walk = ['x', 'x/y', 'x/y/z', 'x-a', 'x.txt', 'xa', 'xa/b', 'xa/b/c', 'y', '\xff'];
    for (let i = 0; i < walk.length; i++) {
      for (let j = 0; j < walk.length; j++) {
        expect(Math.sign(walkOrder(b(walk[i]!), b(walk[j]!))), `${walk[i]} vs ${walk[j]}`).toBe(Math.sign(i - j));
      }
    }
  });
});

describe('sameMetadata', () => {
  test('compares stat, xattrs in any order and ACLs', () => {
    const a = emptyMetadata();
    const c = emptyMetadata();
    expect(sameMetadata(a, c)).toBe(true);
    a.xattrs = [{ name: b('user.a'), value: b('1') }, { name: b('user.b'), value: b('2') }];
    c.xattrs = [{ name: b('user.b'), value: b('2') }, { name: b('user.a'), value: b('1') }];
    expect(sameMetadata(a, c)).toBe(true);
    c.xattrs[0] = { name: b('user.b'), value: b('3') };
    expect(sameMetadata(a, c)).toBe(false);
    c.xattrs = a.xattrs;
    c.acl.users = [{ id: 1000, permissions: 6n }];
    expect(sameMetadata(a, c)).toBe(false);
    a.acl.users = [{ id: 1000, permissions: 6n }];
    expect(sameMetadata(a, c)).toBe(true);
    a.stat.mtime = { secs: 1, nanos: 1 };
    expect(sameMetadata(a, c)).toBe(false);
  });
});
