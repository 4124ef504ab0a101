// Scenario "image": a single disk image file, as a VM backup would see it (issue 2, Performance).
// Per tool: first backup, backup of the copy with 5% of its 4 MiB blocks changed, restore of that second
// backup to a file (verified by SHA-256), repository size after both backups, and the peak RSS of those steps.
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeImages } from '../image.mjs';
import { sha256File, storedBytes } from '../measure.mjs';

const MiB = 1024 * 1024;

export async function imageScenario(ctx, tools) {
  const dir = join(ctx.workDir, 'image');
  await mkdir(dir, { recursive: true });
  const path = join(dir, 'disk.img');
  const changedPath = join(dir, 'disk-changed.img');
  ctx.log(`image: writing ${fmtSize(ctx.size)} image and its changed copy`);
  const img = writeImages(path, changedPath, ctx.size);
  const mbps = (seconds) => img.size / 1e6 / seconds;

  const results = {};
  for (const tool of tools) {
    const r = { errors: [] };
    results[tool.name] = r;
    try {
      await tool.init();
      await ctx.dropCaches();
      const first = await tool.backupFile(path, 'first');
      r.first = mbps(first.seconds);
      ctx.log(`${tool.name}: first backup ${first.seconds.toFixed(2)} s`);

      await ctx.dropCaches();
      const second = await tool.backupFile(changedPath, 'changed');
      r.changed = mbps(second.seconds);
      r.stored = (await storedBytes(tool.repoDir)) / MiB;
      ctx.log(`${tool.name}: changed-copy backup ${second.seconds.toFixed(2)} s`);

      const target = join(ctx.workDir, 'restore', tool.name);
      await mkdir(target, { recursive: true });
      await ctx.dropCaches();
      const restored = await tool.restoreFile(second.ref, target, 'changed');
      ctx.log(`${tool.name}: restore ${restored.seconds.toFixed(2)} s`);
      const digest = await sha256File(restored.path);
      if (digest === img.changedSha256) r.restore = mbps(restored.seconds);
      else r.errors.push(`restored image differs (sha256 ${digest}, expected ${img.changedSha256})`);
      await rm(target, { recursive: true, force: true });

      const rss = [first, second, restored].map((m) => m.maxRssMiB);
      if (rss.every((x) => x !== null)) r.rss = Math.max(...rss);
    } catch (e) {
      r.errors.push(e instanceof Error ? e.message : String(e));
      ctx.log(`${tool.name}: FAILED: ${r.errors.at(-1)}`);
    }
  }

  const pick = (key) => Object.fromEntries(tools.map((t) => [t.name, results[t.name][key] ?? null]));
  const size = fmtSize(img.size);
  return {
    title: `Image (${size})`,
    description:
      `One ${size} image file of 4 MiB blocks: ${img.kinds.zero} zero, ${img.kinds.repeated} repeated, ${img.kinds.text} text-like, ` +
      `${img.kinds.random} random; the changed copy has ${img.changed} of ${img.blocks} blocks rewritten with new random data. ` +
      'The restore is of the second backup, to a file, checked by SHA-256. Stored = sum of file sizes in the repository after both backups. ' +
      'Peak RSS = the largest of the three steps.',
    rows: [
      { step: 'image: first backup', unit: 'MB/s', values: pick('first') },
      { step: 'image: backup of changed copy', unit: 'MB/s', values: pick('changed') },
      { step: 'image: restore', unit: 'MB/s', values: pick('restore') },
      { step: 'image: stored after both', unit: 'MiB', values: pick('stored') },
      { step: 'image: peak RSS', unit: 'MiB', values: pick('rss') },
    ],
    errors: tools.flatMap((t) => results[t.name].errors.map((e) => `${t.name}: ${e}`)),
  };
}

export function fmtSize(bytes) {
  for (const [unit, n] of [['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]]) {
    if (bytes >= n && bytes % n === 0) return `${bytes / n} ${unit}`;
  }
  return `${bytes} bytes`;
}
