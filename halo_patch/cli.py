"""The `halo-patch` command line: a thin Typer layer over halo_patch.commands.

The error boundary (halo_patch.boundary): HaloPatchError becomes one red line on stderr and its exit code.
Command modules are imported inside each command so `--help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperCommand, TyperGroup

from halo_patch import __version__
from halo_patch.boundary import run as _run
from halo_patch.modules import DEFAULT as MODULE

def _flags_without_type(params: list) -> list:
    """Flags show no `<bool>` type placeholder in --help (Typer 0.29 prints one for each)."""
    for param in params:
        if getattr(param, "is_flag", False) and getattr(param, "metavar", None) is None:
            param.metavar = ""
    return params


class _Command(TyperCommand):
    def get_params(self, ctx):  # noqa: ANN001, ANN201 - click's signature
        return _flags_without_type(super().get_params(ctx))


class _Group(TyperGroup):
    def get_params(self, ctx):  # noqa: ANN001, ANN201 - click's signature
        return _flags_without_type(super().get_params(ctx))


app = typer.Typer(
    cls=_Group,
    name="halo-patch",
    help=f"Add the {MODULE.class_name} layer to an Ultralytics YOLO11 code base, exactly and reversibly.",
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_show_locals=False,
    no_args_is_help=True,
    add_completion=False,
)

TargetOption = Annotated[
    Optional[Path],
    typer.Option(
        "--target",
        "-t",
        help="Ultralytics git clone root, `ultralytics` package dir or site-packages dir. "
        "Default: the ultralytics this Python would import.",
        show_default=False,
    ),
]

JsonOption = Annotated[
    Optional[Path],
    typer.Option(
        "--json",
        help="Also write a machine-readable report to this file; `-`: print only the report, to stdout (any progress: stderr).",
        show_default=False,
    ),
]


def _json_quiet(json_path: Optional[Path]) -> bool:
    return json_path is not None and str(json_path) == "-"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"halo-patch {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Add the HaloAttention layer (HaloNet, CVPR 2021) to Ultralytics YOLO11, and take it out again.

    Exit codes: 0 ok, 1 check failed / would change, 2 error (nothing changed on disk),
    3 unexpected error (traceback saved to a file), 4 rollback incomplete (the message lists each
    file and the command that fixes it), 130 interrupted by Ctrl-C.
    """


@app.command(cls=_Command)
def apply(
    target: TargetOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", "--diff", help="Print a unified diff; write nothing.")] = False,
    check: Annotated[bool, typer.Option("--check", help="Exit 0 if applied, 1 if apply would change files.")] = False,
    base: Annotated[
        str, typer.Option("--base", help="Base model yaml: a name from the target's cfg/models/ (see `halo-patch bases`) or a path.")
    ] = "yolo11",
    after: Annotated[
        Optional[list[int]],
        typer.Option(
            "--after",
            help=f"Insert {MODULE.class_name} after this layer (repeatable). Default: the base's `default --after` in "
            "`halo-patch bases` (before its spatial pyramid pooling layer, e.g. SPPF; else the last backbone layer).",
        ),
    ] = None,
    args: Annotated[
        Optional[str],
        typer.Option("--args", help=f"The layer's yaml arguments; {MODULE.class_name}: block,halo[,dim_head,heads] (default 2,1).", show_default=False),
    ] = None,
    layout: Annotated[
        Optional[str],
        typer.Option(
            "--layout",
            help="addmodules: nn/Addmodules/ (the tutorial layout); modules: nn/modules/ (restricted loading). "
            "Default: the layout the tree is patched with, else addmodules.",
            show_default=False,
        ),
    ] = None,
    adopt: Annotated[bool, typer.Option("--adopt", help=f"Take over a hand-made (tutorial) {MODULE.class_name} install.")] = False,
    module: Annotated[
        Optional[Path], typer.Option("--module", help=f"A tutorial's module file to install instead of {MODULE.class_name}.", show_default=False)
    ] = None,
    class_name: Annotated[
        Optional[str], typer.Option("--class", help="With --module: the class to build (default: its only nn.Module class).", show_default=False)
    ] = None,
    channels: Annotated[
        Optional[str],
        typer.Option("--channels", help="With --module: same | out | none (default: read from the constructor).", show_default=False),
    ] = None,
    replace: Annotated[
        Optional[int], typer.Option("--replace", help="Put the layer in place of layer N (keeps its `from` and every edge).", show_default=False)
    ] = None,
    json_path: JsonOption = None,
) -> None:
    """Add HaloAttention (or a tutorial's module, --module): module file, tasks.py import + parse_model branch, a model yaml with the layer."""
    from halo_patch.commands import apply as cmd

    def run(console) -> int:  # the flags are checked inside the error boundary: a bad --args is one line, exit 2
        from halo_patch.errors import HaloPatchError

        if module is None and (class_name is not None or channels is not None):
            raise HaloPatchError("--class/--channels: expected together with --module FILE.py")
        spec = MODULE if module is None else cmd.user_module(target, module, class_name, channels, layout, console)
        return cmd.run(target, dry_run, check, cmd.options_from_cli(base, after, args, layout, adopt, spec, replace), console, json_path)

    _run(run, quiet=_json_quiet(json_path))


@app.command(cls=_Command)
def bases(target: TargetOption = None, json_path: JsonOption = None) -> None:
    """List the base model yamls the target offers for `apply --base`."""
    from functools import partial

    from halo_patch.commands import bases as cmd

    _run(partial(cmd.run, json_path=json_path), target, quiet=_json_quiet(json_path))


@app.command(cls=_Command)
def revert(
    target: TargetOption = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Also take out our nodes and files that were edited since apply (by default revert refuses and shows a diff). "
            "Never writes an old release's tasks.py over a newer one.",
        ),
    ] = False,
    module: Annotated[
        Optional[str], typer.Option("--module", help="Take out only this module (its class name); the others stay byte for byte.", show_default=False)
    ] = None,
    json_path: JsonOption = None,
) -> None:
    """Take HaloAttention (and every --module) out again: our nodes out of tasks.py (your own edits stay), our files deleted."""
    from halo_patch.commands import revert as cmd

    _run(lambda console: cmd.run(target, force, console, module, json_path), quiet=_json_quiet(json_path))


@app.command(cls=_Command)
def status(target: TargetOption = None, json_path: JsonOption = None) -> None:
    """Show each change (applied / absent / drifted). Exit 0 when fully applied, 1 otherwise."""
    from functools import partial

    from halo_patch.commands import status as cmd

    _run(partial(cmd.run, json_path=json_path), target, quiet=_json_quiet(json_path))


@app.command(cls=_Command)
def verify(
    target: TargetOption = None,
    base: Annotated[
        Optional[str],
        typer.Option(
            "--base",
            help=f"Check only the {MODULE.class_name} yamls apply wrote for these bases, comma-separated (yolo11-seg,yolo11-pose). "
            "Default: every one.",
            show_default=False,
        ),
    ] = None,
    scale: Annotated[str, typer.Option("--scale", help="Model scales to check, comma-separated: n, s, m, l, x.")] = "n",
    device: Annotated[str, typer.Option("--device", help="Torch device for the checks: cpu, cuda:0, 0, mps.")] = "cpu",
    imgsz: Annotated[int, typer.Option("--imgsz", help="Main image size, a multiple of 32.")] = 640,
    train: Annotated[
        bool,
        typer.Option(
            "--train", help="Also train 2 epochs on a generated dataset, predict, and reload the checkpoint (detection models)."
        ),
    ] = False,
    export: Annotated[
        Optional[str],
        typer.Option("--export", help="Also export to this format (onnx) and run the file with onnxruntime (detection models)."),
    ] = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write a machine-readable report to this file.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the verdict.")] = False,
    module: Annotated[
        Optional[str], typer.Option("--module", help="Check the yamls of this module (`apply --module`), by class name.", show_default=False)
    ] = None,
) -> None:
    """Prove, in the target's own Python, that the patched Ultralytics builds, runs and trains. Exit 0 passed, 1 failed."""
    from halo_patch.commands import verify as cmd

    _run(lambda console: cmd.run(target, scale, device, imgsz, train, export, json_path, quiet, base, console, module))


@app.command(cls=_Command)
def compare(
    data: Annotated[Path, typer.Option("--data", help="The dataset yaml every run trains and validates on.", show_default=False)],
    target: TargetOption = None,
    model: Annotated[
        Optional[str],
        typer.Option("--model", help=f"The base model yaml. Default: the base of the first {MODULE.class_name} yaml apply wrote, scale n (yolo11n.yaml).", show_default=False),
    ] = None,
    variant: Annotated[
        Optional[list[str]],
        typer.Option("--variant", help=f"A model yaml to compare with the base (repeatable). Default: every {MODULE.class_name} yaml apply wrote for that task, scale n.", show_default=False),
    ] = None,
    weights: Annotated[
        Optional[Path],
        typer.Option("--weights", help="Start the base from this .pt and each variant from it carried by `halo-patch weights`.", show_default=False),
    ] = None,
    seeds: Annotated[int, typer.Option("--seeds", help="Seeds 0..N-1, each trained for every model (paired).")] = 3,
    epochs: Annotated[int, typer.Option("--epochs", help="Epochs of every run (no early stopping).")] = 100,
    imgsz: Annotated[int, typer.Option("--imgsz", help="Train and validation image size, a multiple of 32.")] = 640,
    batch: Annotated[int, typer.Option("--batch", help="Batch size of every run (explicit: auto batch would differ).")] = 16,
    device: Annotated[Optional[str], typer.Option("--device", help="cpu, 0, 0,1 (Ultralytics multi-GPU), mps. Default: Ultralytics' choice.", show_default=False)] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Output dir. Default: runs/compare/<data stem>.", show_default=False)] = None,
    sets: Annotated[
        Optional[list[str]], typer.Option("--set", help="KEY=VALUE: any other train argument, the same for every run (repeatable).", show_default=False)
    ] = None,
    json_path: JsonOption = None,
) -> None:
    """Train the base and its HaloAttention variants over paired seeds, fairly; report the difference with its interval."""
    from halo_patch.commands import compare as cmd

    _run(cmd.run, target, data, model, variant, weights, seeds, epochs, imgsz, batch, device, out, sets, json_path)


@app.command(cls=_Command)
def weights(
    src: Annotated[Path, typer.Argument(metavar="SRC", help="An Ultralytics checkpoint: yolo11n.pt, or your own best.pt / last.pt.", show_default=False)],
    out: Annotated[
        Optional[Path],
        typer.Option("--output", "-o", help=f"Where to write the new checkpoint. Default: <stem of SRC>-{MODULE.class_name}.pt here.", show_default=False),
    ] = None,
    yaml_spec: Annotated[
        Optional[str],
        typer.Option(
            "--yaml",
            help=f"The {MODULE.class_name} yaml to build, as YOLO takes it (yolo11s-seg-{MODULE.class_name}.yaml) or a path. "
            "Default: the one apply wrote for SRC's model, at SRC's scale.",
            show_default=False,
        ),
    ] = None,
    target: TargetOption = None,
    force: Annotated[bool, typer.Option("--force", help="Replace OUT when it exists.")] = False,
    json_path: JsonOption = None,
) -> None:
    """Carry a checkpoint's tensors into the HaloAttention model: every layer to the index it moved to, names kept."""
    from halo_patch.commands import weights as cmd

    _run(cmd.run, src, out, yaml_spec, target, force, json_path)


def main() -> None:
    import os
    import sys

    # A closed stdout/stderr (`halo-patch apply >&-`): run as usual, printing nowhere.
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w", encoding="utf-8")
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")
    app()


if __name__ == "__main__":
    main()
