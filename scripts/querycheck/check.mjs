// Parses LogQL and TraceQL with Grafana's Lezer grammars (the parsers of Grafana's own query
// editors). Reads a JSON list of {"language": "logql"|"traceql", "query": "..."} on stdin and
// writes the same list back with "error": null or the first syntax error, e.g. "syntax error at 12: `| x`".
// Loki's and Tempo's own (Go, AGPL) parsers cannot be used here; these grammars are Apache-2.0.
import { parser as logql } from "@grafana/lezer-logql";
import { parser as traceql } from "@grafana/lezer-traceql";

const PARSERS = { logql, traceql };

function firstError(language, query) {
  const parser = PARSERS[language];
  if (!parser) return `unknown language ${JSON.stringify(language)}`;
  // strict: the parser throws at the first token it cannot shift instead of recovering.
  try {
    parser.configure({ strict: true }).parse(query);
  } catch (error) {
    const at = /(\d+)\s*$/.exec(error.message);
    const position = at ? Number(at[1]) : 0;
    return `syntax error at ${position}: \`${query.slice(position, position + 24)}\``;
  }
  return null;
}

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const items = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const results = items.map((item) => ({ ...item, error: firstError(item.language, item.query) }));
process.stdout.write(JSON.stringify(results) + "\n");
