#!/usr/bin/env bash
# `npm start`: the extension, packaged as users get it, in a real VS Code (code-server) on this
# machine. Prints the URL to open; runs until Ctrl-C, then stops code-server.
#   PORT=8080 (default; another free port if taken)   HOST=127.0.0.1 (default)
# Everything lives in .vscode-test/start/ (extensions, user data, demo workspace, stand-in data).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
start="$root/.vscode-test/start"

[ -d node_modules ] || npm ci
bash scripts/install-code-server.sh
node scripts/build.mjs --tests          # the extension, the smolvm stand-in and this harness
npm run --silent package                # dist-vsix/bot-bottle.vsix, as users install it

workspace="$start/workspace"
mkdir -p "$workspace" "$start/extensions" "$start/user-data"
[ -f "$workspace/README.md" ] || printf '# Bot Bottle demo workspace\n\nThe Bot Bottle view is in the activity bar.\n' > "$workspace/README.md"

if command -v smolvm >/dev/null 2>&1; then
  echo "Using smolvm from PATH: $(command -v smolvm)"
  settings='{"botBottle.paths.smolvm": ""}'
else
  echo "smolvm not found on PATH: using the test stand-in with two demo bottles"
  export SMOLVM_DATA_DIR="$start/smolvm-data"
  export PATH="$root/test/sim/bin:$PATH"
  mkdir -p "$SMOLVM_DATA_DIR"
  # Creates and starts bot-bottle-demo-api and bot-bottle-demo-docs (idempotent).
  if [ -f out/sim/smolvm.cjs ]; then
    node out/sim/smolvm.cjs sim demo
  else
    echo "WARNING: out/sim/smolvm.cjs is missing (test/sim not built?): no demo bottles" >&2
  fi
  settings="$(node -e 'console.log(JSON.stringify({"botBottle.paths.smolvm": process.argv[1]}))' "$root/test/sim/bin/smolvm")"
fi

# serve.cjs runs in the foreground: Ctrl-C reaches it, and it stops code-server's process group.
exec node out/test/vscode/serve.cjs \
  --folder "$workspace" \
  --extensions-dir "$start/extensions" \
  --user-data-dir "$start/user-data" \
  --install-vsix dist-vsix/bot-bottle.vsix \
  --settings "$settings" \
  --host "${HOST:-127.0.0.1}" \
  --port "${PORT:-8080}"
