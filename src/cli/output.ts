// Listings for humans (tables) and machines (json, json-pretty), chosen by --output-format.
import Table from 'cli-table3';
import { Option } from 'commander';
import { PbsError } from '../errors.js';

export type OutputFormat = 'text' | 'json' | 'json-pretty';

export function outputFormatOption(): Option {
  return new Option('--output-format <format>', 'text (table), json or json-pretty')
    .choices(['text', 'json', 'json-pretty'])
    .default(process.env.PROXMOX_OUTPUT_FORMAT ?? 'text');
}

export interface Column<T> {
  header: string;
  value: (row: T) => string | number | boolean | undefined | null;
  align?: 'left' | 'right';
}

function emitJson(value: unknown, format: OutputFormat): void {
  process.stdout.write(`${JSON.stringify(value, null, format === 'json-pretty' ? 2 : undefined)}\n`);
}

/** Prints rows as a table (text) or the raw objects (json). */
export function printList<T>(rows: readonly T[], columns: readonly Column<T>[], format: OutputFormat, json: (row: T) => unknown = (r) => r): void {
  if (format !== 'text') return emitJson(rows.map(json), format);
  const noBorder = process.env.PROXMOX_OUTPUT_NO_BORDER !== undefined;
  const noHeader = process.env.PROXMOX_OUTPUT_NO_HEADER !== undefined;
  const table = new Table({
    head: noHeader ? [] : columns.map((c) => c.header),
    colAligns: columns.map((c) => c.align ?? 'left'),
    style: { head: [], border: [], compact: noBorder },
    chars: noBorder
      ? { top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '', left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: ' ' }
      : {},
  });
  for (const r of rows) table.push(columns.map((c) => fmtCell(c.value(r))));
  process.stdout.write(`${table.toString()}\n`);
}

/** Prints one object as key/value lines (text) or JSON. */
export function printObject(obj: Record<string, unknown>, format: OutputFormat): void {
  if (format !== 'text') return emitJson(obj, format);
  const rows = Object.entries(obj).filter(([, v]) => v !== undefined);
  printList(rows, [
    { header: 'key', value: (r) => r[0] },
    { header: 'value', value: (r) => (typeof r[1] === 'object' && r[1] !== null ? JSON.stringify(r[1]) : fmtCell(r[1] as string)) },
  ], 'text');
}

function fmtCell(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  return String(v);
}

export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

export function parseFormat(v: unknown): OutputFormat {
  if (v === 'text' || v === 'json' || v === 'json-pretty') return v;
  throw new PbsError('EINVAL', `unknown output format ${String(v)}`);
}
