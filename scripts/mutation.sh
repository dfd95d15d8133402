#!/usr/bin/env bash
# Mutation testing of the modules where a silent bug costs most. Run by hand, never in CI.
#
#   scripts/mutation.sh            # mutate, test, print the kill rate per module
#   scripts/mutation.sh report     # print the report of the last run again
#   JOBS=1 scripts/mutation.sh     # fewer test processes at once (default 2)
#   ALL=1 scripts/mutation.sh      # also the rest of sqlite.py (slow; not in the target)
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
    if [ -z "${ALL:-}" ]; then
        mapfile -t names < <("$PY" scripts/mutation_report.py --globs)
    fi
    nice -n 19 "$MUTMUT" run --max-children "${JOBS:-2}" "${names[@]}"
fi
"$MUTMUT" results --all true | "$PY" scripts/mutation_report.py
