// Parses an AsyncAPI document with the official parser (@asyncapi/parser, pinned in package-lock.json)
// and prints each diagnostic and a summary line. Exits 1 on any error or warning, 2 on bad usage.
//
//   node tools/asyncapi-validate/validate.mjs schemas/v1/asyncapi.json
import { Parser, fromFile } from '@asyncapi/parser';

const SEVERITIES = ['error', 'warning', 'info', 'hint']; // the order of the parser's DiagnosticSeverity

const [path] = process.argv.slice(2);
if (!path) {
  console.error('usage: node validate.mjs ASYNCAPI_DOCUMENT');
  process.exit(2);
}

const { document, diagnostics } = await fromFile(new Parser(), path).parse();
const counts = Object.fromEntries(SEVERITIES.map((name) => [name, 0]));
for (const { severity, code, message, path: where } of diagnostics) {
  const name = SEVERITIES[severity] ?? `severity ${severity}`;
  counts[name] = (counts[name] ?? 0) + 1;
  console.log(`${name} ${code}: ${message} at /${where.join('/')}`);
}
const summary = SEVERITIES.map((name) => `${counts[name]} ${name}s`).join(', ');
console.log(`${path}: ${document ? 'parsed' : 'not parsed'}; ${summary}`);
process.exit(document && counts.error === 0 && counts.warning === 0 ? 0 : 1);
