// Bench driver (started by scripts/bench): prepares the work dir, runs each scenario for each tool (in a
// sub-directory of its own, with fresh repositories), prints the table and writes it as Markdown to <work-dir>/results.md.
import { existsSync, readFileSync, readdirSync, statfsSync, writeFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { dropCaches, stolen } from './measure.mjs';
import { consoleTable, markdown } from './report.mjs';
import { SCENARIOS } from './scenarios/index.mjs';
import { TOOLS } from './tools/index.mjs';

const MARKER = '.pbsfs-bench-work';
const root = fileURLToPath(new URL('../..', import.meta.url));

function usage(msg) {
  if (msg) process.stderr.write(`bench: ${msg}\n`);
  process.stderr.write(
    'usage: scripts/bench [--size 1G] [--work-dir bench-work] [--tools pbsfs,restic,borg] [--scenarios image,tree,mount] [--no-build]\n',
  );
  process.exit(msg ? 2 : 0);
}

function parseSize(text) {
  const m = /^(\d+)\s*([KMG]?)(?:i?B)?$/i.exec(text);
  if (!m) usage(`bad --size '${text}' (e.g. 256M, 1G)`);
  const size = Number(m[1]) * 1024 ** ' KMG'.indexOf(m[2].toUpperCase() || ' ');
  if (!(size >= 1)) usage(`--size must be at least one byte`);
  return size;
}

function list(text, known, what) {
  const names = text.split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of names) if (!(n in known)) usage(`unknown ${what} '${n}' (known: ${Object.keys(known).join(', ')})`);
  return names;
}

/** Empties the work dir, refusing one that holds files but is not ours. */
async function prepareWorkDir(dir) {
  if (existsSync(dir) && readdirSync(dir).length > 0 && !existsSync(join(dir, MARKER))) {
    usage(`${dir} is not empty and was not made by scripts/bench; choose another --work-dir`);
  }
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, 'logs'), { recursive: true });
  writeFileSync(join(dir, MARKER), 'made by scripts/bench; emptied on every run\n');
}

function machine() {
  const model = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown CPU';
  return `${cpus().length} × ${model}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Linux ${readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}${haltPolling()}`;
}

/** In a VM, whether an idle vCPU polls before it halts: every FUSE round trip wakes a sleeping client, so it matters. */
function haltPolling() {
  try {
    return `, guest halt polling ${readFileSync('/sys/module/haltpoll/parameters/guest_halt_poll_ns', 'utf8').trim()} ns`;
  } catch {
    return '';
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      size: { type: 'string', default: '1G' },
      'work-dir': { type: 'string', default: 'bench-work' },
      tools: { type: 'string', default: Object.keys(TOOLS).join(',') },
      scenarios: { type: 'string', default: Object.keys(SCENARIOS).join(',') },
      'no-build': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) usage();
  const size = parseSize(values.size);
  const toolNames = list(values.tools, TOOLS, 'tool');
  const scenarioNames = list(values.scenarios, SCENARIOS, 'scenario');
  const workDir = resolve(root, values['work-dir']);

  await prepareWorkDir(workDir);
  // Two images, one restored copy at a time, and a repository per tool of at most about the image size
  // (the tree scenario checks its own needs once it knows the tree's size).
  const needed = scenarioNames.includes('image') ? size * (3 + 1.2 * toolNames.length) : 0;
  const fs = statfsSync(workDir);
  if (fs.bavail * fs.bsize < needed) usage(`${workDir} has ${(fs.bavail * fs.bsize / 2 ** 30).toFixed(1)} GiB free, needs about ${(needed / 2 ** 30).toFixed(1)} GiB`);

  const notes = [];
  const ctx = {
    root,
    workDir,
    logDir: join(workDir, 'logs'),
    size,
    log: (msg) => process.stderr.write(`bench: ${msg}\n`),
    cachesDropped: null,
    async dropCaches() {
      const ok = await dropCaches();
      if (ctx.cachesDropped === null && !ok) notes.push('The page cache could not be dropped (not permitted): reads may come from memory.');
      ctx.cachesDropped ??= ok;
    },
  };
  const tools = toolNames.map((n) => TOOLS[n](ctx));
  const toolInfo = [];
  for (const t of tools) {
    const version = await t.version().catch((e) => `unavailable: ${e.message}`);
    toolInfo.push(`${t.name}: ${version.split('\n')[0]} — ${t.settings}`);
  }

  const results = [];
  for (const name of scenarioNames) {
    const scenarioCtx = { ...ctx, workDir: join(workDir, name), logDir: join(ctx.logDir, name) };
    await mkdir(scenarioCtx.workDir, { recursive: true });
    await mkdir(scenarioCtx.logDir, { recursive: true });
    results.push(await SCENARIOS[name](scenarioCtx, toolNames.map((n) => TOOLS[n](scenarioCtx))));
  }
  if (ctx.cachesDropped) notes.push('The page cache was dropped (sync; echo 3 > /proc/sys/vm/drop_caches) before every timed step.');
  const stealNote = stolen.length
    ? `Host steal (CPU time the hypervisor gave to others while this VM was ready to run) above 0.5 s during: ${stolen.map(([step, s]) => `${step} ${s.toFixed(1)} s`).join(', ')}.`
    : 'Host steal stayed below 0.5 s of CPU in every timed step.';
  notes.push(stealNote);

  const argv = process.argv.slice(2).filter((a) => a !== '--no-build');
  const meta = { command: ['scripts/bench', ...argv].join(' '), date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC', machine: machine(), tools: toolInfo, notes };
  process.stdout.write(`${consoleTable(results, toolNames)}\n${stealNote}\n`);
  const errors = results.flatMap((s) => s.errors);
  for (const e of errors) process.stderr.write(`bench: FAILED ${e}\n`);
  writeFileSync(join(workDir, 'results.md'), markdown(results, toolNames, meta));
  process.stderr.write(`bench: results written to ${join(workDir, 'results.md')}; logs in ${ctx.logDir}\n`);
  process.exitCode = errors.length ? 1 : 0;
}

main().catch((e) => {
  process.stderr.write(`bench: ${e instanceof Error ? e.stack : e}\n`);
  process.exitCode = 1;
});
