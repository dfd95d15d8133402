"""The ``exec`` tool: run a program the settings allow, without a shell, in a process group.

orra ran ``sh -c <command>`` and checked only the first word against its
allowlist, so ``ls; rm -rf /`` passed, and its timeout left the child running
(spec §5.6/25). Here:

- the command line is split with :func:`shlex.split` and run directly: ``;``,
  ``|``, ``$(...)`` and globs are plain characters handed to the program;
- the program is looked up on the command's ``PATH`` and compared with the
  allowlist by path (directory symlinks resolved, the file's own name kept, so
  allowing ``ls`` does not allow a ``./ls`` of the working directory, nor another
  name of a multi-call binary);
- with ``confine_paths``, an argument that names a path outside the working
  directory (``/etc/passwd``, ``../..``, ``--file=/x``, ``-f/x``, ``if=/x``, ``@/x``,
  ``file:///x``) is refused;
- the command gets only the environment variables ``env_allow`` names (the
  server's API keys stay out) plus ``env``;
- it runs in a new process group, killed whole on timeout, on cancellation, and
  when the program exits leaving background processes;
- output is cut on characters, with a marker; bytes that are not UTF-8 become U+FFFD.

``shell = true`` (which needs ``allow_any``) runs ``/bin/sh -c`` instead, for
those who want pipes and accept that nothing is checked.
"""

# No ``from __future__ import annotations``: the tools' parameters are annotated with
# values known only when the tool is built, which postponed annotations could not see.

import os
import shlex
import shutil
from pathlib import Path
from typing import Annotated

from pydantic import Field

from orra_di.errors import ToolExecutionError, ToolInputError
from orra_di.run_context import maybe_current_run
from orra_di.tool import FunctionTool, tool
from orra_di.tools._process import run_process
from orra_di.tools._text import clean, decode
from orra_di.tools.settings import ExecSettings

__all__ = ["directory_for", "exec_tool", "resolve_program"]

_SESSION_DIRECTORY = "working_directory"  # the working-directory hook's state key


def _by_path(path: str) -> str:
    """``path`` absolute, with the symlinks of its directories resolved but not of itself."""
    absolute = os.path.abspath(path)
    return os.path.join(os.path.realpath(os.path.dirname(absolute)), os.path.basename(absolute))


def resolve_program(name: str, search_path: str, cwd: str) -> str | None:
    """Where ``name`` runs from: a path (relative to ``cwd``) or a name found on
    ``search_path``; ``None`` if there is no such executable."""
    if "/" in name:
        candidate = os.path.join(cwd, name)
        return _by_path(candidate) if os.access(candidate, os.X_OK) else None
    found = shutil.which(name, path=search_path)
    return _by_path(found) if found else None


def _session_directory() -> str | None:
    run = maybe_current_run()
    value = run.state(_SESSION_DIRECTORY) if run is not None else None
    return value if isinstance(value, str) else None


def directory_for(
    requested: str | None, default: str | None = None, *, root: str | None = None
) -> str:
    """The directory a call runs in: the call's (relative to the session's), else the
    session's, else ``default``, else ``root``, else the server's own; it must be inside
    ``root`` when one is given."""
    base = _session_directory() or default or root or os.getcwd()
    path = Path(base, requested).expanduser() if requested else Path(base)
    if not path.is_dir():
        what = "is not a directory" if path.exists() else "does not exist"
        raise ToolInputError(f"working directory {path} {what}")
    resolved = path.resolve()
    if root is not None:
        bound = Path(root).expanduser().resolve()
        if resolved != bound and bound not in resolved.parents:
            raise ToolInputError(
                f"working directory {resolved} is outside {bound}, where commands must run"
            )
    return str(resolved)


def _file_url_path(url: str) -> str:
    """The path a ``file:`` URL names (``file:///etc/passwd``, ``file://host/x``: ``/x``)."""
    from urllib.parse import unquote, urlsplit

    return unquote(urlsplit(url).path) or "/"


def _outside(argument: str, cwd: str) -> bool:
    """True when ``argument`` (or the value of ``--opt=value``, ``key=value`` as dd takes,
    ``@file`` as curl takes, the path of a ``file:`` URL) names a path outside ``cwd``."""
    values = [argument]
    if "=" in argument:
        values.append(argument.split("=", 1)[1])
    values += [v[1:] for v in values if v.startswith("@")]
    # a file URL names a path too (git clone file:///srv/repo, curl file:///etc/passwd)
    values += [_file_url_path(v) for v in values if v[:5].lower() == "file:"]
    if argument.startswith("-") and not argument.startswith("--"):
        # a short option with its value attached: -f/etc/passwd, -C/etc, -I../..
        starts = [i for i in (argument.find("/"), argument.find(".")) if i > 0]
        if starts:
            values.append(argument[min(starts) :])
    for value in values:
        if "/" not in value and value != "..":
            continue
        target = Path(cwd, value).resolve()
        if target != Path(cwd) and Path(cwd) not in target.parents:
            return True
    return False


def command_environment(settings: ExecSettings) -> dict[str, str]:
    """The environment a command gets: the allowed variables of the server's, and ``env``."""
    env = {name: os.environ[name] for name in settings.env_allow if name in os.environ}
    env.update({name: value.get_secret_value() for name, value in settings.env.items()})
    env.setdefault("PATH", os.defpath)
    return env


def _format(stdout: str, stderr: str, returncode: int | None, cap: int, cut: bool) -> str:
    text = stdout
    if stderr:
        text += ("\n" if text else "") + "[stderr]\n" + stderr
    text = clean(text) or "(no output)"
    if len(text) > cap or cut:
        text = text[:cap] + f"\n[output truncated at {cap} characters]"
    if returncode:
        text += f"\n[exit code: {returncode}]"
    return text


def exec_tool(settings: ExecSettings) -> FunctionTool:
    """The ``exec`` tool configured by ``settings`` (``tools.exec``)."""
    allowed_names = ", ".join(settings.allow)
    description = (
        "Run a command and return its output (stdout, then stderr, then the exit code)."
        + (
            " It runs through /bin/sh."
            if settings.shell
            else " No shell: pipes, redirections, ; and $(...) are not interpreted."
        )
        + (
            f" Allowed commands: {allowed_names}."
            if settings.allow and not settings.allow_any
            else ""
        )
    )
    cap = settings.max_output_chars

    @tool(name="exec", description=description)
    async def exec_command(
        command: Annotated[
            str,
            Field(
                description="The command line: a program and its arguments",
                examples=[f"{settings.allow[0]} --help" if settings.allow else "ls"],
            ),
        ],
        timeout_secs: Annotated[
            float | None,
            Field(
                description=f"Timeout in seconds (default: {settings.timeout:g}, "
                f"max: {settings.max_timeout:g})",
                gt=0,
            ),
        ] = None,
        working_directory: Annotated[
            str | None, Field(description="Directory to run in (default: the session's)")
        ] = None,
    ) -> str:
        if not command.strip():
            raise ToolInputError("missing 'command'")
        cwd = directory_for(working_directory, root=settings.root)
        env = command_environment(settings)
        if settings.shell:
            argv = ["/bin/sh", "-c", command]
        else:
            try:
                argv = shlex.split(command)
            except ValueError as exc:
                raise ToolInputError(f"cannot split the command line: {exc}") from None
            program = resolve_program(argv[0], env["PATH"], cwd)
            if not settings.allow_any:
                allowed = {resolve_program(name, env["PATH"], cwd) for name in settings.allow} - {
                    None
                }
                if program is None or program not in allowed:
                    raise ToolInputError(
                        f"command {argv[0]!r} is not in the allowed list: [{allowed_names}]"
                    )
            if program is None:
                raise ToolInputError(f"command {argv[0]!r} not found on PATH")
            if settings.confine_paths:
                for argument in argv[1:]:
                    if _outside(argument, cwd):
                        raise ToolInputError(
                            f"argument {argument!r} points outside the working directory "
                            f"{cwd}; use paths inside it"
                        )
            argv[0] = program
        limit = min(timeout_secs or settings.timeout, settings.max_timeout)
        try:
            outcome = await run_process(
                argv, cwd=cwd, env=env, timeout=limit, max_bytes=cap * 4 + 4
            )
        except OSError as exc:
            raise ToolExecutionError(f"failed to run command: {exc}") from None
        if outcome.timed_out:
            raise ToolExecutionError(
                f"command timed out after {limit:g} seconds (it and its children were killed)"
            )
        stdout, stderr = decode(outcome.stdout), decode(outcome.stderr)
        return _format(stdout, stderr, outcome.returncode, cap, outcome.cut)

    return exec_command
