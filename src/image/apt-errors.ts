/**
 * Reading apt's own words out of mmdebstrap's output: a recipe that names a package the host's
 * apt sources do not have fails deep in mmdebstrap's log, after its essential packages were
 * installed; apt said which package it was on one line.
 */

const NOT_FOUND = [
  /^E: Unable to locate package (\S+)$/,
  /^E: Package '([^']+)' has no installation candidate$/,
  /^E: Couldn't find any package by (?:glob|regex) '([^']+)'$/,
  /^E: Version '[^']+' for '([^']+)' was not found$/,
];

/** The packages apt said it could not find, in the order it said so, each once. */
export function packagesNotFound(lines: readonly string[]): string[] {
  const found: string[] = [];
  for (const line of lines) {
    for (const pattern of NOT_FOUND) {
      const name = pattern.exec(line.trim())?.[1];
      if (name !== undefined && !found.includes(name)) found.push(name);
    }
  }
  return found;
}
