// Prune selection for one group (spec §12 Prune) — a pure function of snapshot times, finished and
// protected flags, the keep options and a time zone for the local-time keys.
import { PbsError } from '../errors.js';

export interface PruneOptions {
  keepLast?: number;
  keepHourly?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  keepYearly?: number;
}

export interface PruneInput {
  /** Unix seconds. */
  time: number;
  finished: boolean;
  protected: boolean;
}

/** keep: kept by a rule; keep-partial: newest unfinished, newer than every finished one; protected; remove. */
export type PruneMark = 'keep' | 'keep-partial' | 'protected' | 'remove';

export interface PruneEntry {
  time: number;
  keep: boolean;
  protected: boolean;
  mark: PruneMark;
}

const OPTION_NAMES: ReadonlyArray<keyof PruneOptions> = ['keepLast', 'keepHourly', 'keepDaily', 'keepWeekly', 'keepMonthly', 'keepYearly'];

interface LocalParts {
  y: number;
  m: number;
  d: number;
  h: number;
}

function localPartsFn(tz: string | undefined): (time: number) => LocalParts {
  let fmt: Intl.DateTimeFormat;
  try {
    fmt = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
    });
  } catch (e) {
    throw new PbsError('EINVAL', `unknown time zone ${JSON.stringify(tz)}`, { cause: e });
  }
  return (time) => {
    const parts: Record<string, number> = {};
    for (const p of fmt.formatToParts(new Date(time * 1000))) {
      if (p.type !== 'literal') parts[p.type] = Number(p.value);
    }
    return { y: parts.year!, m: parts.month!, d: parts.day!, h: parts.hour! };
  };
}

/** ISO 8601 week-based year and week (strftime %G/%V) of a calendar date. */
export function isoWeek(y: number, m: number, d: number): { year: number; week: number } {
  const date = new Date(Date.UTC(y, m - 1, d));
  date.setUTCFullYear(y); // Date.UTC maps years 0..99 to 1900..1999
  const weekday = (date.getUTCDay() + 6) % 7; // Monday = 0
  // the Thursday of this week decides the year
  const thursday = new Date(date.getTime() + (3 - weekday) * 86_400_000);
  const year = thursday.getUTCFullYear();
  const jan1 = new Date(Date.UTC(2000, 0, 1));
  jan1.setUTCFullYear(year);
  const week = Math.floor((thursday.getTime() - jan1.getTime()) / 86_400_000 / 7) + 1;
  return { year, week };
}

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

/**
 * Marks each snapshot of a group keep/remove (spec §12). `tz` is an IANA zone for the hourly … yearly
 * keys; default: this process's local zone, like the PBS server. Returns oldest → newest, the order
 * in which removals are carried out.
 */
export function computePrune(snapshots: readonly PruneInput[], opts: PruneOptions, tz?: string): PruneEntry[] {
  for (const name of OPTION_NAMES) {
    const v = opts[name];
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) throw new PbsError('EINVAL', `prune option ${name} must be a non-negative integer, got ${String(v)}`);
  }
  const times = new Set<number>();
  for (const s of snapshots) {
    if (!Number.isSafeInteger(s.time)) throw new PbsError('EINVAL', `snapshot time must be whole seconds, got ${String(s.time)}`);
    if (times.has(s.time)) throw new PbsError('EINVAL', `snapshot time ${s.time} appears twice in one group`);
    times.add(s.time);
  }
  const list = [...snapshots].sort((a, b) => b.time - a.time); // newest first
  const mark = new Map<number, PruneMark>();

  // unfinished: the newest one survives only while no finished snapshot is newer
  let keepUnfinished = true;
  for (const s of list) {
    if (s.finished) keepUnfinished = false;
    else {
      mark.set(s.time, keepUnfinished ? 'keep-partial' : 'remove');
      keepUnfinished = false;
    }
  }

  const local = localPartsFn(tz);
  const select = (keep: number | undefined, key: (s: PruneInput) => string): void => {
    if (keep === undefined) return;
    const already = new Set<string>();
    for (const s of list) if (mark.get(s.time) === 'keep') already.add(key(s));
    const included = new Set<string>();
    for (const s of list) {
      if (mark.has(s.time)) continue;
      if (s.protected) {
        mark.set(s.time, 'protected');
        continue;
      }
      const k = key(s);
      if (already.has(k)) continue;
      if (!included.has(k)) {
        if (included.size >= keep) break;
        included.add(k);
        mark.set(s.time, 'keep');
      } else {
        mark.set(s.time, 'remove');
      }
    }
  };
  select(opts.keepLast, (s) => String(s.time));
  select(opts.keepHourly, (s) => {
    const p = local(s.time);
    return `${pad(p.y, 4)}/${pad(p.m)}/${pad(p.d)}/${pad(p.h)}`;
  });
  select(opts.keepDaily, (s) => {
    const p = local(s.time);
    return `${pad(p.y, 4)}/${pad(p.m)}/${pad(p.d)}`;
  });
  select(opts.keepWeekly, (s) => {
    const p = local(s.time);
    const w = isoWeek(p.y, p.m, p.d);
    return `${pad(w.year, 4)}/${pad(w.week)}`;
  });
  select(opts.keepMonthly, (s) => {
    const p = local(s.time);
    return `${pad(p.y, 4)}/${pad(p.m)}`;
  });
  select(opts.keepYearly, (s) => pad(local(s.time).y, 4));

  const keepsSomething = OPTION_NAMES.some((n) => (opts[n] ?? 0) > 0);
  return list.reverse().map((s): PruneEntry => {
    const m: PruneMark = s.protected ? 'protected' : keepsSomething ? (mark.get(s.time) ?? 'remove') : 'keep';
    return { time: s.time, keep: m !== 'remove', protected: s.protected, mark: m };
  });
}
