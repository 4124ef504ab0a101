// SipHash-2-4 (64-bit output) over 32-bit halves: no BigInt in the rounds, since goodbye tables hash every name.

// Mutable state, reused across calls (single-threaded JS, no reentrancy inside one call).
const s = new Uint32Array(8); // v0lo v0hi v1lo v1hi v2lo v2hi v3lo v3hi

function sipRound(): void {
  let v0l = s[0]!, v0h = s[1]!, v1l = s[2]!, v1h = s[3]!, v2l = s[4]!, v2h = s[5]!, v3l = s[6]!, v3h = s[7]!;
  let t: number;
  // v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32)
  t = (v0l + v1l) >>> 0; v0h = (v0h + v1h + (t < v0l ? 1 : 0)) >>> 0; v0l = t;
  t = ((v1l << 13) | (v1h >>> 19)) >>> 0; v1h = ((v1h << 13) | (v1l >>> 19)) >>> 0; v1l = t;
  v1l = (v1l ^ v0l) >>> 0; v1h = (v1h ^ v0h) >>> 0;
  t = v0l; v0l = v0h; v0h = t;
  // v2 += v3; v3 = rotl(v3, 16); v3 ^= v2
  t = (v2l + v3l) >>> 0; v2h = (v2h + v3h + (t < v2l ? 1 : 0)) >>> 0; v2l = t;
  t = ((v3l << 16) | (v3h >>> 16)) >>> 0; v3h = ((v3h << 16) | (v3l >>> 16)) >>> 0; v3l = t;
  v3l = (v3l ^ v2l) >>> 0; v3h = (v3h ^ v2h) >>> 0;
  // v0 += v3; v3 = rotl(v3, 21); v3 ^= v0
  t = (v0l + v3l) >>> 0; v0h = (v0h + v3h + (t < v0l ? 1 : 0)) >>> 0; v0l = t;
  t = ((v3l << 21) | (v3h >>> 11)) >>> 0; v3h = ((v3h << 21) | (v3l >>> 11)) >>> 0; v3l = t;
  v3l = (v3l ^ v0l) >>> 0; v3h = (v3h ^ v0h) >>> 0;
  // v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32)
  t = (v2l + v1l) >>> 0; v2h = (v2h + v1h + (t < v2l ? 1 : 0)) >>> 0; v2l = t;
  t = ((v1l << 17) | (v1h >>> 15)) >>> 0; v1h = ((v1h << 17) | (v1l >>> 15)) >>> 0; v1l = t;
  v1l = (v1l ^ v2l) >>> 0; v1h = (v1h ^ v2h) >>> 0;
  t = v2l; v2l = v2h; v2h = t;
  s[0] = v0l; s[1] = v0h; s[2] = v1l; s[3] = v1h; s[4] = v2l; s[5] = v2h; s[6] = v3l; s[7] = v3h;
}

function absorb(ml: number, mh: number, rounds: number): void {
  s[6] = (s[6]! ^ ml) >>> 0; s[7] = (s[7]! ^ mh) >>> 0;
  for (let i = 0; i < rounds; i++) sipRound();
  s[0] = (s[0]! ^ ml) >>> 0; s[1] = (s[1]! ^ mh) >>> 0;
}

/** Key given as four 32-bit words: k0 low, k0 high, k1 low, k1 high. Returns [low, high] of the 64-bit hash. */
export function siphash24(k0l: number, k0h: number, k1l: number, k1h: number, data: Uint8Array, out: Uint32Array): void {
  s[0] = (k0l ^ 0x70736575) >>> 0; s[1] = (k0h ^ 0x736f6d65) >>> 0;
  s[2] = (k1l ^ 0x6e646f6d) >>> 0; s[3] = (k1h ^ 0x646f7261) >>> 0;
  s[4] = (k0l ^ 0x6e657261) >>> 0; s[5] = (k0h ^ 0x6c796765) >>> 0;
  s[6] = (k1l ^ 0x79746573) >>> 0; s[7] = (k1h ^ 0x74656462) >>> 0;
  const len = data.length;
  const full = len - (len % 8);
  let i = 0;
  for (; i < full; i += 8) {
    const ml = (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24)) >>> 0;
    const mh = (data[i + 4]! | (data[i + 5]! << 8) | (data[i + 6]! << 16) | (data[i + 7]! << 24)) >>> 0;
    absorb(ml, mh, 2);
  }
  // Last block: remaining bytes little-endian, length mod 256 in the top byte.
  let ml = 0;
  let mh = ((len & 0xff) << 24) >>> 0;
  for (let j = 0; i + j < len; j++) {
    const b = data[i + j]!;
    if (j < 4) ml = (ml | (b << (8 * j))) >>> 0;
    else mh = (mh | (b << (8 * (j - 4)))) >>> 0;
  }
  absorb(ml, mh, 2);
  s[4] = (s[4]! ^ 0xff) >>> 0;
  for (let r = 0; r < 4; r++) sipRound();
  out[0] = (s[0]! ^ s[2]! ^ s[4]! ^ s[6]!) >>> 0;
  out[1] = (s[1]! ^ s[3]! ^ s[5]! ^ s[7]!) >>> 0;
}
