// Attributes of staged entries through a real mount, as the kernel caches them: right after chmod, chown, utimens
// and an access ACL set with setxattr, `stat` of only the changed field (which the kernel answers from its cache
// when it can) shows the new value; writes, truncates and changes of owner drop setuid/setgid bits and file
// capabilities as Linux does. Also the FUSE requests a `cp -a` costs.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, sandbox } from '../helpers/cli.js';
import { Mounted } from '../mount/mounted.js';

/** `stat -c FORMAT`: coreutils asks statx for the fields of the format only, so a stale cache shows. */
function stat(format: string, path: string): string {
  return execFileSync('stat', ['-c', format, path], { encoding: 'utf8' }).trim();
}

function getfattr(name: string, path: string): string | undefined {
  const r = spawnSync('getfattr', ['--absolute-names', '-e', 'hex', '-n', name, path], { encoding: 'utf8' });
  return r.status === 0 ? /=(0x[0-9a-f]+)/.exec(r.stdout)?.[1] : undefined;
}

/** A version 2 file capability blob: cap_net_raw in the permitted and effective sets. */
const CAP_NET_RAW = '0x0100000200200000000000000000000000000000';

describe('pbsfs mount: attributes of staged entries', () => {
  let sb: Sandbox;
  let mnt: string;
  let m: Mounted;
  let dir: string;

  beforeAll(async () => {
    sb = sandbox('pbsfs-attrs-');
    mnt = join(sb.dir, 'mnt');
    mkdirSync(mnt);
    await sb.ok(['datastore', 'create', 'store1', join(sb.dir, 'store')]);
    m = await Mounted.start(sb, ['mount', mnt, '--foreground', '--seal-after', '600'], mnt);
    dir = join(mnt, 'store1/host/attrs/t.pxar');
    mkdirSync(dir, { recursive: true });
  }, 120_000);

  afterAll(async () => {
    await m?.stop();
    sb?.cleanup();
  });

  it('chmod, chown, utimens and ACLs show at once, also in the fields the kernel caches', () => {
    const f = join(dir, 'f');
    writeFileSync(f, 'hello');
    chmodSync(f, 0o600);
    expect(stat('%a', f)).toBe('600');
    // A trivial ACL is a chmod; the setxattr reply carries no attributes.
    execFileSync('setfacl', ['-m', 'u::rwx,g::r,o::r', f]);
    expect(stat('%a', f)).toBe('744');
    // An extended one: the group bits show the mask.
    execFileSync('setfacl', ['-m', 'u:1000:rw', f]);
    expect(stat('%a', f)).toBe('764');
    expect(execFileSync('getfacl', ['-cn', f], { encoding: 'utf8' })).toContain('user:1000:rw-');
    chownSync(f, 1000, 1001);
    expect(stat('%u:%g', f)).toBe('1000:1001');
    utimesSync(f, 1_000_000, 1_234_567);
    expect(stat('%Y', f)).toBe('1234567');
    chmodSync(f, 0o640);
    expect(stat('%a', f)).toBe('640');

    const d = join(dir, 'd');
    mkdirSync(d, { mode: 0o700 });
    execFileSync('setfacl', ['-m', 'u::rwx,g::rx,o::x', d]);
    expect(stat('%a', d)).toBe('751');
  });

  it('privileges after write, truncate and chown are as on Linux (the kernel asks for them with setattr)', () => {
    const f = join(dir, 'suid');
    writeFileSync(f, 'x');
    chmodSync(f, 0o6755);
    expect(stat('%a', f)).toBe('6755');
    // A writer with CAP_FSETID (root) keeps them.
    writeFileSync(f, 'more', { flag: 'a' });
    expect(stat('%a', f)).toBe('6755');
    // A change of owner drops setuid and setgid-with-group-execute whoever makes it.
    chownSync(f, 1000, 1000);
    expect(stat('%a %u', f)).toBe('755 1000');
    // setgid without group execute (mandatory locking) stays.
    chmodSync(f, 0o2745);
    chownSync(f, 0, 0);
    expect(stat('%a', f)).toBe('2745');
    // File capabilities go with any write.
    execFileSync('setfattr', ['-n', 'security.capability', '-v', CAP_NET_RAW, f]);
    expect(getfattr('security.capability', f)).toBe(CAP_NET_RAW);
    writeFileSync(f, 'y', { flag: 'a' });
    expect(getfattr('security.capability', f)).toBeUndefined();
    // Directories keep their setgid bit on chown (it makes new entries inherit the group).
    const d = join(dir, 'sgid-dir');
    mkdirSync(d);
    chmodSync(d, 0o2775);
    chownSync(d, 1000, 1000);
    expect(stat('%a', d)).toBe('2775');
  });

  it('with --allow-other, a write or truncate by another user drops setuid and setgid', async () => {
    await sb.ok(['datastore', 'create', 'store2', join(sb.dir, 'store2')]);
    const mnt2 = join(sb.dir, 'mnt2');
    mkdirSync(mnt2);
    // The other user must reach the mount point.
    chmodSync(sb.dir, 0o755);
    const m2 = await Mounted.start(sb, ['mount', mnt2, '--foreground', '--store', 'store2', '--allow-other', '--seal-after', '600'], mnt2);
    try {
      const d = join(mnt2, 'store2/host/other/o.pxar');
      mkdirSync(d, { recursive: true });
      chmodSync(d, 0o777);
      const f = join(d, 'f');
      writeFileSync(f, 'x');
      chmodSync(f, 0o6777);
      execFileSync('runuser', ['-u', 'nobody', '--', 'sh', '-c', `echo more >> '${f}'`]);
      expect(stat('%a %s', f)).toBe('777 6');
      chmodSync(f, 0o6777);
      execFileSync('runuser', ['-u', 'nobody', '--', 'truncate', '-s', '1', f]);
      expect(stat('%a %s', f)).toBe('777 1');
    } finally {
      await m2.stop();
    }
  }, 60_000);

  it('cp -a costs 6 FUSE requests per file: no FLUSH, no security.capability lookup', async () => {
    const src = join(sb.dir, 'src');
    mkdirSync(src);
    for (let k = 0; k < 200; k++) writeFileSync(join(src, `f${k}`), `file ${k}\n`);
    mkdirSync(join(mnt, 'store1/host/attrs2'));
    const before = await m.report();
    execFileSync('cp', ['-a', src, join(mnt, 'store1/host/attrs2/c.pxar')]);
    const after = await m.report();
    const diff = (a: Record<string, number>, b: Record<string, number>): Record<string, number> =>
      Object.fromEntries(Object.entries(a).map(([op, n]): [string, number] => [op, n - (b[op] ?? 0)]).filter(([, n]) => n > 0));
    const spent = diff(after.requests, before.requests);
    // Per file: lookup of the new name, create, write, utimens, the ACL through which cp sets the mode, release.
    // No FLUSH (nothing to report at close), no GETATTR (no permission checks when only root reaches the mount), no
    // GETXATTR of security.capability (direct I/O writes skip the kernel's check before a file's first write).
    expect(spent.flush).toBeUndefined();
    expect(spent.getattr ?? 0).toBeLessThanOrEqual(2);
    expect(spent.getxattr ?? 0).toBeLessThanOrEqual(2);
    const total = Object.values(spent).reduce((a, b) => a + b, 0);
    expect(total / 200).toBeLessThan(6.2);
  });

  it('a file written in the mount keeps the xattrs set after its creation', async () => {
    mkdirSync(join(mnt, 'store1/host/attrs3/x.pxar'), { recursive: true });
    const f = join(mnt, 'store1/host/attrs3/x.pxar/f');
    writeFileSync(f, 'data');
    const get = (name: string) => spawnSync('getfattr', ['--only-values', '-n', name, f], { encoding: 'utf8' });
    expect(get('user.a').status).not.toBe(0);
    execFileSync('setfattr', ['-n', 'user.a', '-v', 'one', f]);
    expect(get('user.a').stdout).toBe('one');
    execFileSync('setfattr', ['-n', 'security.capability', '-v', '0sAQAAAgAgAAAAAAAAAAAAAAAAAAA=', f]);
    expect(get('security.capability').status).toBe(0);
    execFileSync('setfattr', ['-x', 'user.a', f]);
    expect(get('user.a').status).not.toBe(0);
    expect(execFileSync('getfattr', ['-d', '-m', '-', '--absolute-names', f], { encoding: 'utf8' })).toMatch(/security\.capability=/);
  });
});
