#!/usr/bin/env bash
# `npm test`: every suite in order, against real tools. A failed suite does not stop the run;
# the summary at the end says which failed. Exits non-zero if any suite failed or ran 0 tests.
# BOT_BOTTLE_SUITE_TIMEOUT (seconds, default 1800): a suite still running then is stopped and failed.
# BOT_BOTTLE_SUITES="lint test:e2e": run only those suites.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

# The Debian tools the tests drive for real (.ci/run installs them; this script does not).
missing=()
for tool in chromium docker-registry skopeo podman tar gzip; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "npm test: MISSING tools the tests need: ${missing[*]}" >&2
  echo "  install them with: apt-get install -y --no-install-recommends docker-registry skopeo podman buildah runc uidmap catatonit fuse-overlayfs busybox-static chromium libkrb5-dev" >&2
  echo "  (or run .ci/run, which does that and then npm ci && npm test)" >&2
  exit 1
fi

# A real VS Code for the extension and UI tests: Node 24 + code-server, cached in .vscode-test/.
if ! bash scripts/install-code-server.sh; then
  echo "npm test: installing code-server failed (see above)" >&2
  exit 1
fi

# BOT_BOTTLE_SUITES="test:extension test:e2e" runs only those (default: all, in this order).
read -r -a suites <<<"${BOT_BOTTLE_SUITES:-lint typecheck test:unit test:integration test:extension test:e2e}"
logs="$(mktemp -d "${TMPDIR:-/tmp}/bb-test-all-XXXXXX")"
trap 'rm -rf "$logs"' EXIT
declare -A passed failed seconds status
overall=0
limit="${BOT_BOTTLE_SUITE_TIMEOUT:-1800}"
log=""
interrupted() {
  if [ -n "$log" ] && [ -f "$log.pid" ]; then
    kill -TERM "$(cat "$log.pid")" 2>/dev/null
    sleep 2
  fi
  echo
  echo "npm test: interrupted"
  exit 130
}
trap interrupted INT TERM

for suite in "${suites[@]}"; do
  echo
  echo "=============================== npm run $suite ==============================="
  log="$logs/${suite//:/_}.log"
  start=$(date +%s.%N)
  # In the background so that Ctrl-C (trapped above) can stop it: timeout runs the suite in its
  # own process group and signals that whole group, so a hung child cannot hold up the run.
  (
    timeout --kill-after=30 "$limit" npm run --silent "$suite" 2>&1 &
    echo $! > "$log.pid"
    wait $!
    echo $? > "$log.rc"
  ) | tee "$log" &
  wait $!
  rc="$(cat "$log.rc" 2>/dev/null || echo 1)"
  rm -f "$log.pid"
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "npm test: $suite did not finish within $limit s: stopped" | tee -a "$log"
  fi
  seconds[$suite]=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
  clean="$(sed -e 's/\x1b\[[0-9;]*m//g' "$log")"
  p="-"; f="-"
  case "$suite" in
    lint|typecheck) ;;  # no test counts
    test:extension)
      # The in-host runner ends with "N passed, N failed".
      line="$(grep -E '^[[:space:]]*[0-9]+ passed, [0-9]+ failed' <<<"$clean" | tail -n 1)"
      p=0; f=0
      if [ -n "$line" ]; then
        p="$(sed -E 's/^[[:space:]]*([0-9]+) passed.*/\1/' <<<"$line")"
        f="$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")"
      fi ;;
    *)
      # mocha's reporter: "  N passing (2s)", "  N failing"
      p="$(grep -E '^[[:space:]]*[0-9]+ passing' <<<"$clean" | tail -n 1 | awk '{print $1}')"
      f="$(grep -E '^[[:space:]]*[0-9]+ failing' <<<"$clean" | tail -n 1 | awk '{print $1}')"
      [ -n "$p" ] || p=0
      [ -n "$f" ] || f=0 ;;
  esac
  passed[$suite]=$p; failed[$suite]=$f
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    status[$suite]="FAILED (timed out)"; overall=1
  elif [ "$rc" -ne 0 ]; then
    status[$suite]="FAILED (exit $rc)"; overall=1
  elif [ "$p" != "-" ] && [ "${p:-0}" -eq 0 ]; then
    status[$suite]="FAILED (0 tests ran)"; overall=1
  else
    status[$suite]="ok"
  fi
done

echo
echo "================================== summary =================================="
printf '%-18s %8s %8s %9s  %s\n' suite passed failed seconds result
for suite in "${suites[@]}"; do
  printf '%-18s %8s %8s %9s  %s\n' "$suite" "${passed[$suite]}" "${failed[$suite]}" "${seconds[$suite]}" "${status[$suite]}"
done
total_passed=0; total_failed=0
for suite in "${suites[@]}"; do
  [ "${passed[$suite]}" = "-" ] || total_passed=$((total_passed + ${passed[$suite]:-0}))
  [ "${failed[$suite]}" = "-" ] || total_failed=$((total_failed + ${failed[$suite]:-0}))
done
if [ "$overall" -ne 0 ]; then
  echo "npm test: FAILED"
else
  echo "npm test: all suites passed"
fi
# The plain closing line CI reads: every test of every suite.
echo "$total_passed passed, $total_failed failed"
exit "$overall"
