// The pack's time conversions for the duration readouts: the same functions, with the same rule,
// as indextts2_core/timing.py (a test runs both on random values). A length in seconds becomes the
// nearest count (ties up) of its exact value, a float being read as the shortest decimal that reads
// back to it; counts that must cover a length round up; the silence between segments and the S2M
// frames for codes keep the official int(). Rates come from the model the node last ran with (the
// node sends them), IndexTTS-2's until then.

export const MEL_PER_CONTENT_FRAME = 1.72;
export const DEFAULT_TIMING = { sample_rate: 22050, hop_length: 256, codes_per_second: 50, content_per_code: 1 };

// x (a finite number >= 0) as an exact fraction [numerator, denominator] of BigInts
function exact(x) {
  const m = /^(\d+)(?:\.(\d+))?(?:e([+-]?\d+))?$/i.exec(String(x));
  if (!m) throw new Error(`not a finite non-negative number: ${x}`);
  const frac = m[2] ?? "";
  const exp = Number(m[3] ?? 0) - frac.length;
  const digits = BigInt(m[1] + frac);
  return exp >= 0 ? [digits * 10n ** BigInt(exp), 1n] : [digits, 10n ** BigInt(-exp)];
}

// floor(x * mul / div), or the nearest integer (ties up), for the exact value of x; mul, div > 0
function scaled(x, mul, div, nearest) {
  const [n, d] = exact(x);
  const num = n * BigInt(mul), den = d * BigInt(div);
  return Number(nearest ? (2n * num + den) / (2n * den) : num / den);
}

export function samples(t, seconds) {
  return scaled(seconds, t.sample_rate, 1, true);
}

export function silenceSamples(t, ms) {
  return scaled(ms, t.sample_rate, 1000, false);  // official int()
}

export function codes(t, seconds) {
  return Math.max(1, scaled(seconds, t.codes_per_second, 1, true));
}

export function codesForSamples(t, n) {
  return Math.max(1, scaled(n, t.codes_per_second, t.sample_rate, true));
}

export function framesForSamples(t, n) {
  return Math.ceil(n / t.hop_length);
}

export function framesToSamples(t, frames) {
  return frames * t.hop_length;
}

export function framesForCodes(t, n, durationFactor = 1.0) {
  return Math.trunc(n * t.content_per_code * MEL_PER_CONTENT_FRAME * durationFactor);
}

export function secondsOf(t, n) {
  return n / t.sample_rate;
}
