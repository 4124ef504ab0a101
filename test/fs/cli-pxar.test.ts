// `pbsfs pxar create | list | extract` as a user runs them (built CLI).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sandbox, type Sandbox } from '../helpers/cli.js';
import { setTimes } from './tree.js';

describe('pbsfs pxar', () => {
  let sb: Sandbox;
  beforeAll(() => {
    sb = sandbox('pbsfs-pxar-cli-');
    const src = join(sb.dir, 'src');
    mkdirSync(join(src, 'etc/sub'), { recursive: true });
    writeFileSync(join(src, 'etc/a.conf'), 'a=1\n');
    writeFileSync(join(src, 'etc/sub/b.conf'), 'b=2\n');
    writeFileSync(join(src, 'etc/notes.txt'), 'text');
    writeFileSync(join(src, 'skip.tmp'), 'tmp');
    setTimes(join(src, 'etc/a.conf'), 1_700_000_000, 5);
  });
  afterAll(() => sb.cleanup());

  it('creates, refuses to overwrite, lists (short and long) and extracts with patterns', async () => {
    await sb.ok(['pxar', 'create', 'a.pxar', 'src', '--exclude', '*.tmp']);
    const again = await sb.run(['pxar', 'create', 'a.pxar', 'src']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('refusing to overwrite');

    const list = await sb.ok(['pxar', 'list', 'a.pxar']);
    expect(list.stdout.trim().split('\n')).toEqual(['/', '/etc', '/etc/a.conf', '/etc/notes.txt', '/etc/sub', '/etc/sub/b.conf', '/.pxarexclude-cli']);
    const long = await sb.ok(['pxar', 'list', 'a.pxar', '--long']);
    const line = long.stdout.split('\n').find((l) => l.endsWith(' /etc/a.conf'))!;
    expect(line).toMatch(/^-rw-r--r-- \d+\/\d+ +4 2023-11-14T22:13:20Z \/etc\/a\.conf$/);
    expect(long.stdout).toMatch(/^drwx/m);

    await sb.ok(['pxar', 'extract', 'a.pxar', 'out', 'etc/**/*.conf']);
    expect(readFileSync(join(sb.dir, 'out/etc/sub/b.conf'), 'utf8')).toBe('b=2\n');
    expect(readFileSync(join(sb.dir, 'out/etc/a.conf'), 'utf8')).toBe('a=1\n');
    const listOut = await sb.ok(['pxar', 'create', 'check.pxar', 'out']);
    expect(listOut.code).toBe(0);
    expect((await sb.ok(['pxar', 'list', 'check.pxar'])).stdout.trim().split('\n')).toEqual(['/', '/etc', '/etc/a.conf', '/etc/sub', '/etc/sub/b.conf']);

    const clash = await sb.run(['pxar', 'extract', 'a.pxar', 'out']);
    expect(clash.code).toBe(1);
    expect(clash.stderr).toContain('already exists');
    await sb.ok(['pxar', 'extract', 'a.pxar', 'out', '--overwrite']);
    expect(readFileSync(join(sb.dir, 'out/etc/notes.txt'), 'utf8')).toBe('text');
  });

  it('writes and reads split archives, and takes patterns from a file', async () => {
    await sb.ok(['pxar', 'create', 's.pxar', 'src', '--split']);
    const list = await sb.ok(['pxar', 'list', 's.mpxar']);
    expect(list.stdout).toContain('/etc/sub/b.conf');
    writeFileSync(join(sb.dir, 'pats'), 'etc/notes.txt\n\n');
    await sb.ok(['pxar', 'extract', 's.pxar', 'split-out', '--files-from', 'pats']);
    expect(readFileSync(join(sb.dir, 'split-out/etc/notes.txt'), 'utf8')).toBe('text');
    const none = await sb.run(['pxar', 'list', 'missing.pxar']);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('no such archive');
  });

  it('fails cleanly on a corrupt archive', async () => {
    writeFileSync(join(sb.dir, 'bad.pxar'), Buffer.alloc(100, 7));
    const r = await sb.run(['pxar', 'list', 'bad.pxar']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^Error: .*offset/);
  });
});
