import { describe, expect, it } from 'vitest';
import { computePrune, isoWeek, type PruneInput, type PruneOptions } from '../../src/datastore/prune.js';

/** `YYYY-MM-DD HH:MM` in UTC → epoch seconds (tests pass tz 'UTC' unless they test zones). */
function t(s: string): number {
  return Date.parse(`${s.replace(' ', 'T')}:00Z`) / 1000;
}

function snaps(times: string[], extra: Partial<Record<string, Partial<PruneInput>>> = {}): PruneInput[] {
  return times.map((s) => ({ time: t(s), finished: true, protected: false, ...extra[s] }));
}

/** The kept snapshot times, as the input strings, oldest first. */
function kept(list: PruneInput[], opts: PruneOptions, tz = 'UTC'): string[] {
  const names = new Map(list.map((s) => [s.time, new Date(s.time * 1000).toISOString().slice(0, 16).replace('T', ' ')]));
  return computePrune(list, opts, tz)
    .filter((e) => e.keep)
    .map((e) => names.get(e.time)!);
}

describe('computePrune', () => {
  it('without keep options keeps everything', () => {
    const list = snaps(['2024-01-01 00:00', '2024-01-02 00:00']);
    expect(computePrune(list, {}, 'UTC').every((e) => e.keep && e.mark === 'keep')).toBe(true);
    expect(computePrune(list, { keepLast: 0 }, 'UTC').every((e) => e.keep)).toBe(true);
  });

  it('keep-last keeps the newest N; result is oldest first', () => {
    const list = snaps(['2024-01-01 00:00', '2024-01-02 00:00', '2024-01-03 00:00', '2024-01-04 00:00']);
    const res = computePrune(list, { keepLast: 2 }, 'UTC');
    expect(res.map((e) => [e.time, e.keep, e.mark])).toEqual([
      [t('2024-01-01 00:00'), false, 'remove'],
      [t('2024-01-02 00:00'), false, 'remove'],
      [t('2024-01-03 00:00'), true, 'keep'],
      [t('2024-01-04 00:00'), true, 'keep'],
    ]);
  });

  it('keep-daily keeps the newest snapshot of each of the last N days that have one', () => {
    const list = snaps(['2024-03-01 08:00', '2024-03-01 20:00', '2024-03-02 09:00', '2024-03-04 10:00', '2024-03-04 11:00', '2024-03-04 12:00']);
    expect(kept(list, { keepDaily: 2 })).toEqual(['2024-03-02 09:00', '2024-03-04 12:00']);
    expect(kept(list, { keepDaily: 10 })).toEqual(['2024-03-01 20:00', '2024-03-02 09:00', '2024-03-04 12:00']);
  });

  it('keys already kept by an earlier rule count as taken for later rules', () => {
    // keep-last 2 keeps both 03-04 snapshots; keep-daily 2 must then skip 03-04 and take 03-03 and 03-02
    const list = snaps(['2024-03-01 10:00', '2024-03-02 10:00', '2024-03-03 10:00', '2024-03-04 10:00', '2024-03-04 11:00']);
    expect(kept(list, { keepLast: 2, keepDaily: 2 })).toEqual(['2024-03-02 10:00', '2024-03-03 10:00', '2024-03-04 10:00', '2024-03-04 11:00']);
  });

  it('keep-hourly and keep-monthly/yearly', () => {
    const hours = snaps(['2024-03-01 10:05', '2024-03-01 10:55', '2024-03-01 11:10', '2024-03-01 12:00']);
    expect(kept(hours, { keepHourly: 2 })).toEqual(['2024-03-01 11:10', '2024-03-01 12:00']);
    const months = snaps(['2023-11-30 00:00', '2023-12-01 00:00', '2023-12-31 00:00', '2024-01-15 00:00', '2024-02-01 00:00']);
    expect(kept(months, { keepMonthly: 3 })).toEqual(['2023-12-31 00:00', '2024-01-15 00:00', '2024-02-01 00:00']);
    expect(kept(months, { keepYearly: 5 })).toEqual(['2023-12-31 00:00', '2024-02-01 00:00']);
  });

  it('keep-weekly uses ISO weeks (%G/%V), across the year boundary', () => {
    // 2024-12-30 (Mon) .. 2025-01-05 (Sun) are ISO week 2025/01; 2024-12-29 (Sun) is 2024/52
    const list = snaps(['2024-12-22 12:00', '2024-12-29 12:00', '2024-12-30 12:00', '2025-01-05 12:00']);
    expect(kept(list, { keepWeekly: 2 })).toEqual(['2024-12-29 12:00', '2025-01-05 12:00']);
    expect(kept(list, { keepWeekly: 3 })).toEqual(['2024-12-22 12:00', '2024-12-29 12:00', '2025-01-05 12:00']);
    expect(isoWeek(2024, 12, 30)).toEqual({ year: 2025, week: 1 });
    expect(isoWeek(2021, 1, 3)).toEqual({ year: 2020, week: 53 });
    expect(isoWeek(2026, 6, 15)).toEqual({ year: 2026, week: 25 });
  });

  it('keys use the given time zone', () => {
    // 23:30 UTC on 03-01 is already 03-02 in Berlin: the two snapshots share a Berlin day
    const list = snaps(['2024-03-01 23:30', '2024-03-02 06:00']);
    expect(kept(list, { keepDaily: 5 }, 'UTC')).toEqual(['2024-03-01 23:30', '2024-03-02 06:00']);
    expect(kept(list, { keepDaily: 5 }, 'Europe/Berlin')).toEqual(['2024-03-02 06:00']);
    // and 01:00 Berlin on 03-02 is still 03-01 in New York
    expect(kept(snaps(['2024-03-02 00:30', '2024-03-02 03:00']), { keepDaily: 5 }, 'America/New_York')).toEqual(['2024-03-02 03:00']);
    expect(() => computePrune(list, { keepDaily: 1 }, 'Mars/Olympus')).toThrow(/time zone/);
  });

  it('protected snapshots are never removed and do not use up a keep slot', () => {
    const list = snaps(['2024-03-01 10:00', '2024-03-02 10:00', '2024-03-03 10:00'], { '2024-03-03 10:00': { protected: true } });
    const res = computePrune(list, { keepLast: 1 }, 'UTC');
    expect(res.map((e) => [e.keep, e.protected, e.mark])).toEqual([
      [false, false, 'remove'],
      [true, false, 'keep'],
      [true, true, 'protected'],
    ]);
    const old = snaps(['2024-03-01 10:00', '2024-03-02 10:00'], { '2024-03-01 10:00': { protected: true } });
    expect(computePrune(old, { keepLast: 1 }, 'UTC').map((e) => e.mark)).toEqual(['protected', 'keep']);
  });

  it('unfinished: only the newest, and only while newer than every finished snapshot, is kept', () => {
    const list = snaps(['2024-03-01 10:00', '2024-03-02 10:00', '2024-03-03 10:00', '2024-03-04 10:00'], {
      '2024-03-01 10:00': { finished: false },
      '2024-03-04 10:00': { finished: false },
    });
    expect(computePrune(list, { keepLast: 5 }, 'UTC').map((e) => e.mark)).toEqual(['remove', 'keep', 'keep', 'keep-partial']);
    const stale = snaps(['2024-03-01 10:00', '2024-03-02 10:00'], { '2024-03-02 10:00': { finished: false } });
    stale.push({ time: t('2024-03-03 10:00'), finished: true, protected: false });
    expect(computePrune(stale, { keepLast: 5 }, 'UTC').map((e) => e.mark)).toEqual(['keep', 'remove', 'keep']);
    const twoPartial = snaps(['2024-03-01 10:00', '2024-03-02 10:00'], { '2024-03-01 10:00': { finished: false }, '2024-03-02 10:00': { finished: false } });
    expect(computePrune(twoPartial, { keepDaily: 1 }, 'UTC').map((e) => e.mark)).toEqual(['remove', 'keep-partial']);
  });

  it('rejects bad input', () => {
    expect(() => computePrune(snaps(['2024-03-01 10:00']), { keepLast: -1 }, 'UTC')).toThrow(/non-negative/);
    expect(() => computePrune(snaps(['2024-03-01 10:00']), { keepDaily: 1.5 }, 'UTC')).toThrow(/non-negative/);
    expect(() => computePrune([...snaps(['2024-03-01 10:00']), ...snaps(['2024-03-01 10:00'])], { keepLast: 1 }, 'UTC')).toThrow(/twice/);
  });
});
