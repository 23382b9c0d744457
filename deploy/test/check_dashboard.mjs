#!/usr/bin/env node
// Checks that every metric a Grafana dashboard (and, with --rules, a Prometheus rules file)
// queries is exported: each name must appear in at least one of the scrape files (Prometheus
// text format, e.g. `curl -s 127.0.0.1:9464/metrics > server.txt`). Node.js only, no packages.
//
//   node deploy/test/check_dashboard.mjs [--rules alerts.yml]... DASHBOARD.json SCRAPE_FILE...
//   node deploy/test/check_dashboard.mjs --rules deploy/prometheus/alerts.yml \
//     deploy/grafana/tokenstatus.json server.txt sidecar.txt
//
// Names are the identifiers starting with tokenstatus_, grpc_server_ or process_ in every panel
// target's `expr` (rows' nested panels included) and every template variable's query; with
// --rules, in every rule's `expr` (read line by line: `expr: ...` on one line or a block scalar
// below it). String literals and # comments are left out (a label value is no metric). A
// _bucket, _sum or _count name counts as its histogram's (or summary's) base name; a histogram
// named without one of those suffixes selects nothing and is an error too.
// Exit 0 printing "N metric names, all present"; 1 listing each missing name and where it is
// used; 2 on a usage or file error.
import { readFileSync } from "node:fs";

const NAME = /\b(?:tokenstatus_|grpc_server_|process_)[A-Za-z0-9_:]*/g;
const SUFFIXES = ["_bucket", "_sum", "_count"];

function usage(message) {
  if (message) console.error(`check_dashboard: ${message}`);
  console.error(
    "usage: node check_dashboard.mjs [--rules RULES.yml]... DASHBOARD.json SCRAPE_FILE...");
  process.exit(2);
}

function read(path) {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    console.error(`check_dashboard: ${path}: ${error.message}`);
    process.exit(2);
  }
}

// PromQL without its string literals ("...", '...', `...`) and # comments.
function withoutStringsAndComments(expr) {
  return expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/#.*$/gm, "");
}

function namesIn(expr) {
  return withoutStringsAndComments(expr).match(NAME) ?? [];
}

// [{expr, where}] of a dashboard: panel targets (recursively) and template variable queries.
function dashboardExprs(dashboard, file) {
  const found = [];
  const walk = (panels) => {
    for (const panel of panels ?? []) {
      for (const target of panel.targets ?? []) {
        if (typeof target.expr === "string") {
          found.push({ expr: target.expr, where: `${file}: panel "${panel.title ?? panel.id}"` });
        }
      }
      walk(panel.panels);
    }
  };
  walk(dashboard.panels);
  walk((dashboard.rows ?? []).map((row) => ({ panels: row.panels }))); // schema < 16
  for (const variable of dashboard.templating?.list ?? []) {
    if (variable.type !== "query") continue;
    const query = typeof variable.query === "string" ? variable.query : variable.query?.query;
    if (typeof query === "string") {
      found.push({ expr: query, where: `${file}: variable $${variable.name}` });
    }
  }
  return found;
}

// [{expr, where}] of a rules file, line based: `expr: VALUE` or `expr: |` / `>-` ... followed
// by the lines indented deeper than the key. `where` names the rule (alert: or record:).
function rulesExprs(text, file) {
  const lines = text.split("\n");
  const found = [];
  let rule = "?";
  for (let i = 0; i < lines.length; ++i) {
    const named = lines[i].match(/^\s*-?\s*(alert|record):\s*(.+?)\s*$/);
    if (named) rule = `${named[1]} ${named[2].replace(/^["']|["']$/g, "")}`;
    const key = lines[i].match(/^(\s*)(?:-\s+)?expr:\s*(.*)$/);
    if (!key) continue;
    const indent = key[1].length;
    let value = key[2].replace(/\s+#.*$/, "");
    if (/^[|>][-+0-9]*$/.test(value)) {
      const block = [];
      while (i + 1 < lines.length &&
             (lines[i + 1].trim() === "" || lines[i + 1].search(/\S/) > indent)) {
        block.push(lines[++i]);
      }
      value = block.join("\n");
    } else if (/^'.*'$/.test(value)) {
      value = value.slice(1, -1).replace(/''/g, "'");
    } else if (/^".*"$/.test(value)) {
      value = JSON.parse(value);
    }
    found.push({ expr: value, where: `${file}: ${rule}` });
  }
  return found;
}

// What the scrape files export: every sample's name and every # TYPE line's name and type.
function scrapeNames(files) {
  const samples = new Set();
  const types = new Map();
  for (const file of files) {
    for (const line of read(file).split("\n")) {
      const type = line.match(/^#\s*TYPE\s+(\S+)\s+(\S+)/);
      if (type) {
        types.set(type[1], type[2]);
        continue;
      }
      if (line.startsWith("#") || line.trim() === "") continue;
      const sample = line.match(/^([A-Za-z_:][A-Za-z0-9_:]*)/);
      if (sample) samples.add(sample[1]);
    }
  }
  return { samples, types };
}

const args = process.argv.slice(2);
const ruleFiles = [];
const positional = [];
for (let i = 0; i < args.length; ++i) {
  if (args[i] === "--rules") {
    if (i + 1 >= args.length) usage("--rules needs a file");
    ruleFiles.push(args[++i]);
  } else if (args[i].startsWith("--rules=")) {
    ruleFiles.push(args[i].slice("--rules=".length));
  } else if (args[i] === "-h" || args[i] === "--help") {
    usage();
  } else if (args[i].startsWith("--")) {
    usage(`unknown option ${args[i]}`);
  } else {
    positional.push(args[i]);
  }
}
if (positional.length < 2) usage("a dashboard and at least one scrape file are needed");
const [dashboardFile, ...scrapeFiles] = positional;

let dashboard;
try {
  dashboard = JSON.parse(read(dashboardFile));
} catch (error) {
  console.error(`check_dashboard: ${dashboardFile}: not JSON: ${error.message}`);
  process.exit(2);
}
const exprs = dashboardExprs(dashboard, dashboardFile);
for (const file of ruleFiles) exprs.push(...rulesExprs(read(file), file));
if (exprs.length === 0) usage(`no expr found in ${[dashboardFile, ...ruleFiles].join(", ")}`);

const { samples, types } = scrapeNames(scrapeFiles);
const isHistogram = (name) => ["histogram", "summary"].includes(types.get(name));
const exported = (name) => samples.has(name) || types.has(name);

// name (after suffix mapping) -> {problem, uses: Set of where}
const checked = new Map();
for (const { expr, where } of exprs) {
  for (const used of namesIn(expr)) {
    let name = used;
    let problem = null;
    const suffix = SUFFIXES.find((s) => used.endsWith(s));
    const base = suffix ? used.slice(0, -suffix.length) : null;
    if (base && isHistogram(base)) {
      name = base;
    } else if (isHistogram(used)) {
      problem = "is a histogram: query its _bucket, _sum or _count";
    } else if (!exported(used)) {
      if (base && !exported(base)) {
        name = base;
        problem = `missing (used as ${used})`;
      } else {
        problem = "missing";
      }
    }
    const entry = checked.get(name) ?? { problems: new Set(), uses: new Set() };
    if (problem) entry.problems.add(problem);
    entry.uses.add(where);
    checked.set(name, entry);
  }
}

const bad = [...checked].filter(([, entry]) => entry.problems.size > 0);
if (bad.length > 0) {
  console.error(`${bad.length} of ${checked.size} metric names not in ${scrapeFiles.join(", ")}:`);
  for (const [name, entry] of bad.sort(([a], [b]) => a.localeCompare(b))) {
    console.error(`  ${name}: ${[...entry.problems].join("; ")}`);
    for (const where of entry.uses) console.error(`      ${where}`);
  }
  process.exit(1);
}
console.log(`${checked.size} metric names, all present`);
