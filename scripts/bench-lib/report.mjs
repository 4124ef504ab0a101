// The results table: one row per scenario step, a column per tool and "pbsfs vs other" ratios; console and Markdown.
import Table from 'cli-table3';

/** Which way each unit is better: speeds up, times and sizes down. */
const HIGHER_IS_BETTER = { 'MB/s': true, s: false, MiB: false };

function cell(v, unit) {
  if (v === null || v === undefined) return 'n/a';
  return `${v.toFixed(v >= 100 ? 0 : v < 10 ? 2 : 1)} ${unit}`;
}

/** How many times better pbsfs did than the other tool on this row: above 1× pbsfs is ahead, whatever the unit. */
function ratio(pbsfs, other, unit) {
  if (pbsfs === null || other === null || !pbsfs || !other) return 'n/a';
  if (!(unit in HIGHER_IS_BETTER)) throw new Error(`no direction known for unit ${unit}`);
  return `${(HIGHER_IS_BETTER[unit] ? pbsfs / other : other / pbsfs).toFixed(2)}×`;
}

function tableRows(results, toolNames) {
  const others = toolNames.filter((t) => t !== 'pbsfs');
  const header = ['step', ...toolNames, ...(toolNames.includes('pbsfs') ? others.map((o) => `pbsfs vs ${o}`) : [])];
  const rows = results.flatMap((s) =>
    s.rows.map((r) => [
      r.step,
      ...toolNames.map((t) => cell(r.values[t], r.unit)),
      ...(toolNames.includes('pbsfs') ? others.map((o) => ratio(r.values.pbsfs, r.values[o], r.unit)) : []),
    ]),
  );
  return { header, rows };
}

export function consoleTable(results, toolNames) {
  const { header, rows } = tableRows(results, toolNames);
  const table = new Table({ head: header, colAligns: header.map((_, i) => (i === 0 ? 'left' : 'right')), style: { head: [], border: [] } });
  table.push(...rows);
  return table.toString();
}

/** What the units of the rows present mean, and which way the ratio columns point. */
function unitNotes(results, toolNames) {
  const units = new Set(results.flatMap((s) => s.rows.map((r) => r.unit)));
  const notes = [];
  if (units.has('MB/s')) notes.push('MB/s = 10^6 bytes of image per second of wall time (process start to exit; higher is better).');
  if (units.has('s')) notes.push('s = seconds of wall time, process start to exit (lower is better).');
  if (units.has('MiB')) notes.push('MiB: lower is better.');
  if (toolNames.includes('pbsfs') && toolNames.length > 1) notes.push(
    '"pbsfs vs X" = how many times better pbsfs did than X on that row: ' +
      [units.has('MB/s') && "pbsfs's MB/s ÷ X's MB/s", units.has('s') && "X's seconds ÷ pbsfs's seconds", units.has('MiB') && "X's MiB ÷ pbsfs's MiB"].filter(Boolean).join(', ') +
      '. Above 1× pbsfs is ahead, below 1× behind.',
  );
  return notes.join(' ');
}

export function markdown(results, toolNames, meta) {
  const { header, rows } = tableRows(results, toolNames);
  const line = (cells) => `| ${cells.join(' | ')} |`;
  const out = [
    '# pbsfs benchmark',
    '',
    `Command: \`${meta.command}\` — ${meta.date}`,
    '',
    `Machine: ${meta.machine}`,
    '',
    line(header),
    line(header.map((_, i) => (i === 0 ? '---' : '---:'))),
    ...rows.map(line),
    '',
    unitNotes(results, toolNames),
    '',
  ];
  for (const s of results) out.push(`**${s.title}.** ${s.description}`, '');
  out.push('Tools and settings:', '', ...meta.tools.map((t) => `- ${t}`), '');
  if (meta.notes.length) out.push('Notes:', '', ...meta.notes.map((n) => `- ${n}`), '');
  const errors = results.flatMap((s) => s.errors);
  if (errors.length) out.push('Failures:', '', ...errors.map((e) => `- ${e}`), '');
  return out.join('\n');
}
