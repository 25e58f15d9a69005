#!/usr/bin/env node
// Tokenizes .spec files with the extension's TextMate grammar, using the engine VS Code
// itself runs (vscode-textmate with the Oniguruma regex library), and prints every token
// as JSON: {"FILE": [[line, start, end, text, [scope, ...]], ...], ...}.
// tests/editors/test_textmate.py reads this and checks the scopes.
"use strict";

const fs = require("fs");
const path = require("path");
const textmate = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");

const GRAMMAR = path.join(__dirname, "..", "syntaxes", "spec.tmLanguage.json");

async function loadGrammar() {
  const wasm = fs.readFileSync(path.join(path.dirname(require.resolve("vscode-oniguruma")), "onig.wasm"));
  await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
  const registry = new textmate.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
      createOnigString: (text) => new oniguruma.OnigString(text),
    }),
    loadGrammar: async (scopeName) =>
      scopeName === "source.spec" ? textmate.parseRawGrammar(fs.readFileSync(GRAMMAR, "utf8"), GRAMMAR) : null,
  });
  return registry.loadGrammar("source.spec");
}

function tokenize(grammar, text) {
  const tokens = [];
  let stack = textmate.INITIAL;
  text.split(/\r?\n/).forEach((line, index) => {
    const result = grammar.tokenizeLine(line, stack);
    for (const token of result.tokens) {
      const end = Math.min(token.endIndex, line.length);
      if (end > token.startIndex) {
        tokens.push([index + 1, token.startIndex, end, line.slice(token.startIndex, end), token.scopes]);
      }
    }
    stack = result.ruleStack;
  });
  return tokens;
}

async function main(files) {
  if (files.length === 0) {
    process.stderr.write("usage: node test/tokenize.js FILE.spec...\n");
    process.exit(2);
  }
  const grammar = await loadGrammar();
  const out = {};
  for (const file of files) {
    out[file] = tokenize(grammar, fs.readFileSync(file, "utf8"));
  }
  process.stdout.write(JSON.stringify(out));
}

main(process.argv.slice(2)).catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
