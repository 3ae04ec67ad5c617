// Runs one suite in its own process (fresh heap and JIT state, and every server/browser it
// started dies with it): node --expose-gc bench/lib/child.mjs <suite> <out.json> [--quick]
import { writeFileSync } from 'node:fs';

const [suite, outPath] = process.argv.slice(2);
const quick = process.argv.includes('--quick');
const { run } = await import(`../suites/${suite}.mjs`);
const t0 = performance.now();
let results = await run({ quick });
if (!Array.isArray(results)) results = [results];
for (const r of results) r.seconds = (performance.now() - t0) / 1000;
writeFileSync(outPath, JSON.stringify(results, (k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v)));
process.exit(0);
