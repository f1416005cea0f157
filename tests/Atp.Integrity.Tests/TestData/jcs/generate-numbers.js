// Regenerates es6-numbers.csv: IEEE-754 bit patterns and V8's JSON.stringify of each (the ECMAScript
// Number::toString that RFC 8785 §3.2.2.3 requires). Deterministic: a fixed-seed xorshift generator.
// Usage: node generate-numbers.js > es6-numbers.csv
'use strict';
let state = 0x9E3779B97F4A7C15n;
function next64() {
  state ^= (state << 13n) & 0xFFFFFFFFFFFFFFFFn;
  state ^= state >> 7n;
  state ^= (state << 17n) & 0xFFFFFFFFFFFFFFFFn;
  return state;
}
const view = new DataView(new ArrayBuffer(8));
const lines = [];
function emit(bits) {
  view.setBigUint64(0, bits);
  const value = view.getFloat64(0);
  if (!Number.isFinite(value)) return;
  lines.push(bits.toString(16).padStart(16, '0') + ',' + JSON.stringify(value));
}
for (let i = 0; i < 6000; i++) emit(next64());
// Values near the fixed/exponent notation boundaries (1e-7 .. 1e21) and integers are where formatters differ.
for (let i = 0; i < 4000; i++) {
  const exponent = Number(next64() % 60n) - 30;
  const mantissa = Number(next64() % 10000000000000000n) / 1e16;
  const value = (i % 2 ? -1 : 1) * mantissa * Math.pow(10, exponent);
  view.setFloat64(0, value);
  emit(view.getBigUint64(0));
}
process.stdout.write(lines.join('\n') + '\n');
