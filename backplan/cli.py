"""The ``backplan`` command group: the only place that turns
:class:`runtime.errors.BackplanError` (and click's and the OS's refusals) into an exit code and
a one-line message. Commands live one group per module in :mod:`backplan.commands`.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import click

from runtime.errors import BackplanError


class _Group(click.Group):
    """A click group that turns backplan errors, click's option checks and the operating
    system's refusals (a file that cannot be written) into one line on stderr and an exit
    code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BackplanError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except click.UsageError as exc:  # click's own checks (ranges, choices, missing args)
            where = exc.ctx.command_path if exc.ctx is not None else ctx.command_path
            message = exc.format_message().rstrip(".")
            click.echo(f"error: {message}; see `{where} --help`", err=True)
            ctx.exit(exc.exit_code)
        except BrokenPipeError:  # `backplan plan --json | head`: the reader left; so do we
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(1)
        except OSError as exc:  # the machine said no (a path, permissions, a full disk)
            logging.getLogger(__name__).debug("OS error", exc_info=True)  # -vv shows where
            where = f" ({exc.filename})" if exc.filename else ""
            click.echo(
                f"error: {exc.strerror or exc}{where}; check the path, its permissions and "
                "free space, then run again",
                err=True,
            )
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """backplan: verifier-guided backtracking on llama.cpp, measured and planned."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # a model download takes minutes: always say which part is being fetched
    logging.getLogger("runtime.models.fetch").setLevel(min(level, logging.INFO))


def _register() -> None:
    from backplan.commands import dashboard, demo, deploy, generate, models, plan, predict, profile
    from backplan.commands.eval import eval_group
    from backplan.commands.serve import serve
    from backplan.commands.verifier import verifier_group

    cli.add_command(models.models)
    cli.add_command(generate.generate)
    cli.add_command(profile.profile)
    cli.add_command(plan.plan)
    cli.add_command(predict.predict)
    cli.add_command(eval_group)
    cli.add_command(verifier_group)
    cli.add_command(demo.demo)
    cli.add_command(serve)
    cli.add_command(dashboard.dashboard)
    cli.add_command(deploy.deploy)


def main() -> None:
    _register()
    cli(prog_name="backplan")


if __name__ == "__main__":  # pragma: no cover
    main()
