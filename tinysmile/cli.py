"""The `tinysmile` command.

Sub-commands live beside the code they drive and are imported only when named, so
`tinysmile compile/flash/verify` never pull in TensorFlow.
"""

from __future__ import annotations

import importlib
import sys

import click

from tinysmile import __version__
from tinysmile.errors import TinysmileError

# name -> "module:attribute" of a click command or group
COMMANDS: dict[str, str] = {
    "compile": "tinysmile.compiler.commands:compile_cmd",
    "run-host": "tinysmile.compiler.commands:run_host_cmd",
    "demo": "tinysmile.demo:demo_cmd",
    "flash": "tinysmile.device.commands:flash_cmd",
    "frame": "tinysmile.device.commands:frame_cmd",
    "verify": "tinysmile.device.commands:verify_cmd",
    "profile": "tinysmile.device.commands:profile_cmd",
    "stop": "tinysmile.device.commands:stop_cmd",
    "data": "tinysmile.data.commands:data_group",
    "detector": "tinysmile.finder.commands:detector_group",
    "label": "tinysmile.label.commands:label_group",
    "train": "tinysmile.train.commands:train_cmd",
    "quantize": "tinysmile.train.commands:quantize_cmd",
    "search": "tinysmile.search.commands:search_cmd",
    "pi": "tinysmile.pi.commands:pi_group",
    "capture": "tinysmile.pi.commands:capture_cmd",
    "predict": "tinysmile.train.commands:predict_cmd",
    "evaluate": "tinysmile.train.commands:evaluate_cmd",
    "explain": "tinysmile.train.commands:explain_cmd",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tinysmile")
def cli() -> None:
    """tinysmile: train a smile detector, compile it to C for a microcontroller,
    flash it, and prove the device computes exactly what the host computes."""


def main(argv: list[str] | None = None) -> int:
    try:
        rv = cli.main(args=argv, prog_name="tinysmile", standalone_mode=False)
    except TinysmileError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    # A command may return an int exit status (verify returns 1 on a mismatch).
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
