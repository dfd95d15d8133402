"""Kill rate per module from a mutmut run, and the survivors to read.

    mutmut results --all true | python scripts/mutation_report.py
    python scripts/mutation_report.py --globs   # the mutant names scripts/mutation.sh runs
    mutmut results --all true | python scripts/mutation_report.py --survivors

mutmut names a mutant ``orra_di.<module>.x_<function>__mutmut_<n>`` (a method is
``xǁ<Class>ǁ<method>``). This groups them by module, counts killed (a test failed, or
the mutant ran past its timeout) against everything mutated, and lists the survivors
by module so that each can be read (``mutmut show <name>``) and either killed by a
test or recorded as equivalent in scripts/README.md.

Only the lease and fencing code of ``orra_di/stores/sqlite.py`` is in the target
(:data:`SQLITE_LEASE`): ``scripts/mutation.sh`` runs only those of its mutants
(:func:`target_globs`). The rest of that module is run with ``ALL=1`` and then
reported on its own line, for information: it is the store conformance suite's business.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field

KILLED = {"killed", "timeout", "segfault", "caught by type check"}
"""Statuses that mean a test (or the timeout) noticed the mutant.

mutmut reports a mutant process that died of SIGKILL as a "segfault": that is its
own kill of a mutant that ignored the timeout signal, so it counts as a timeout."""

NOT_RUN = {"skipped", "not checked"}
"""Statuses that say nothing about the tests: left out of the rate."""

SQLITE_LEASE = {
    "lock",
    "_hold",
    "_fence",
    "_same_session",
    "_wrote",
    "_is_busy",
    "_run_waiting",
    "_writing",
}
"""The functions of sqlite.py that take, renew, fence and release the session lock."""

TARGET = 0.90
"""The kill rate aimed at on every module of the target."""

TARGET_MODULES = (
    "runtime",
    "policy",
    "context",
    "redaction",
    "delegation",
    "providers.resilience",
    "stores._codec",
    "stores._locks",
)
"""The modules mutated whole (sqlite.py is mutated only in :data:`SQLITE_LEASE`)."""


def target_globs() -> list[str]:
    """``mutmut run`` name patterns for the target: the rest of sqlite.py is not run."""
    globs = [f"orra_di.{module}.*" for module in TARGET_MODULES]
    for func in sorted(SQLITE_LEASE):
        globs.append(f"orra_di.stores.sqlite.x_{func}__mutmut_*")
        globs.append(f"orra_di.stores.sqlite.xǁSQLiteStoreǁ{func}__mutmut_*")
    return globs


_NAME = re.compile(r"^(?P<module>[\w.]+)\.x(?:ǁ(?P<cls>\w+)ǁ|_)(?P<func>\w+?)__mutmut_\d+$")


@dataclass
class Tally:
    """Mutants of one module (or one part of it) by outcome."""

    killed: int = 0
    survived: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.killed + len(self.survived)

    @property
    def rate(self) -> float:
        return self.killed / self.total if self.total else 1.0


def group(name: str) -> str:
    """The report line a mutant belongs to: its module, sqlite.py split in two."""
    match = _NAME.match(name)
    if match is None:
        return name.rsplit("__mutmut_", 1)[0]
    module = match["module"]
    if module == "orra_di.stores.sqlite":
        lease = match["func"] in SQLITE_LEASE
        return module + (" (lease/fence)" if lease else " (rest, not targeted)")
    return module


def tally(lines: list[str]) -> dict[str, Tally]:
    """Count ``name: status`` lines as printed by ``mutmut results --all true``."""
    tallies: dict[str, Tally] = defaultdict(Tally)
    for line in lines:
        name, sep, status = line.strip().rpartition(": ")
        if not sep or status in NOT_RUN:
            continue
        if status == "no tests" and "not targeted" in group(name):
            continue  # assigned without a run: says nothing unless ALL=1 ran that part
        if status in KILLED:
            tallies[group(name)].killed += 1
        else:
            tallies[group(name)].survived.append(f"{name} ({status})")
    return dict(tallies)


def main() -> int:
    if sys.argv[1:] == ["--globs"]:
        print("\n".join(target_globs()))
        return 0
    if sys.argv[1:] == ["--survivors"]:  # names to re-check after writing tests
        for module, counts in tally(sys.stdin.read().splitlines()).items():
            if "not targeted" not in module:
                for name in counts.survived:
                    print(name.split(" (")[0])
        return 0
    tallies = tally(sys.stdin.read().splitlines())
    if not tallies:
        print("no mutant results: run `mutmut run` first", file=sys.stderr)
        return 1
    width = max(len(module) for module in tallies)
    print(f"{'module':<{width}}  killed / total   rate")
    targeted = Tally()
    for module, counts in sorted(tallies.items()):
        print(f"{module:<{width}}  {counts.killed:>6} / {counts.total:<6}  {counts.rate:6.1%}")
        if "not targeted" not in module:
            targeted.killed += counts.killed
            targeted.survived += counts.survived
    print(
        f"{'target overall':<{width}}  {targeted.killed:>6} / {targeted.total:<6}  "
        f"{targeted.rate:6.1%}  (aim: {TARGET:.0%})"
    )
    for module, counts in sorted(tallies.items()):
        if counts.survived and "not targeted" not in module:
            print(f"\nsurvivors in {module}:")
            for name in counts.survived:
                print(f"  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
