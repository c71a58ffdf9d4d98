"""The `fpdm-bench` command line: the top-level group and the one error boundary (:func:`entry`).

Every command lives in its own module under :mod:`fpdm_bench.commands` and is found through the
``fpdm_bench.commands`` entry-point group (pyproject.toml), the same way a plug-in package adds its
own (the reference FPDM's train / eval / fpdm groups, a baseline's tools); a command is imported only
when it is used. Every option of `run` can also come from a YAML file (`--config run.yaml`).
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from fpdm_bench import __version__
from fpdm_bench.commands.lazy import LazyGroup
from fpdm_bench.errors import BenchError
from fpdm_bench.registry import UnknownName


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             entry_point_group="fpdm_bench.commands")
@click.version_option(__version__, prog_name="fpdm-bench")
@click.option("--debug", is_flag=True, help="Show the traceback of an unexpected error (a bug) instead of one line.")
def main(debug):
    """fpdm-bench: run and score pose-guided person image synthesis models on the same pairs.

    \b
    Quick start (embedded synthetic data, made on first use, offline):
      fpdm-bench run --model keypoint-warp --dataset synthetic --out runs/kw
      fpdm-bench report runs/kw

    \b
    Exit status: 0 done; 1 compare found a regression, or an unexpected error (a bug: one line,
    the traceback with --debug); 2 a bad option, input or file, disk full, no CUDA, ... (one line
    "error: ..."); 130 interrupted. An interrupted or failed run resumes when rerun.
    """
    _STATE["debug"] = debug


_STATE = {"debug": False}  # set by main(); entry() reads it once the command has failed


def _file_of(e: BaseException) -> str | None:
    """The file an I/O or decoding error is about: its own filename, else the innermost ``path`` (or
    ``file``/``filename``) of the frames it came through, since a failed write() or decode() names none."""
    name = getattr(e, "filename", None)
    if name:
        return str(name)
    tb, found = e.__traceback__, None
    while tb is not None:
        for var in ("path", "filename", "file"):
            v = tb.tb_frame.f_locals.get(var)
            if isinstance(v, (str, Path)) and str(v):
                found = str(v)
                break
        tb = tb.tb_next
    return found


def expected_error(e: BaseException) -> str | None:
    """The one-line message of a failure the user can fix (disk full, permissions, encodings, no
    CUDA); None for anything else, which is a bug and keeps its traceback under --debug."""
    import errno

    if isinstance(e, (BenchError, UnknownName)):
        return str(e)
    if isinstance(e, OSError):
        where = _file_of(e)
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            return (f"disk full: no space left writing {where or 'a file'}; free space and rerun the same command "
                    "(a run folder resumes where it stopped)")
        if isinstance(e, PermissionError):
            return f"permission denied: {where or e}; check the folder's permissions or choose another path"
        return f"{e.strerror or e}: {where}" if where else f"I/O error: {e}"
    if isinstance(e, UnicodeDecodeError):
        return f"{_file_of(e) or 'a file or file name'}: not UTF-8 text ({e}); save it as UTF-8"
    if isinstance(e, UnicodeEncodeError):
        return f"cannot write {e.object[e.start:e.end]!r} as {e.encoding}; use a UTF-8 locale (PYTHONIOENCODING=utf-8)"
    torch = sys.modules.get("torch")
    if (isinstance(e, (RuntimeError, AssertionError)) and "cuda" in str(e).lower() and torch is not None
            and not torch.cuda.is_available()):
        return "CUDA is not available (" + str(e).splitlines()[0][:120] + "); use --device cpu"
    return None


def entry(args=None):
    """Console entry, the one error boundary: a failure the user can fix is one line "error: ..."
    and exit 2; anything else (a bug) is one line and exit 1, with the traceback under --debug."""
    _STATE["debug"] = False
    try:
        main(args=args, prog_name="fpdm-bench", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("interrupted (a run folder resumes when the same command is rerun)", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except Exception as e:
        msg = expected_error(e)
        if msg is not None:
            click.echo(f"error: {msg}", err=True)
            sys.exit(2)
        if _STATE["debug"]:
            raise
        first = (str(e).splitlines() or [""])[0][:300]
        click.echo(f"internal error: {type(e).__name__}: {first} (rerun with --debug for the traceback)", err=True)
        sys.exit(1)


if __name__ == "__main__":
    entry()
