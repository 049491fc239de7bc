#!/usr/bin/env node
// No #include cycles among the C sources and headers under a folder (native/ by default), as
// madge holds engine/ and extension/: `node scripts/check-include-cycles.mjs [DIR]` names each
// cycle it finds and exits 1. Only quoted includes count (`#include "x.h"`, resolved from the
// including file's folder); system headers (`<x.h>`) are outside the graph.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const SOURCE = /\.(c|h)$/;
const SKIPPED_DIRS = new Set(['build', 'node_modules']);
const QUOTED_INCLUDE = /^[ \t]*#[ \t]*include[ \t]*"([^"]+)"/gm;

function sourcesUnder(dir) {
  const found = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory() && !SKIPPED_DIRS.has(entry.name)) found.push(...sourcesUnder(path));
    else if (entry.isFile() && SOURCE.test(entry.name)) found.push(path);
  }
  return found;
}

/** Comments out of the way, so a commented-out include is no edge. */
function withoutComments(text) {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
}

/** Each file's quoted includes that are files of the same tree, as absolute paths. */
function includeGraph(files) {
  const known = new Set(files);
  const graph = new Map();
  for (const file of files) {
    const targets = [];
    for (const match of withoutComments(readFileSync(file, 'utf8')).matchAll(QUOTED_INCLUDE)) {
      const target = resolve(dirname(file), match[1]);
      if (known.has(target)) targets.push(target);
    }
    graph.set(file, targets);
  }
  return graph;
}

/** One cycle per back edge of a depth-first walk, each as the list of files around it. */
function cyclesOf(graph) {
  const cycles = [];
  const done = new Set();
  const onPath = [];
  const visit = (file) => {
    onPath.push(file);
    for (const target of graph.get(file)) {
      const at = onPath.indexOf(target);
      if (at >= 0) cycles.push([...onPath.slice(at), target]);
      else if (!done.has(target)) visit(target);
    }
    onPath.pop();
    done.add(file);
  };
  for (const file of [...graph.keys()].sort()) if (!done.has(file)) visit(file);
  return cycles;
}

const root = resolve(process.argv[2] ?? join(dirname(new URL(import.meta.url).pathname), '..', 'native'));
const files = sourcesUnder(root);
const cycles = cyclesOf(includeGraph(files));
if (cycles.length > 0) {
  for (const cycle of cycles) console.error(`include cycle: ${cycle.map((file) => relative(root, file)).join(' -> ')}`);
  console.error(
    `${cycles.length} #include cycle(s) under ${root}; break each by moving the shared declarations into a header both include`,
  );
  process.exit(1);
}
console.log(`no #include cycle among ${files.length} C files under ${relative(process.cwd(), root) || '.'}`);
