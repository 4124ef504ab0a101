// Scenario "mount": reading backups back through each tool's FUSE mount (issue 4, Performance).
// The driver gives every scenario fresh repositories, so this one makes its own: one backup of a --size image and one
// of a copy of /usr/share per tool (untimed). Then per tool: a fresh mount for the first byte of the deepest file,
// and a second mount for dd of the image, ls -lR and tar of the tree, and the daemon's peak RSS.
import { readFileSync } from 'node:fs';
import { mkdir, open, rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { writeImages } from '../image.mjs';
import { runMeasured, runQuiet } from '../measure.mjs';
import { isMounted, peakRssMiB } from '../mount-process.mjs';
import { copyTree, describeTree, listTree } from '../tree.mjs';

const SOURCE = '/usr/share';
const MiB = 1024 * 1024;

/** Refuses to start when the image, the tree copy and a repository per tool holding both do not fit. */
async function checkSpace(dir, imageSize, toolCount) {
  const tree = Number((await runQuiet('du', ['-sk', SOURCE])).split('\t')[0]) * 1024;
  const needed = (imageSize + tree) * (2 + toolCount);
  const fs = await statfs(dir);
  if (fs.bavail * fs.bsize < needed) {
    throw new Error(`${dir} has ${(fs.bavail * fs.bsize / 2 ** 30).toFixed(1)} GiB free, the mount scenario needs about ${(needed / 2 ** 30).toFixed(1)} GiB`);
  }
}

/** The non-empty regular file with the most path components (first in sorted order among equals), and its first byte. */
async function deepestFile(root) {
  let best = null;
  for (const { path, dirent } of await listTree(root)) {
    if (!dirent.isFile() || (best && path.split('/').length <= best.split('/').length)) continue;
    const fh = await open(join(root, path));
    try {
      if ((await fh.stat()).size > 0) best = path;
    } finally {
      await fh.close();
    }
  }
  if (!best) throw new Error(`no non-empty regular file under ${root}`);
  return { path: best, firstByte: readFileSync(join(root, best)).subarray(0, 1) };
}

/** Mounts, runs fn(mount), and always unmounts — lazily with fusermount when the tool's own unmount fails. */
async function withMount(tool, mnt, tag, fn) {
  await mkdir(mnt, { recursive: true });
  const mount = await tool.mount(mnt, tag);
  try {
    return await fn(mount);
  } finally {
    try {
      await mount.unmount();
    } finally {
      if (isMounted(mnt)) await runQuiet('fusermount', ['-uz', mnt]).catch(() => {});
    }
  }
}

/** A timed bash pipeline; paths go in as $1… so no quoting is needed. */
const sh = (script, args, cwd, logBase) => runMeasured('bash', ['-c', `set -o pipefail; ${script}`, 'bash', ...args], { cwd, logBase });

export async function mountScenario(ctx, tools) {
  await checkSpace(ctx.workDir, ctx.size, tools.length);
  const dataDir = join(ctx.workDir, 'data');
  await mkdir(dataDir, { recursive: true });
  const image = join(dataDir, 'disk.img');
  const unused = join(dataDir, 'disk-changed.img');
  ctx.log(`mount: writing ${(ctx.size / MiB).toFixed(0)} MiB image and copying ${SOURCE}`);
  const img = writeImages(image, unused, ctx.size);
  await rm(unused);
  const src = join(dataDir, 'share');
  await copyTree(SOURCE, src);
  const tree = await describeTree(src);
  const deep = await deepestFile(src);

  const results = Object.fromEntries(tools.map((t) => [t.name, { errors: [] }]));
  for (const tool of tools) {
    const r = results[tool.name];
    const log = (step) => join(ctx.logDir, `${tool.name}-${step}`);
    const mnt = join(ctx.workDir, 'mnt', tool.name);
    try {
      await tool.init();
      await ctx.dropCaches();
      const imageBackup = await tool.backupFile(image, 'mount-image');
      const imageRef = imageBackup.ref;
      // Tools without a write mount: the image goes in by their backup command (the comparison for pbsfs's cp).
      r.imageIn = img.size / 1e6 / imageBackup.seconds;
      const treeBackup = await tool.backupTree(src, 'mount-tree');
      const treeRef = treeBackup.ref;
      // Tools without a write mount: the tree goes in by their backup command (the comparison for pbsfs's cp -a).
      r.treeIn = treeBackup.seconds;
      ctx.log(`${tool.name}: backups made; mounting`);

      await ctx.dropCaches();
      await withMount(tool, mnt, 'first-byte', async (m) => {
        const file = join(m.tree(treeRef), deep.path);
        await ctx.dropCaches();
        const t = await sh('head -c1 "$1" | od -An -tx1', [file], undefined, log('first-byte'));
        if (t.stdout.trim() !== deep.firstByte.toString('hex')) {
          throw new Error(`first byte of ${file} differs from the source's`);
        }
        r.firstByte = t.seconds;
        ctx.log(`${tool.name}: first byte ${t.seconds.toFixed(3)} s`);
      });

      await ctx.dropCaches();
      await withMount(tool, mnt, 'reads', async (m) => {
        await ctx.dropCaches();
        const dd = await sh('dd if="$1" of=/dev/null bs=1M 2>&1', [m.image(imageRef)], undefined, log('dd'));
        const copied = /^(\d+) bytes/m.exec(dd.stdout)?.[1];
        if (Number(copied) !== img.size) throw new Error(`dd read ${copied ?? 'an unknown number of'} bytes, the image has ${img.size}`);
        r.dd = img.size / 1e6 / dd.seconds;
        ctx.log(`${tool.name}: dd ${dd.seconds.toFixed(2)} s`);

        await ctx.dropCaches();
        r.ls = (await sh('ls -lR . > /dev/null', [], m.tree(treeRef), log('ls'))).seconds;
        ctx.log(`${tool.name}: ls -lR ${r.ls.toFixed(2)} s`);

        await ctx.dropCaches();
        r.tar = (await sh('tar -cf - . | cat > /dev/null', [], m.tree(treeRef), log('tar'))).seconds;
        ctx.log(`${tool.name}: tar ${r.tar.toFixed(2)} s`);

        r.rss = peakRssMiB(m.pid);
      });

      if (tool.writesTrees) {
        await ctx.dropCaches();
        await withMount(tool, mnt, 'write', async (m) => {
          const group = m.newImageGroup();
          await ctx.dropCaches();
          const c = await sh('mkdir -p "$2" && cp "$1" "$2/"', [image, group], undefined, log('image-write'));
          r.imageIn = img.size / 1e6 / c.seconds;
          r.writeRss = peakRssMiB(m.pid);
          ctx.log(`${tool.name}: cp of the image into the mount ${c.seconds.toFixed(2)} s`);
          const copied = await runQuiet('bash', ['-c', 'stat -L -c %s "$1"/latest/disk.img', 'bash', group]);
          if (Number(copied.trim()) !== img.size) throw new Error(`the image written through the mount has ${copied.trim()} bytes, not ${img.size}`);
          const dst = m.newTree();
          await ctx.dropCaches();
          const t = await sh('mkdir -p "$(dirname "$2")" && cp -a "$1" "$2" && "$3" "$4" seal "$2"', [src, dst, process.execPath, tool.cli], undefined, log('tree-write'));
          r.treeIn = t.seconds;
          r.writeRss = Math.max(r.writeRss, peakRssMiB(m.pid));
          ctx.log(`${tool.name}: cp -a into the mount + seal ${t.seconds.toFixed(2)} s`);
          const sealed = m.sealedTree();
          const got = await describeTree(sealed);
          if (JSON.stringify(got) !== JSON.stringify(tree)) throw new Error(`the tree written through the mount (${sealed}) differs from its source`);
        });
      }
    } catch (e) {
      r.errors.push(e instanceof Error ? e.message : String(e));
      ctx.log(`${tool.name}: FAILED: ${r.errors.at(-1)}`);
    }
  }

  const pick = (key) => Object.fromEntries(tools.map((t) => [t.name, results[t.name][key] ?? null]));
  return {
    title: 'Mount',
    description:
      `Reads through each tool's FUSE mount of its own repository, holding one backup of a ${(img.size / MiB).toFixed(0)} MiB image ` +
      `(the image scenario's first image) and one of a \`cp -a\` copy of ${SOURCE} (${tree.entries} entries, ${tree.files} regular files, ` +
      `${(tree.bytes / MiB).toFixed(0)} MiB in files). Mounts: \`pbsfs mount MNT --store bench --daemon\` (whole datastore), ` +
      '`restic mount MNT`, `borg mount -f REPO MNT` (whole repository; -f keeps the serving process in the foreground so its pid is known). ' +
      'First byte = `head -c1` of the deepest file in the tree ' +
      `(${deep.path}) right after a fresh mount. Then, on a second mount: \`dd bs=1M\` of the image to /dev/null (byte count checked), ` +
      '`ls -lR` of the tree archive\'s root, and `tar -cf - . | cat > /dev/null` there. Dropping the page cache does not empty the ' +
      "daemons' own caches, so later steps on the second mount may profit from earlier ones. Peak RSS = VmHWM of the mount process " +
      'after those three steps. Image in: pbsfs on a third mount `cp` of the image into the group `bench/vm/image-write` (a new snapshot, ' +
      'size checked); restic and borg: their image backup above, page cache dropped before each. Tree in: pbsfs on that mount `cp -a` of the tree into `bench/host/tree-write/share.pxar`, then ' +
      '`pbsfs seal` of it (the sealed tree is compared with the source); restic and borg: their tree backup above (`restic backup`, ' +
      '`borg create`).',
    rows: [
      { step: 'mount: dd of the image', unit: 'MB/s', values: pick('dd') },
      { step: 'mount: ls -lR of the tree', unit: 's', values: pick('ls') },
      { step: 'mount: tar of the tree', unit: 's', values: pick('tar') },
      { step: 'mount: first byte, deep file', unit: 's', values: pick('firstByte') },
      { step: 'mount: daemon peak RSS', unit: 'MiB', values: pick('rss') },
      { step: 'image in: pbsfs cp into the mount; others: backup', unit: 'MB/s', values: pick('imageIn') },
      { step: 'tree in: pbsfs cp -a into the mount + seal; others: backup', unit: 's', values: pick('treeIn') },
      { step: 'image + tree in: daemon peak RSS while writing', unit: 'MiB', values: pick('writeRss') },
    ],
    errors: tools.flatMap((t) => results[t.name].errors.map((e) => `${t.name}: ${e}`)),
  };
}
