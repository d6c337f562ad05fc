#!/usr/bin/env bash
# `npm test`: every suite in order, against real tools. A failed suite does not stop the run;
# the summary at the end says which failed, names every skipped test with how it was skipped, and
# counts product tests apart from the smolvm stand-in's own tests (test:sim). It closes with the
# plain line "N passed, N failed, N skipped" over all suites, stand-in tests included.
# Exits non-zero if any suite failed, ran 0 tests, or skipped a test it did not name.
# BOT_BOTTLE_SUITE_TIMEOUT (seconds, default 1800): a suite still running then is stopped and failed.
# BOT_BOTTLE_SUITES="lint test:e2e": run only those suites.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

# Every program the suites run, as `program-or-path:Debian package` (.ci/run installs them; this
# script does not). A path is one the tests use as it is. A missing one stops the run here, named.
# Docker's client has no Debian 12 package of its own (docker.io is the whole engine): "-".
tools=(
  podman:podman runc:runc docker:- skopeo:skopeo /usr/bin/docker-registry:docker-registry
  "${BOT_BOTTLE_CHROMIUM:-/usr/bin/chromium}:chromium" /bin/busybox:busybox-static
  tar:tar gzip:gzip zstd:zstd unshare:util-linux mount:mount umount:mount chroot:coreutils cp:coreutils
  chown:coreutils ldd:libc-bin ps:procps pgrep:procps npm:npm
)
missing=(); packages=()
for entry in "${tools[@]}"; do
  tool="${entry%:*}"; package="${entry##*:}"
  if [[ "$tool" == /* ]]; then [ -x "$tool" ] && continue; else command -v "$tool" >/dev/null 2>&1 && continue; fi
  missing+=("$tool")
  [ "$package" = - ] || packages+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "npm test: MISSING tools the tests need: ${missing[*]}" >&2
  [ "${#packages[@]}" -eq 0 ] || echo "  install them with: apt-get install -y --no-install-recommends ${packages[*]}" >&2
  [[ " ${missing[*]} " != *" docker "* ]] || echo "  docker: the tests need Docker's client on PATH (they give it an engine: podman)" >&2
  echo "  (.ci/run installs the Debian packages, then runs npm ci && npm test)" >&2
  exit 1
fi

# A real VS Code for the extension and UI tests: Node 24 + code-server, cached in .vscode-test/.
if ! bash scripts/install-code-server.sh; then
  echo "npm test: installing code-server failed (see above)" >&2
  exit 1
fi

# BOT_BOTTLE_SUITES="test:extension test:e2e" runs only those (default: all, in this order).
read -r -a suites <<<"${BOT_BOTTLE_SUITES:-lint typecheck test:unit test:sim test:integration test:extension test:e2e}"
logs="$(mktemp -d "${TMPDIR:-/tmp}/bb-test-all-XXXXXX")"
trap 'rm -rf "$logs"' EXIT
declare -A passed failed skipped seconds status
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
  p="-"; f="-"; k="-"; tally=""
  if [ "$suite" != lint ] && [ "$suite" != typecheck ]; then
    # test/support/skips.ts, the reporter of every test suite, names each skipped test on a line of
    # its own and ends with "tally: N passed, N failed, N skipped".
    tally="$(grep -E '^[[:space:]]*tally: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' <<<"$clean" | tail -n 1)"
    read -r p f k < <(sed -E 's/.*tally: ([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped/\1 \2 \3/' <<<"${tally:-tally: 0 passed, 0 failed, 0 skipped}")
    grep -E '^[[:space:]]*SKIPPED ' <<<"$clean" | sed -E -e 's/^[[:space:]]*SKIPPED //' -e "s|\($root/|(|" >"$logs/${suite//:/_}.skipped"
  fi
  passed[$suite]=$p; failed[$suite]=$f; skipped[$suite]=$k
  named="$( [ "$p" = "-" ] && echo 0 || wc -l <"$logs/${suite//:/_}.skipped")"
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    status[$suite]="FAILED (timed out)"; overall=1
  elif [ "$rc" -ne 0 ]; then
    status[$suite]="FAILED (exit $rc)"; overall=1
  elif [ "$p" != "-" ] && [ -z "$tally" ]; then
    status[$suite]="FAILED (no tally: its reporter must be test/support/spec-with-skips.cjs)"; overall=1
  elif [ "$p" != "-" ] && [ "$p" -eq 0 ]; then
    status[$suite]="FAILED (0 tests ran)"; overall=1
  elif [ "$k" != "-" ] && [ "$k" -ne "$named" ]; then
    status[$suite]="FAILED ($k skipped, $named named)"; overall=1
  else
    status[$suite]="ok"
  fi
done

# Whose tests a suite holds: the product's, or the smolvm stand-in's own (test/sim, not the product).
kind_of() {
  case "$1" in
    lint|typecheck) echo "-" ;;
    test:sim) echo "stand-in" ;;
    *) echo "product" ;;
  esac
}

row() { printf '%-18s %-9s %7s %7s %8s %9s  %s\n' "$@"; }

echo
echo "================================== summary =================================="
row suite tests passed failed skipped seconds result
declare -A kind_passed=([product]=0 [stand-in]=0) kind_failed=([product]=0 [stand-in]=0) kind_skipped=([product]=0 [stand-in]=0)
for suite in "${suites[@]}"; do
  kind="$(kind_of "$suite")"
  row "$suite" "$kind" "${passed[$suite]}" "${failed[$suite]}" "${skipped[$suite]}" "${seconds[$suite]}" "${status[$suite]}"
  [ "${passed[$suite]}" = "-" ] && continue
  kind_passed[$kind]=$(( ${kind_passed[$kind]} + ${passed[$suite]} ))
  kind_failed[$kind]=$(( ${kind_failed[$kind]} + ${failed[$suite]} ))
  kind_skipped[$kind]=$(( ${kind_skipped[$kind]} + ${skipped[$suite]} ))
done
echo "-----------------------------------------------------------------------------"
for kind in product stand-in; do
  printf '%-28s %7s %7s %8s\n' "$kind tests" "${kind_passed[$kind]}" "${kind_failed[$kind]}" "${kind_skipped[$kind]}"
done

echo
echo "skipped tests, by suite (and how each was skipped):"
for suite in "${suites[@]}"; do
  [ "${passed[$suite]}" = "-" ] && continue
  named="$(wc -l <"$logs/${suite//:/_}.skipped")"
  if [ "${skipped[$suite]}" -ne "$named" ]; then
    echo "  $suite: ${skipped[$suite]} skipped, but $named named (see its output above)"
  elif [ "$named" -eq 0 ]; then
    echo "  $suite: none"
    continue
  else
    echo "  $suite:"
  fi
  sed 's/^/    - /' "$logs/${suite//:/_}.skipped"
done

echo
if [ "$overall" -ne 0 ]; then
  echo "npm test: FAILED"
else
  echo "npm test: all suites passed"
fi
# The plain closing line CI reads: every test of every suite, the stand-in's own included.
total_passed=$(( ${kind_passed[product]} + ${kind_passed[stand-in]} ))
total_failed=$(( ${kind_failed[product]} + ${kind_failed[stand-in]} ))
total_skipped=$(( ${kind_skipped[product]} + ${kind_skipped[stand-in]} ))
echo "$total_passed passed, $total_failed failed, $total_skipped skipped"
exit "$overall"
