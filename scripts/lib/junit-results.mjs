#!/usr/bin/env node
// Ginkgo's JUnit report (critest --ginkgo.junit-report) as one line per test, tab-separated:
//   <status>\t<seconds>\t<name>\t<first line of the failure or skip message>
// status: pass, fail or skip. Usage: node junit-results.mjs REPORT.xml
import { readFileSync } from "node:fs";
import { XMLParser } from "fast-xml-parser";

const [file] = process.argv.slice(2);
if (!file) {
  console.error("usage: node junit-results.mjs REPORT.xml");
  process.exit(2);
}
const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "", htmlEntities: true, isArray: (name) => name === "testsuite" || name === "testcase" });
const report = parser.parse(readFileSync(file, "utf8"));
const oneLine = (text) => String(text ?? "").split("\n").map((line) => line.trim()).find(Boolean)?.replaceAll("\t", " ").slice(0, 300) ?? "";
for (const suite of report.testsuites?.testsuite ?? []) {
  for (const test of suite.testcase ?? []) {
    // Ginkgo names its setup nodes [BeforeSuite]/[AfterSuite]/[ReportAfterSuite]: not tests.
    if (/^\[(Before|After|ReportBefore|ReportAfter|SynchronizedBefore|SynchronizedAfter)Suite\]/.test(test.name)) continue;
    const failure = test.failure ?? test.error;
    const status = failure !== undefined ? "fail" : test.skipped !== undefined ? "skip" : "pass";
    const message = failure !== undefined ? (failure.message ?? failure["#text"] ?? failure) : test.skipped !== undefined ? (test.skipped.message ?? "") : "";
    const name = test.name.replace(/^\[It\]\s*/, "").replace(/\s+/g, " ").trim();
    process.stdout.write(`${status}\t${Number(test.time ?? 0).toFixed(1)}\t${name}\t${oneLine(message)}\n`);
  }
}
