// The results table: one row per scenario step, a column per tool and pbsfs÷other ratios; console and Markdown.
import Table from 'cli-table3';

function cell(v, unit) {
  if (v === null || v === undefined) return 'n/a';
  return `${v.toFixed(v >= 100 ? 0 : 1)} ${unit}`;
}

function ratio(a, b) {
  return a === null || b === null || !b ? 'n/a' : `${(a / b).toFixed(2)}×`;
}

function tableRows(results, toolNames) {
  const others = toolNames.filter((t) => t !== 'pbsfs');
  const header = ['step', ...toolNames, ...(toolNames.includes('pbsfs') ? others.map((o) => `pbsfs÷${o}`) : [])];
  const rows = results.flatMap((s) =>
    s.rows.map((r) => [
      r.step,
      ...toolNames.map((t) => cell(r.values[t], r.unit)),
      ...(toolNames.includes('pbsfs') ? others.map((o) => ratio(r.values.pbsfs, r.values[o])) : []),
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
    'MB/s = 10^6 bytes of image per second of wall time (process start to exit). Ratios are pbsfs divided by the other tool ' +
      '(for speeds higher is better, for MiB lower is better).',
    '',
  ];
  for (const s of results) out.push(`**${s.title}.** ${s.description}`, '');
  out.push('Tools and settings:', '', ...meta.tools.map((t) => `- ${t}`), '');
  if (meta.notes.length) out.push('Notes:', '', ...meta.notes.map((n) => `- ${n}`), '');
  const errors = results.flatMap((s) => s.errors);
  if (errors.length) out.push('Failures:', '', ...errors.map((e) => `- ${e}`), '');
  return out.join('\n');
}
