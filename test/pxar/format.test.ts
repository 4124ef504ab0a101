import { describe, expect, it } from 'vitest';
import * as F from '../../src/pxar/format.js';
import { eytzingerOrder, encodeGoodbye, parseGoodbyeItem } from '../../src/pxar/goodbye.js';
import { siphash24 } from '../../src/pxar/siphash.js';
import { isPbsError } from '../../src/errors.js';
import { readJsonl } from './listing.js';

const enc = new TextEncoder();

describe('type constants (spec §8.2)', () => {
  const markers: [string, bigint][] = [
    ['__PROXMOX_FORMAT_VERSION__', F.PXAR_FORMAT_VERSION], ['__PROXMOX_FORMAT_PRELUDE__', F.PXAR_PRELUDE],
    ['__PROXMOX_FORMAT_ENTRY_V2__', F.PXAR_ENTRY], ['__PROXMOX_FORMAT_ENTRY__', F.PXAR_ENTRY_V1],
    ['__PROXMOX_FORMAT_FILENAME__', F.PXAR_FILENAME], ['__PROXMOX_FORMAT_SYMLINK__', F.PXAR_SYMLINK],
    ['__PROXMOX_FORMAT_DEVICE__', F.PXAR_DEVICE], ['__PROXMOX_FORMAT_XATTR__', F.PXAR_XATTR],
    ['__PROXMOX_FORMAT_ACL_USER__', F.PXAR_ACL_USER], ['__PROXMOX_FORMAT_ACL_GROUP__', F.PXAR_ACL_GROUP],
    ['__PROXMOX_FORMAT_ACL_GROUP_OBJ__', F.PXAR_ACL_GROUP_OBJ], ['__PROXMOX_FORMAT_ACL_DEFAULT__', F.PXAR_ACL_DEFAULT],
    ['__PROXMOX_FORMAT_ACL_DEFAULT_USER__', F.PXAR_ACL_DEFAULT_USER], ['__PROXMOX_FORMAT_ACL_DEFAULT_GROUP__', F.PXAR_ACL_DEFAULT_GROUP],
    ['__PROXMOX_FORMAT_FCAPS__', F.PXAR_FCAPS], ['__PROXMOX_FORMAT_QUOTA_PROJID__', F.PXAR_QUOTA_PROJID],
    ['__PROXMOX_FORMAT_HARDLINK__', F.PXAR_HARDLINK], ['__PROXMOX_FORMAT_PXAR_PAYLOAD__', F.PXAR_PAYLOAD],
    ['__PROXMOX_FORMAT_PXAR_PAYLOAD_REF__', F.PXAR_PAYLOAD_REF], ['__PROXMOX_FORMAT_GOODBYE__', F.PXAR_GOODBYE],
    ['__PROXMOX_FORMAT_PXAR_GOODBYE_TAIL_MARKER__', F.PXAR_GOODBYE_TAIL_MARKER],
    ['__PROXMOX_FORMAT_PXAR_PAYLOAD_START_MARKER__', F.PXAR_PAYLOAD_START_MARKER],
    ['__PROXMOX_FORMAT_PXAR_PAYLOAD_TAIL_MARKER__', F.PXAR_PAYLOAD_TAIL_MARKER],
  ];
  for (const [marker, value] of markers) {
    it(marker, () => expect(F.hashFilename(enc.encode(marker)).toString(16)).toBe(value.toString(16)));
  }
});

describe('SipHash-2-4', () => {
  it('matches the reference test vector (key 00..0f, message 00..0e)', () => {
    const out = new Uint32Array(2);
    const msg = Uint8Array.from({ length: 15 }, (_, i) => i);
    siphash24(0x03020100, 0x07060504, 0x0b0a0908, 0x0f0e0d0c, msg, out);
    expect(((BigInt(out[1]!) << 32n) | BigInt(out[0]!)).toString(16)).toBe('a129ca6149be45e5');
    siphash24(0x03020100, 0x07060504, 0x0b0a0908, 0x0f0e0d0c, new Uint8Array(0), out);
    expect(((BigInt(out[1]!) << 32n) | BigInt(out[0]!)).toString(16)).toBe('726fdb47dd0e0e31');
  });

  it('matches the filename hashes stored in the vector goodbye tables', () => {
    const items = readJsonl('synth.pxar.items.jsonl');
    const names = new Map<number, string>();
    for (const it of items) if (it.type === 'FILENAME') names.set(it.offset as number, (it.data as string).slice(0, -1));
    let checked = 0;
    for (const it of items) {
      if (it.type !== 'GOODBYE') continue;
      for (const [hash, off] of (it.items as [string, number, number][]).slice(0, -1)) {
        const name = names.get((it.offset as number) - off)!;
        expect(F.hashFilename(enc.encode(name)).toString(16).padStart(16, '0')).toBe(hash);
        checked++;
      }
    }
    expect(checked).toBe(9);
  });
});

describe('goodbye layout (spec §8.6)', () => {
  it.each([
    [4, [2, 1, 3, 0]],
    [5, [3, 1, 4, 0, 2]],
    [6, [3, 1, 5, 0, 2, 4]],
    [10, [6, 3, 8, 1, 5, 7, 9, 0, 2, 4]],
    [17, [9, 5, 13, 3, 7, 11, 15, 1, 4, 6, 8, 10, 12, 14, 16, 0, 2]],
  ])('n=%i', (n, perm) => expect(eytzingerOrder(n)).toEqual(perm));

  it('every layout is a binary search tree over the sorted hashes', () => {
    for (let n = 0; n < 200; n++) {
      const order = eytzingerOrder(n);
      expect([...order].sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
      for (let i = 0; i < n; i++) {
        if (2 * i + 1 < n) expect(order[2 * i + 1]!).toBeLessThan(order[i]!);
        if (2 * i + 2 < n) expect(order[2 * i + 2]!).toBeGreaterThan(order[i]!);
      }
    }
  });

  it('encodes the tail and backwards offsets', () => {
    const t = encodeGoodbye([{ hash: 5n, offset: 100, size: 40 }, { hash: 2n, offset: 140, size: 30 }], 200, 50);
    expect(t.length).toBe(16 + 3 * 24);
    const items = [0, 1, 2].map((i) => parseGoodbyeItem(t, 16 + 24 * i, 0));
    expect(items).toEqual([{ hash: 5n, offset: 100, size: 40 }, { hash: 2n, offset: 60, size: 30 }, { hash: F.PXAR_GOODBYE_TAIL_MARKER, offset: 150, size: 88 }]);
  });
});

describe('stat (spec §8.3)', () => {
  it('floors negative mtimes', () => {
    expect(F.timestampFromNs(-1_500_000_000n)).toEqual({ secs: -2, nanos: 500_000_000 });
    expect(F.timestampFromNs(-1n)).toEqual({ secs: -1, nanos: 999_999_999 });
    expect(F.timestampFromNs(1_600_000_000_000_000_001n)).toEqual({ secs: 1_600_000_000, nanos: 1 });
    expect(F.timestampToNs({ secs: -2, nanos: 500_000_000 })).toBe(-1_500_000_000n);
  });

  it('round-trips and matches the vector bytes', () => {
    const stat = { mode: 0o100640, flags: 0x2000, uid: 1000, gid: 100, mtime: { secs: -1, nanos: 500_000_000 } };
    const b = F.encodeStat(stat);
    expect(Buffer.from(b).toString('hex')).toBe('a0810000000000000020000000000000e803000064000000ffffffffffffffff0065cd1d00000000');
    expect(F.parseStat(b, 0)).toEqual(stat);
  });

  it('reads legacy Stat_V1', () => {
    const b = new Uint8Array(32);
    const v = new DataView(b.buffer);
    v.setBigUint64(0, 0o40755n, true);
    v.setUint32(16, 7, true);
    v.setBigUint64(24, 1_500_000_000n, true);
    expect(F.parseStatV1(b, 0)).toEqual({ mode: 0o40755, flags: 0, uid: 7, gid: 0, mtime: { secs: 1, nanos: 500_000_000 } });
  });

  it('rejects out-of-range nanoseconds', () => {
    const b = F.encodeStat({ mode: 0, flags: 0, uid: 0, gid: 0, mtime: { secs: 0, nanos: 0 } });
    new DataView(b.buffer).setUint32(32, 1_000_000_000, true);
    expect(() => F.parseStat(b, 56)).toThrow(/nanoseconds/);
  });
});

describe('devices and items', () => {
  it('splits dev_t the glibc way', () => {
    const d = { major: 0xabcd1234, minor: 0xdcba5678 };
    expect(F.deviceFromDevT(F.deviceToDevT(d))).toEqual(d);
    expect(F.deviceFromDevT(0x0803n)).toEqual({ major: 8, minor: 3 });
    expect(F.deviceToDevT({ major: 259, minor: 65536 })).toBe(0x10010300n);
  });

  it('enforces item size limits', () => {
    const h = F.encodeHeader(F.PXAR_XATTR, F.MAX_XATTR_ITEM + 1);
    expect(() => F.parseHeader(h, 0, 77)).toThrow(expect.objectContaining({ code: 'ECORRUPT', offset: 77 }));
    const entry = F.encodeHeader(F.PXAR_ENTRY, 41);
    expect(() => F.parseHeader(entry, 0, 0)).toThrow(/expected 40/);
    const small = new Uint8Array(16);
    new DataView(small.buffer).setBigUint64(8, 3n, true);
    expect(() => F.parseHeader(small, 0, 0)).toThrow(/smaller than its header/);
    const huge = new Uint8Array(16);
    new DataView(huge.buffer).setBigUint64(8, 1n << 62n, true);
    expect(() => F.parseHeader(huge, 0, 0)).toThrow(/absurd/);
  });

  it('validates names and hardlink targets', () => {
    for (const bad of ['', '.', '..', 'a/b', 'a\0b']) {
      expect(() => F.parseFilename(F.encodeCString(enc.encode(bad)), 9)).toThrow(expect.objectContaining({ code: 'ECORRUPT', offset: 9 }));
    }
    expect(F.parseFilename(F.encodeCString(enc.encode('ok name')), 0)).toEqual(enc.encode('ok name'));
    for (const bad of ['/abs', 'a//b', 'a/../b', 'a/', '..']) {
      const item = F.encodeHardlink({ offset: 5, target: enc.encode(bad) });
      expect(() => F.parseHardlink(item, 3)).toThrow(expect.objectContaining({ code: 'ECORRUPT' }));
    }
  });

  it('xattr items keep binary values', () => {
    const x = { name: enc.encode('trusted.c'), value: Uint8Array.of(0, 255, 1) };
    const b = F.encodeXattr(x);
    expect(Buffer.from(b).toString('hex')).toBe('747275737465642e630000ff01');
    expect(F.parseXattr(b, 0)).toEqual(x);
    expect(() => F.parseXattr(enc.encode('noterminator'), 4)).toThrow(expect.objectContaining({ code: 'ECORRUPT', offset: 4 }));
    expect(isPbsError((() => { try { F.encodeXattr({ name: new Uint8Array(256).fill(97), value: new Uint8Array() }); } catch (e) { return e; } })(), 'EINVAL')).toBe(true);
  });
});
