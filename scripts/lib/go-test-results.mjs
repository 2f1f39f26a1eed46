// Reads `go tool test2json` events (one JSON object a line) on stdin, as a Go test binary run
// with -test.v emits them, and turns them into one result per top-level test: passed, failed
// or skipped, its duration, and a one-line reason (for a failure the first testify "Error:"
// or t.Fatal message; for a skip its message). Used by scripts/cri-conformance.sh.
//
//   node go-test-results.mjs --tsv FILE --md FILE [--title TEXT] < events
//
// Writes FILE.tsv (test, result, seconds, reason; a header line first) and FILE.md (the same
// as a Markdown table, for the README), prints each result on stderr as it arrives, and prints
// the summary "N passed, M failed, K skipped" as its only line on stdout. A test that started
// but never ended (a panic, the -timeout) counts as failed, with the panic's first line.
import { writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { tsv: { type: "string" }, md: { type: "string" }, title: { type: "string" } }, strict: true });
if (!values.tsv || !values.md) {
  console.error("usage: node go-test-results.mjs --tsv FILE --md FILE [--title TEXT] < test2json events");
  process.exit(2);
}

/** name -> { result, seconds, output: lines of the test and its subtests } */
const tests = new Map();
const order = [];
const packageOutput = [];
const topLevel = (name) => name.split("/")[0];

function testOf(name) {
  let test = tests.get(name);
  if (!test) {
    test = { name, result: undefined, seconds: 0, output: [] };
    tests.set(name, test);
    order.push(name);
  }
  return test;
}

const MAX_REASON = 240;
const oneLine = (text) => {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > MAX_REASON ? `${line.slice(0, MAX_REASON - 1)}…` : line;
};

/** testify's report: "\tError:      \tmessage" and continuation lines "\t            \tmore". */
function testifyError(lines) {
  for (let i = 0; i < lines.length; i++) {
    const fields = lines[i].split("\t");
    const label = fields.findIndex((field) => field.trim() === "Error:");
    if (label < 0) continue;
    const parts = [fields.slice(label + 1).join(" ")];
    for (let j = i + 1; j < lines.length; j++) {
      const next = lines[j].split("\t");
      if (next.length <= label || next[label].trim() !== "") break;
      parts.push(next.slice(label + 1).join(" "));
    }
    const messages = lines.find((line) => line.includes("\tMessages:"));
    const message = messages ? ` (${messages.split("\tMessages:")[1].trim()})` : "";
    return oneLine(parts.join(" ") + message);
  }
  return undefined;
}

/** The message of t.Fatal, t.Error or t.Skip: "    file_test.go:12: message". */
function logMessage(lines, last = false) {
  const found = lines.map((line) => /^\s+\S+\.go:\d+: (.*\S)/.exec(line)?.[1]).filter((message) => message !== undefined);
  const message = last ? found.at(-1) : found[0];
  return message === undefined ? undefined : oneLine(message);
}

function reasonOf(test) {
  if (test.result === "pass") return "";
  if (test.result === "skip") return logMessage(test.output, true) ?? "";
  if (test.result === undefined) {
    const panic = packageOutput.find((line) => line.startsWith("panic:"));
    return oneLine(`did not finish: ${panic ?? "the test binary exited"}`);
  }
  return testifyError(test.output) ?? logMessage(test.output) ?? "";
}

const symbols = { pass: "PASS", fail: "FAIL", skip: "SKIP" };
function report(test) {
  const reason = reasonOf(test);
  console.error(`${symbols[test.result ?? "fail"]} ${test.name} (${test.seconds.toFixed(1)} s)${reason ? `: ${reason}` : ""}`);
}

for await (const line of createInterface({ input: process.stdin })) {
  let event;
  try {
    event = JSON.parse(line);
  } catch {
    packageOutput.push(line); // not an event: the binary's own output before test2json framed it
    continue;
  }
  if (!event.Test) {
    if (event.Action === "output") packageOutput.push(event.Output.trimEnd());
    continue;
  }
  const test = testOf(topLevel(event.Test));
  if (event.Action === "output") test.output.push(event.Output.replace(/\n$/, ""));
  if (event.Test !== test.name) continue; // a subtest's end: its parent's result counts
  if (event.Action === "pass" || event.Action === "fail" || event.Action === "skip") {
    test.result = event.Action;
    test.seconds = event.Elapsed ?? 0;
    report(test);
  }
}

const unfinished = order.map((name) => tests.get(name)).filter((test) => test.result === undefined);
for (const test of unfinished) report(test);

const rows = order.map((name) => {
  const test = tests.get(name);
  return { name, result: test.result === undefined ? "fail" : test.result, seconds: test.seconds, reason: reasonOf(test) };
});
const count = (result) => rows.filter((row) => row.result === result).length;
const summary = `${count("pass")} passed, ${count("fail")} failed, ${count("skip")} skipped`;

writeFileSync(values.tsv, ["test\tresult\tseconds\treason", ...rows.map((row) => `${row.name}\t${row.result}\t${row.seconds.toFixed(1)}\t${row.reason}`)].join("\n") + "\n");
const cell = (text) => text.replaceAll("|", "\\|");
writeFileSync(
  values.md,
  [
    ...(values.title ? [values.title, ""] : []),
    `${summary}.`,
    "",
    "| test | result | s | reason |",
    "|---|---|---:|---|",
    ...rows.map((row) => `| ${row.name} | ${row.result} | ${row.seconds.toFixed(1)} | ${cell(row.reason)} |`),
  ].join("\n") + "\n",
);
if (rows.length === 0 && packageOutput.length > 0) console.error(`the test binary ran no test:\n${packageOutput.slice(-15).join("\n")}`);
console.log(summary);
