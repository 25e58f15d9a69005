// The specc VS Code extension: .spec highlighting comes from the TextMate grammar
// (package.json contributes it); everything else (diagnostics, hover, inlay hints,
// completion, definitions, symbols, formatting, code actions) comes from the
// language server `specc lsp`, which this client starts over stdio.
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

// `${workspaceFolder}` in the settings: the first folder open, so that
// "${workspaceFolder}/.venv/bin/specc" finds a project's virtual environment.
function expand(value) {
  const folders = vscode.workspace.workspaceFolders;
  return folders && folders.length ? value.split("${workspaceFolder}").join(folders[0].uri.fsPath) : value;
}

function serverOptions() {
  const settings = vscode.workspace.getConfiguration("specc");
  const command = expand(settings.get("serverPath", "specc"));
  const args = settings.get("serverArgs", ["lsp"]).map(expand);
  return { command, args, transport: TransportKind.stdio };
}

async function start() {
  const options = serverOptions();
  client = new LanguageClient("specc", "specc", options, {
    documentSelector: [
      { scheme: "file", language: "spec" },
      { scheme: "untitled", language: "spec" },
    ],
  });
  try {
    await client.start();
  } catch (error) {
    client = undefined;
    const action = await vscode.window.showErrorMessage(
      `specc: could not start the language server \`${options.command} ${options.args.join(" ")}\` ` +
        `(${error.message || error}). Install it (pip install 'specc[lsp]') or set specc.serverPath.`,
      "Open settings",
    );
    if (action === "Open settings") {
      await vscode.commands.executeCommand("workbench.action.openSettings", "specc.server");
    }
  }
}

async function stop() {
  if (client) {
    const running = client;
    client = undefined;
    await running.stop();
  }
}

async function restart() {
  await stop();
  await start();
}

async function activate(context) {
  context.subscriptions.push(
    vscode.commands.registerCommand("specc.restartServer", restart),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration("specc.serverPath") || event.affectsConfiguration("specc.serverArgs")) {
        restart();
      }
    }),
  );
  await start();
}

function deactivate() {
  return stop();
}

module.exports = { activate, deactivate };
