#!/usr/bin/env bash
# Mutation testing of the modules where a silent bug costs most. Run by hand, never in CI.
#
#   scripts/mutation.sh            # mutate, test, print the kill rate per module
#   scripts/mutation.sh report     # print the report of the last run again
#   scripts/mutation.sh survivors  # re-check only the last run's survivors (after new tests)
#   JOBS=1 scripts/mutation.sh     # fewer test processes at once (default 2)
#   ALL=1 scripts/mutation.sh      # also the rest of sqlite.py (slow; not in the target)
#   HANG=120 scripts/mutation.sh   # wall-clock seconds before a silent mutant is timed out
#
# What is mutated and which tests run: [tool.mutmut] in pyproject.toml. See scripts/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
MUTMUT="$(dirname "$(command -v "$PY")")/mutmut"
[ -x "$MUTMUT" ] || MUTMUT=mutmut
# mutmut puts its mutated copy (./mutants) first on sys.path itself: a PYTHONPATH pointing at
# the real tree would test the unmutated code. CI would make service tests mandatory (slow).
unset PYTHONPATH CI
if [ "${1:-run}" != report ]; then
    names=()
    if [ "${1:-run}" = survivors ]; then
        mapfile -t names < <("$MUTMUT" results --all true | "$PY" scripts/mutation_report.py --survivors)
        [ "${#names[@]}" -gt 0 ] || { echo "no survivors to re-check"; exit 0; }
    elif [ -z "${ALL:-}" ]; then
        mapfile -t names < <("$PY" scripts/mutation_report.py --globs)
    fi
    nice -n 19 "$MUTMUT" run --max-children "${JOBS:-2}" "${names[@]}" &
    mutmut_pid=$!
    # mutmut's timeout counts CPU seconds, so a mutant that makes a test wait forever (a
    # lease never released, a shielded await) would hang the run. Give such a mutant
    # mutmut's own timeout signal after HANG seconds of wall time: it counts as a timeout.
    while kill -0 "$mutmut_pid" 2>/dev/null; do
        for child in $(pgrep -P "$mutmut_pid" || true); do
            read -r age title < <(ps -o etimes=,args= -p "$child" 2>/dev/null || true)
            if [[ "${title:-}" == "mutmut: "* && "${age:-0}" -gt "${HANG:-300}" ]]; then
                echo "no end after ${age}s, timed out: ${title#mutmut: }" >&2
                kill -XCPU "$child" 2>/dev/null || true
            fi
        done
        sleep 10
    done
    wait "$mutmut_pid"
fi
"$MUTMUT" results --all true | "$PY" scripts/mutation_report.py
