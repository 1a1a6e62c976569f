"""The console script. Fast paths first: ``tether --help`` and ``--version`` print without importing
click (measured in bench/), everything else goes to the click group. Typed errors become one line."""

from __future__ import annotations

import _signal  # the C module, loaded with the interpreter: `signal` itself would cost --help an import
import os
import sys

from tether.cli.help_text import HELP, VERSION


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args in (["--help"], ["-h"], []):
        sys.stdout.write(HELP)
        sys.exit(0)
    if args in (["--version"], ["-V"]):
        sys.stdout.write(VERSION + "\n")
        sys.exit(0)
    sys.exit(run(args))


def run(args: list[str]) -> int:
    from tether.errors import RunbookError, TetherError  # with cli.fast at the top: +0.8 ms to tether --help

    # Ctrl-C stops every command (`demo`, `top`, `events -F`, a waiting `ask`) as the KeyboardInterrupt below,
    # also when tether was started with SIGINT ignored: a script's background job is, and Python keeps it so
    _signal.signal(_signal.SIGINT, _signal.default_int_handler)
    try:
        from tether.cli.fast import try_fast  # as tether.errors

        code = try_fast(args)
        if code is not None:
            return code
        from tether.cli.main import run as run_click  # click: +25 ms to tether --help, which never needs it

        run_click(args)
        return 0
    except RunbookError as err:  # already FILE:LINE: FIELD: MESSAGE, one per line
        sys.stderr.write(str(err) + "\n")
        return err.exit_code
    except TetherError as err:
        for line in str(err).splitlines() or ["failed"]:
            sys.stderr.write(f"tether: error: {line}\n")
        return err.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("tether: interrupted\n")
        return 130
    except OSError as err:
        where = f"{err.filename}: " if err.filename else ""
        sys.stderr.write(f"tether: error: {where}{err.strerror or err}\n")
        return 1
    except Exception as err:  # a bug, not the user's doing: one line, the traceback on request
        if os.environ.get("TETHER_DEBUG"):
            raise
        sys.stderr.write(
            f"tether: internal error: {type(err).__name__}: {err} (run again with TETHER_DEBUG=1 for the traceback)\n"
        )
        return 70


if __name__ == "__main__":
    main()
