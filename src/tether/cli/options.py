"""What every command shares: the error handler, the options that build a ModelSpec,
and how a ``--task`` name splits into a tether task and a pipeline() task.

Command modules import from here, never from ``tether.cli.main``, so no command
imports the entry point that registers it.
"""

from __future__ import annotations

import errno
import functools
import pickle
from collections.abc import Callable
from typing import Any, NoReturn

import click

from tether.cli.errors import format_error
from tether.errors import TetherError

SPEC_OPTION_NAMES = (
    "spec_file",
    "model_class",
    "task",
    "revision",
    "trust_remote_code",
    "dtype",
    "device",
    "tokenizer",
    "max_length",
    "pooling",
    "normalize",
    "allow_new_weights",
    "allow_unused_weights",
    "allow_pickle",
    "load_kwargs",
)


def parse_key_values(pairs: tuple[str, ...] | list[str], flag: str) -> dict[str, Any]:
    """``KEY=VALUE`` options into a dict; a value is JSON where it parses (``3``,
    ``true``, ``{"a": 1}``), else the string itself."""
    import json

    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise click.UsageError(f"{flag} takes KEY=VALUE, got {pair!r}.")
        try:
            parsed[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            parsed[key.strip()] = raw
    return parsed


#: ``--pipeline-arg KEY=VALUE``: pipeline() call arguments, for `tether run` and `tether beam run`.
pipeline_arg_option = click.option(
    "--pipeline-arg",
    "pipeline_args",
    multiple=True,
    metavar="KEY=VALUE",
    help="A pipeline() call argument for pipeline tasks (repeatable; JSON values parse, "
    "e.g. max_new_tokens=20 or threshold=0.5).",
)


def task_call_options(
    task: str, pipeline_args: tuple[str, ...], top_k: int | None
) -> dict[str, Any]:
    """The call options ``--pipeline-arg`` and ``--top-k`` give ``task``; a flag that does
    not apply to the task is a usage error, never silently dropped."""
    options = parse_key_values(pipeline_args, "--pipeline-arg")
    if options and task != "pipeline":
        raise click.UsageError("--pipeline-arg applies to pipeline() tasks only.")
    if top_k:
        if task not in ("fill-mask", "pipeline"):
            raise click.UsageError("--top-k applies to fill-mask and pipeline tasks only.")
        options["top_k"] = top_k
    return options


class TetherGroup(click.Group):
    """A click group that turns errors into a one-line message and exit code 2.

    Exit codes mean the same everywhere: 0 success (a comparison passed), 1 a check
    failed (``tether compare``'s verdict), 2 an error. An exception tether did
    not expect is an error too (2, with its type), never a 1 that CI reads as a FAIL.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TetherError as exc:
            if ctx.meta.get("tether.debug"):
                raise
            message, hint = format_error(exc)
            click.secho(message, fg="red", err=True)
            click.echo(hint, err=True)
            ctx.exit(2)
        except (OSError, pickle.UnpicklingError) as exc:
            # Faults of the machine or of a file, not of tether: one line, not a traceback.
            if ctx.meta.get("tether.debug"):
                raise
            if not _is_fault(exc):
                _unexpected(ctx, exc)
            click.secho(f"error: {_fault_message(exc)}", fg="red", err=True)
            click.echo("  -> Run again with --debug for the traceback.", err=True)
            ctx.exit(2)
        except (click.exceptions.Exit, click.ClickException, click.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            if ctx.meta.get("tether.debug"):
                raise
            _unexpected(ctx, exc)


def _unexpected(ctx: click.Context, exc: BaseException) -> NoReturn:
    click.secho(f"error: unexpected {type(exc).__name__}: {exc}", fg="red", err=True)
    click.echo("  -> Run with --debug for the full traceback.", err=True)
    ctx.exit(2)


_FAULT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}


def _is_fault(exc: BaseException) -> bool:
    return isinstance(exc, pickle.UnpicklingError) or getattr(exc, "errno", None) in _FAULT_ERRNOS


def _fault_message(exc: BaseException) -> str:
    if isinstance(exc, pickle.UnpicklingError):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "refused"
        return f"torch refused to unpickle a file: {first}"
    assert isinstance(exc, OSError)
    return f"{exc.strerror or exc}: {exc.filename or 'a file'}"


def split_revision(repo: str, revision: str | None) -> tuple[str, str | None]:
    """``org/name@rev`` -> (``org/name``, ``rev``); ``--revision`` may not say otherwise."""
    name, at, rev = repo.partition("@")
    if not at:
        return repo, revision
    if not rev:
        raise click.UsageError(f"{repo!r} ends with '@': give a revision after it.")
    if revision and revision != rev:
        raise click.UsageError(f"{repo!r} names revision {rev!r} but --revision says {revision!r}.")
    return name, rev


def spec_options(default_class: str | None = "AutoModel") -> Callable[[Callable[..., Any]], Any]:
    """Options that build a ModelSpec; shared by every command that loads a model."""

    def decorate(func: Callable[..., Any]) -> Any:
        options = [
            click.option(
                "--spec",
                "spec_file",
                type=click.Path(dir_okay=False),
                help="Load options from a spec JSON file; other options override it.",
            ),
            click.option(
                "--class",
                "model_class",
                default=None,
                help=f"transformers model class (default: {default_class or 'by --task'}).",
            ),
            click.option(
                "--task",
                default=None,
                help="A pipeline() task instead of a class ('auto': the task of the "
                "checkpoint's own head).",
            ),
            click.option("--revision", default=None, help="Hub revision (branch, tag, commit)."),
            click.option(
                "--trust-remote-code",
                is_flag=True,
                default=None,
                help="Run the model's own code (auto_map). Review it first.",
            ),
            click.option(
                "--dtype",
                type=click.Choice(["float32", "float16", "bfloat16", "auto"]),
                default=None,
                help="Weights dtype (default float32).",
            ),
            click.option(
                "--device", default=None, help="cpu, cuda, cuda:N, mps or auto (default cpu)."
            ),
            click.option("--tokenizer", default=None, help="Tokenizer source if not the model's."),
            click.option(
                "--max-length",
                type=click.IntRange(min=1),
                default=None,
                help="Max tokens per input.",
            ),
            click.option(
                "--pooling",
                type=click.Choice(["mean", "cls", "max", "mean_sqrt_len", "last"]),
                default=None,
                help="Embedding pooling (default: the model's own config, else mean).",
            ),
            click.option(
                "--normalize/--no-normalize",
                default=None,
                help="L2-normalise embeddings (default: the model's own config).",
            ),
            click.option(
                "--allow-new-weights",
                is_flag=True,
                default=None,
                help="Allow newly initialised weights (e.g. a new head to fine-tune).",
            ),
            click.option(
                "--allow-unused-weights",
                is_flag=True,
                default=None,
                help="Allow checkpoint weights the class does not use.",
            ),
            click.option(
                "--allow-pickle",
                is_flag=True,
                default=None,
                help="Allow pickle (.bin/.pt) weights. They can run code.",
            ),
            click.option(
                "--load-arg",
                "load_kwargs",
                multiple=True,
                metavar="KEY=VALUE",
                help="A from_pretrained() argument (repeatable; JSON values parse, e.g. "
                "attn_implementation=eager).",
            ),
        ]
        for option in reversed(options):
            func = option(func)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            values = {name: kwargs.pop(name) for name in SPEC_OPTION_NAMES}
            values["load_kwargs"] = parse_key_values(values["load_kwargs"], "--load-arg") or None
            kwargs["spec_values"] = dict(values, default_class=default_class)
            return func(*args, **kwargs)

        return wrapper

    return decorate


#: ``--task auto``: the pipeline() task inferred from the checkpoint's head.
AUTO_TASK = "auto"
#: ``default_class`` meaning: the checkpoint's own architecture (what ``tether inspect``
#: suggests). ``embed`` reads the base model's hidden states, so loading a classifier
#: or masked-LM checkpoint as itself is exact and drops no weights, where ``AutoModel``
#: would refuse it for leaving its head unused.
OWN_CLASS = "the checkpoint's own class"


def build_spec(source: str | None, spec_values: dict[str, Any]) -> Any:
    """Merge a spec file (if any) with command-line options into a ModelSpec."""
    from tether.models.spec import ModelSpec

    values = dict(spec_values)
    default_class = values.pop("default_class")
    spec_file = values.pop("spec_file")
    base: dict[str, Any] = ModelSpec.load_file(spec_file).to_dict() if spec_file else {}
    if source:
        base["source"] = source
    if not base.get("source"):
        raise click.UsageError("Give a model SOURCE or --spec FILE.")
    for key, value in values.items():
        if key == "load_kwargs" and value is not None:
            base[key] = {**base.get(key, {}), **value}  # add to a spec file's, key by key
        elif value is not None:
            base[key] = value
    if values.get("task"):
        base["model_class"] = None
    elif values.get("model_class"):
        base["task"] = None
    if not base.get("model_class") and not base.get("task"):
        base["model_class"] = default_class
    if base.get("model_class") == OWN_CLASS:
        from tether.models.inspection import inspect

        base["model_class"] = inspect(str(base["source"]), base.get("revision")).suggested_class
    if base.get("task") == AUTO_TASK:
        base["task"] = _inferred_task(str(base["source"]), base.get("revision"))
    return ModelSpec.from_dict(base)


def _inferred_task(source: str, revision: str | None) -> str:
    """``--task auto``: the task the checkpoint's head serves, as ``pipeline(model=...)``
    infers it; recorded in the spec, so the run says which task it ran."""
    from tether.errors import SpecError
    from tether.models.inspection import inspect

    report = inspect(source, revision)
    if report.suggested_task is None:
        raise SpecError(
            f"No task can be inferred for {source!r}: its architecture "
            f"({', '.join(report.architectures) or 'none'}) has no task head.",
            "Name the task (task='feature-extraction', ...), or use the embed task.",
            field="task",
        )
    return report.suggested_task


def split_task(task: str | None, spec_values: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Read ``--task``: a tether task (embed, classify, fill-mask; default embed) loads
    its default class; any other name is a pipeline() task, run by the pipeline task.

    Returns the tether task and the spec values to build the ModelSpec from.
    """
    from tether.inference.tasks import default_model_class

    values = dict(spec_values)
    name = task or "embed"
    default_class = OWN_CLASS if name == "embed" else default_model_class(name)
    if default_class is not None:
        values["task"] = None
        values["default_class"] = default_class
        return name, values
    values["task"] = name  # a pipeline() task; ModelSpec validates the name
    return "pipeline", values
