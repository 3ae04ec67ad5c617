const name = process.argv[2];
const { run } = await import(`/work/main/bench/suites/${name}.mjs`);
import { table } from '/work/main/bench/lib/common.mjs';
let rs = await run({ quick: process.argv.includes('--quick') });
if (!Array.isArray(rs)) rs = [rs];
for (const r of rs) { console.log(r.title); console.log(r.setup); for (const t of r.tables) console.log(table(t.columns, t.rows)); console.log(r.targets); }
