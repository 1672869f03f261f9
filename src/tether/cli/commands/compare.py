"""`tether compare A [B]`: numerical parity between two models, with a CI exit code."""

from __future__ import annotations

import json
from typing import Any

import click

from tether.cli.options import spec_options
from tether.tolerances import PRESETS, TRANSFORM_PRESETS

_SIDE_HELP = (
    "A and B are each a model source or directory, a spec JSON file, a bundle directory, "
    "module:function (called with a copy of A's PyTorch model, returns a model or a "
    "function; a function may return (outputs, intermediates), e.g. a JAX/Flax port with "
    "capture_intermediates, to be compared layer by layer) or a .onnx file. B defaults to "
    "A loaded again. Each side tokenizes with its own tokenizer. Exit codes: 0 pass, "
    "1 parity fail, 2 error."
)


def register(group: click.Group) -> None:
    """Add this feature's commands to the `tether` group."""

    @group.command("compare", help=f"Compare two models layer by layer.\n\n{_SIDE_HELP}")
    @click.argument("a")
    @click.argument("b", required=False)
    @spec_options()
    @click.option(
        "--transform",
        type=click.Choice(list(TRANSFORM_PRESETS)),
        default=None,
        help="Turn B into this candidate first: exact, bf16 or int8 as `tether optimize "
        "--level` builds it (on the probes and --texts), or a weight cast (cast-fp16, "
        "cast-bf16).",
    )
    @click.option(
        "--preset",
        type=click.Choice(list(PRESETS)),
        default=None,
        help="Tolerance preset (default: the transform's, else from B's dtype, else rerun).",
    )
    @click.option(
        "--atol",
        type=click.FloatRange(min=0),
        default=None,
        help="Absolute tolerance (elementwise).",
    )
    @click.option(
        "--rtol",
        type=click.FloatRange(min=0),
        default=None,
        help="Relative tolerance (elementwise).",
    )
    @click.option(
        "--min-cosine", type=click.FloatRange(0, 1), default=None, help="Minimum per-text cosine."
    )
    @click.option(
        "--min-topk", type=click.FloatRange(0, 1), default=None, help="Minimum top-k overlap (0-1)."
    )
    @click.option(
        "--texts",
        "texts_file",
        type=click.Path(dir_okay=False),
        default=None,
        help="Texts to compare on: .txt (one per line, or fortune '%' blocks) or .jsonl "
        "('text' field). Default: built-in probe texts.",
    )
    @click.option(
        "--limit", type=click.IntRange(min=1), default=None, help="Use only the first N texts."
    )
    @click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
    @click.option(
        "--top-k",
        type=click.IntRange(min=1),
        default=10,
        show_default=True,
        help="Neighbours compared (reported on 200 texts or more).",
    )
    @click.option(
        "--rename",
        "mapping",
        multiple=True,
        metavar="A_PREFIX=B_PREFIX|FILE",
        help="Module name prefix in A that corresponds to one in B (repeatable), or a "
        "YAML/JSON file of {A_PREFIX: B_PREFIX}. A port's names such as layers_0/mlp "
        "meet layers.0.mlp without one.",
    )
    @click.option(
        "--b-ignore-custom-code",
        is_flag=True,
        help="Load B's built-in transformers class WITHOUT its custom code, bypassing the "
        "guard on purpose, to measure what a reload without trust_remote_code changes.",
    )
    @click.option("--no-layers", is_flag=True, help="Compare final outputs only (faster).")
    @click.option("--all-modules", is_flag=True, help="Show every module, not just blocks.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
    @click.option(
        "--plot", type=click.Path(dir_okay=False), default=None, help="Save error by depth PNG."
    )
    def compare_cmd(
        a: str,
        b: str | None,
        spec_values: dict[str, Any],
        transform: str | None,
        preset: str | None,
        atol: float | None,
        rtol: float | None,
        min_cosine: float | None,
        min_topk: float | None,
        texts_file: str | None,
        limit: int | None,
        batch_size: int,
        top_k: int,
        mapping: tuple[str, ...],
        b_ignore_custom_code: bool,
        no_layers: bool,
        all_modules: bool,
        as_json: bool,
        plot: str | None,
    ) -> None:
        """Exit 0 when B matches A within the tolerance, 1 when not, 2 on errors."""
        from tether.bundles.probes import PROBE_TEXTS
        from tether.parity.compare import compare, read_texts
        from tether.parity.format import plot_report
        from tether.tolerances import Tolerance, get_tolerance

        texts = read_texts(texts_file, limit) if texts_file else list(PROBE_TEXTS)[:limit]
        limits = {"atol": atol, "rtol": rtol, "min_cosine": min_cosine, "min_topk": min_topk}
        tolerance: Tolerance | str | None = preset
        if any(v is not None for v in limits.values()):
            # Overrides apply to --preset, else to the transform's own preset, else rerun.
            base = preset or TRANSFORM_PRESETS.get(transform or "")
            tolerance = get_tolerance(base, **limits)
        report = compare(
            a,
            b,
            transform=transform,
            tolerance=tolerance,
            texts=texts,
            batch_size=batch_size,
            top_k=top_k,
            mapping=list(mapping),
            layers=not no_layers,
            spec_defaults=_spec_defaults(spec_values),
            b_ignore_custom_code=b_ignore_custom_code,
        )
        if plot:
            plot_report(report, plot)
        if as_json:
            click.echo(json.dumps(report.to_dict(), indent=2))
        else:
            click.echo(report.format(all_modules=all_modules))
            if plot:
                click.echo(f"wrote {plot}", err=True)
        raise SystemExit(0 if report.passed else 1)


def _spec_defaults(spec_values: dict[str, Any]) -> dict[str, Any]:
    """Spec fields from the shared options, applied to every side given as text.

    A ``--spec`` file gives the base; options given explicitly override it (as in
    ``build_spec``), and they also override a side's own spec file or bundle spec.
    """
    from tether.models.spec import ModelSpec

    values = {k: v for k, v in spec_values.items() if k != "default_class"}
    spec_file = values.pop("spec_file")
    out: dict[str, Any] = {}
    if spec_file:
        out = ModelSpec.load_file(spec_file).to_dict()
        out.pop("source")
    explicit = {k: v for k, v in values.items() if v is not None}
    out.update(explicit)
    if explicit.get("task"):
        out["model_class"] = None
    elif explicit.get("model_class"):
        out["task"] = None
    return out
