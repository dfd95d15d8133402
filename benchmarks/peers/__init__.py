"""What a user would otherwise pick, as targets of ``benchmarks/bench_stores.py``.

Each module wraps one peer's session persistence in the benchmark's target
interface (see ``bench_stores.Target`` and ``bench_stores.Backend``). The peers
are installed only in the benchmark's own venv, never as a dependency of
orra-di: ``benchmarks/peers/requirements.txt`` and ``benchmarks/README.md``.
"""
