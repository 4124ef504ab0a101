// Which byte ranges of one image chunk have been written: sorted, disjoint [start, end) intervals, merged on insert.
export class CoveredRanges {
  private ranges: Array<[number, number]> = [];

  add(start: number, end: number): void {
    if (end <= start) return;
    const out: Array<[number, number]> = [];
    let s = start;
    let e = end;
    for (const [a, b] of this.ranges) {
      if (b < s || a > e) out.push([a, b]);
      else {
        s = Math.min(s, a);
        e = Math.max(e, b);
      }
    }
    out.push([s, e]);
    this.ranges = out.sort((x, y) => x[0] - y[0]);
  }

  /** Forgets everything at or past `end` (truncation). */
  clip(end: number): void {
    this.ranges = this.ranges.filter(([a]) => a < end).map(([a, b]) => [a, Math.min(b, end)]);
  }

  /** True when [0, length) is written completely. */
  covers(length: number): boolean {
    const first = this.ranges[0];
    return first !== undefined && first[0] === 0 && first[1] >= length;
  }

  get count(): number {
    return this.ranges.length;
  }
}
