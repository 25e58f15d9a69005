#!/usr/bin/env node
// Runs src/extension.js against stand-ins for the `vscode` API and the language client
// (VS Code itself cannot run here), and prints what the extension did as JSON:
// the server command lines it started, the commands it registered, the errors it showed.
// tests/editors/test_textmate.py checks the result.
"use strict";

const Module = require("module");

const settings = JSON.parse(process.argv[2] || "{}");
const failStart = process.argv[3] === "fail";
const record = { started: [], stopped: 0, commands: [], errors: [], selectors: [] };
let configurationListener;

const vscode = {
  workspace: {
    workspaceFolders: [{ uri: { fsPath: "/home/me/project" } }],
    getConfiguration: (section) => ({
      get: (key, fallback) => (`${section}.${key}` in settings ? settings[`${section}.${key}`] : fallback),
    }),
    onDidChangeConfiguration: (listener) => {
      configurationListener = listener;
      return { dispose() {} };
    },
  },
  commands: {
    registerCommand: (name, callback) => {
      record.commands.push(name);
      vscode.commands[name] = callback;
      return { dispose() {} };
    },
    executeCommand: async () => undefined,
  },
  window: { showErrorMessage: async (message) => void record.errors.push(message) },
};

class LanguageClient {
  constructor(id, name, server, client) {
    this.server = server;
    record.selectors = client.documentSelector;
  }
  async start() {
    record.started.push({ command: this.server.command, args: this.server.args, transport: this.server.transport });
    if (failStart) throw new Error("spawn specc ENOENT");
  }
  async stop() {
    record.stopped += 1;
  }
}

const stubs = { vscode, "vscode-languageclient/node": { LanguageClient, TransportKind: { stdio: 0 } } };
const load = Module._load;
Module._load = function (request, ...rest) {
  return request in stubs ? stubs[request] : load.call(this, request, ...rest);
};

(async () => {
  const extension = require("../src/extension.js");
  await extension.activate({ subscriptions: [] });
  if (!failStart) {
    await vscode.commands["specc.restartServer"]();
    await configurationListener({ affectsConfiguration: (key) => key === "specc.serverPath" });
    await new Promise((resolve) => setImmediate(resolve));
    await configurationListener({ affectsConfiguration: () => false });
    await extension.deactivate();
  }
  process.stdout.write(JSON.stringify(record));
})().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
