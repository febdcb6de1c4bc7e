"""Entry point: global options, plugin loading, and one-line errors (``--traceback`` for more).

Exit codes: 0 success; 1 an error recbench raised on purpose (bad config, a dataset that cannot be
loaded, a check that failed before training), printed as one line; 2 a usage error or an internal
error; 3 ``recbench run`` finished but some trials failed (the leaderboard of the others is
printed first); 130 interrupted.
"""

from __future__ import annotations

import sys
import traceback

import click

from ..errors import RecbenchError
from .common import EXIT_ERROR, EXIT_INTERNAL
from .cite_cmd import cite_command
from .compare_cmd import compare_command
from .datasets_cmd import datasets_group
from .plugins_cmd import plugins_command
from .models_cmd import models_command
from .recommend_cmd import recommend_command
from .report_cmd import leaderboard_command, report_command
from .run_cmd import run_command
from .split_cmd import split_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--plugin", "plugin_paths", multiple=True, type=click.Path(dir_okay=False),
              help="Load a plugin module from a .py file (repeatable).")
@click.option("--traceback", "show_traceback", is_flag=True,
              help="Show full tracebacks on errors (also accepted after the subcommand).")
@click.version_option(package_name="recbench")
@click.pass_context
def cli(ctx: click.Context, plugin_paths: tuple[str, ...], show_traceback: bool) -> None:
    """Comparative, reproducible benchmarking of recommender systems.

    \b
    Exit codes: 0 success; 1 an error (one line; --traceback for more); 2 usage or internal
    error; 3 `run` finished but some trials failed; 130 interrupted.
    """
    ctx.obj = {"plugin_paths": plugin_paths}  # --traceback is handled by main()


cli.add_command(run_command)
cli.add_command(plugins_command)
cli.add_command(models_command)
cli.add_command(leaderboard_command)
cli.add_command(report_command)
cli.add_command(cite_command)
cli.add_command(compare_command)
cli.add_command(datasets_group)
cli.add_command(split_group)
cli.add_command(recommend_command)


def main(argv: list[str] | None = None) -> int:
    # `--traceback` may stand anywhere (before or after the subcommand): it is taken out here, so
    # every command accepts it without declaring it.
    args = list(argv if argv is not None else sys.argv[1:])
    show = "--traceback" in args
    args = [a for a in args if a != "--traceback"]
    try:
        code = cli.main(args=args, prog_name="recbench", standalone_mode=False)
        if isinstance(code, int):  # a command's ctx.exit(code), returned by click
            return code
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except RecbenchError as e:
        if show:
            traceback.print_exc()
        click.echo(f"error: {e}", err=True)
        return EXIT_ERROR
    except Exception as e:  # noqa: BLE001 - an unexpected bug still gets one clear line
        if show:
            traceback.print_exc()
        click.echo(f"internal error: {type(e).__name__}: {e} (rerun with --traceback and report it)",
                   err=True)
        return EXIT_INTERNAL
    return 0


if __name__ == "__main__":
    sys.exit(main())
