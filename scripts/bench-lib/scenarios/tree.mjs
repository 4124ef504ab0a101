// Scenario "tree": a copy of /usr/share backed up as a directory tree (issue 3, Performance).
// Each step runs for every tool before the next step starts, so the source changes once (the 1% touch) and every
// tool sees the same three states: initial tree → same tree → tree with 1% of its files touched.
import { mkdir, rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { runQuiet, storedBytes } from '../measure.mjs';
import { copyTree, describeTree, touchOnePercent } from '../tree.mjs';
import { verifyRestore } from '../tree-verify.mjs';

const SOURCE = '/usr/share';
const MiB = 1024 * 1024;

/** Refuses to start when the copy, one restored copy and a repository per tool (at most the tree each) do not fit. */
async function checkSpace(dir, toolCount) {
  const used = Number((await runQuiet('du', ['-sk', SOURCE])).split('\t')[0]) * 1024;
  const needed = used * (3 + toolCount);
  const fs = await statfs(dir);
  if (fs.bavail * fs.bsize < needed) {
    throw new Error(`${dir} has ${(fs.bavail * fs.bsize / 2 ** 30).toFixed(1)} GiB free, the tree scenario needs about ${(needed / 2 ** 30).toFixed(1)} GiB`);
  }
}

export async function treeScenario(ctx, tools) {
  const src = join(ctx.workDir, 'share');
  const results = Object.fromEntries(tools.map((t) => [t.name, { errors: [], rss: [] }]));
  const failed = new Set();
  const failure = (tool, e) => {
    results[tool.name].errors.push(e instanceof Error ? e.message : String(e));
    ctx.log(`${tool.name}: FAILED: ${results[tool.name].errors.at(-1)}`);
  };
  /** Runs fn for every tool that has not failed yet, after dropping the page cache; a failure ends that tool's run. */
  const eachTool = async (fn) => {
    for (const tool of tools) {
      if (failed.has(tool.name)) continue;
      try {
        await ctx.dropCaches();
        await fn(tool, results[tool.name]);
      } catch (e) {
        failed.add(tool.name);
        failure(tool, e);
      }
    }
  };

  await checkSpace(ctx.workDir, tools.length);
  ctx.log(`tree: copying ${SOURCE} to ${src}`);
  await copyTree(SOURCE, src);
  const tree = await describeTree(src);

  await eachTool((tool) => tool.init());
  await eachTool(async (tool, r) => {
    const m = await tool.backupTree(src, 'tree-first');
    r.first = m.seconds;
    r.rss.push(m.maxRssMiB);
    ctx.log(`${tool.name}: tree first backup ${m.seconds.toFixed(2)} s`);
  });
  // pbsfs only: the same first backup in legacy mode, into a datastore of its own; its failure spoils no other row.
  for (const tool of tools.filter((t) => t.backupTreeLegacy && !failed.has(t.name))) {
    try {
      await ctx.dropCaches();
      const m = await tool.backupTreeLegacy(src, 'tree-legacy');
      results[tool.name].legacy = m.seconds;
      ctx.log(`${tool.name}: tree first backup in legacy mode ${m.seconds.toFixed(2)} s`);
    } catch (e) {
      failure(tool, e);
    }
  }
  await eachTool(async (tool, r) => {
    const m = await tool.backupTree(src, 'tree-unchanged');
    r.unchanged = m.seconds;
    r.rss.push(m.maxRssMiB);
    ctx.log(`${tool.name}: tree unchanged re-backup ${m.seconds.toFixed(2)} s`);
  });

  const touch = await touchOnePercent(src);
  ctx.log(`tree: touched ${touch.touched} of ${touch.files} regular files`);
  await eachTool(async (tool, r) => {
    const m = await tool.backupTree(src, 'tree-touched');
    r.touched = m.seconds;
    r.rss.push(m.maxRssMiB);
    r.last = m.ref;
    r.stored = (await storedBytes(tool.repoDir)) / MiB;
    ctx.log(`${tool.name}: tree re-backup after the touch ${m.seconds.toFixed(2)} s`);
  });

  let checked = 0;
  await eachTool(async (tool, r) => {
    const target = join(ctx.workDir, 'restore', tool.name);
    await rm(target, { recursive: true, force: true });
    await mkdir(target, { recursive: true });
    await ctx.dropCaches();
    const m = await tool.restoreTree(r.last, target, 'tree-restore');
    r.rss.push(m.maxRssMiB);
    ctx.log(`${tool.name}: tree restore ${m.seconds.toFixed(2)} s; verifying`);
    const verdict = await verifyRestore(src, m.path);
    checked = verdict.checked;
    if (verdict.problems.length) throw new Error(`restored tree differs from the source: ${verdict.problems.join(' / ')}`);
    r.restore = m.seconds;
    await rm(target, { recursive: true, force: true });
  });

  const pick = (key) => Object.fromEntries(tools.map((t) => [t.name, results[t.name][key] ?? null]));
  for (const t of tools) {
    const rss = results[t.name].rss;
    if (rss.length === 4 && rss.every((x) => x !== null)) results[t.name].peak = Math.max(...rss);
  }
  const rows = [
    { step: 'tree: first backup', unit: 's', values: pick('first') },
    { step: 'tree: unchanged re-backup', unit: 's', values: pick('unchanged') },
    { step: 'tree: re-backup, 1% touched', unit: 's', values: pick('touched') },
    { step: 'tree: restore', unit: 's', values: pick('restore') },
    { step: 'tree: stored after the 3 backups', unit: 'MiB', values: pick('stored') },
    { step: 'tree: peak RSS', unit: 'MiB', values: pick('peak') },
  ];
  const pb = results.pbsfs;
  if (pb) rows.splice(1, 0, { step: 'tree: first backup (pbsfs: legacy mode)', unit: 's', values: { ...pick('first'), pbsfs: pb.legacy ?? null } });
  const selfSpeedup = pb?.first && pb?.unchanged ? ` pbsfs's unchanged re-backup was ${(pb.first / pb.unchanged).toFixed(1)}× as fast as its first backup.` : '';

  return {
    title: `Tree (${SOURCE})`,
    description:
      `A \`cp -a\` copy of ${SOURCE}: ${tree.entries} entries, ${tree.files} regular files, ${(tree.bytes / MiB).toFixed(0)} MiB in files. ` +
      'Steps: first backup; re-backup of the unchanged tree; re-backup after touching 1% of the files ' +
      `(every 100th regular file in sorted path order, ${touch.touched} files, got one byte appended and its mtime moved one hour ahead); ` +
      'full restore of that last backup into an empty directory, checked with `diff -r --no-dereference` against the source and by ' +
      `comparing mode, owner, group, size and mtime (ns) of all ${checked} entries. Each step runs for every tool before the next ` +
      'one, so all tools see the same three states. pbsfs backs up with `--change-detection-mode metadata` (the first backup has no ' +
      'previous snapshot, so it reads everything; re-backups reuse unchanged files); in the row marked legacy mode, pbsfs makes ' +
      'its first backup with `--change-detection-mode legacy` into an empty datastore of its own, next to the same first-backup ' +
      'times of restic and borg. restic finds its parent snapshot, borg uses its files cache. Stored = sum of file sizes in the ' +
      `repository after the three backups. Peak RSS = the largest of the four steps.${selfSpeedup}`,
    rows,
    errors: tools.flatMap((t) => results[t.name].errors.map((e) => `${t.name}: ${e}`)),
  };
}
