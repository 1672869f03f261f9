"""`tether save`, `tether verify` and `tether card check`: bundles that reload identically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click


def register(group: click.Group) -> None:
    """Add this feature's commands to the `tether` group."""
    from tether.cli.options import build_spec, spec_options

    @group.command("save")
    @click.argument("source")
    @click.argument("out_dir", type=click.Path(file_okay=False))
    @spec_options()
    @click.option("--overwrite", is_flag=True, help="Replace an existing bundle atomically.")
    @click.option(
        "--atol",
        type=click.FloatRange(min=0),
        default=None,
        help="Fingerprint tolerance (max abs diff).",
    )
    @click.option(
        "--min-cosine",
        type=click.FloatRange(0, 1),
        default=None,
        help="Fingerprint tolerance: minimum cosine of every probe text's outputs.",
    )
    @click.option(
        "--card-info",
        type=click.Path(dir_okay=False, exists=True),
        default=None,
        help="JSON/YAML file with model card fields (intended_use, training_data, ...).",
    )
    @click.option("--license", "license_", default=None, help="Model card licence, e.g. mit.")
    @click.option("--base-model", default=None, help="Model card base_model (hub repo id).")
    @click.option("--language", multiple=True, help="Model card language (repeatable).")
    @click.option("--dataset", multiple=True, help="Model card training dataset (repeatable).")
    @click.option("--json", "as_json", is_flag=True, help="Print the manifest summary as JSON.")
    def save_cmd(
        source: str,
        out_dir: str,
        spec_values: dict[str, Any],
        overwrite: bool,
        atol: float | None,
        min_cosine: float | None,
        card_info: str | None,
        license_: str | None,
        base_model: str | None,
        language: tuple[str, ...],
        dataset: tuple[str, ...],
        as_json: bool,
    ) -> None:
        """Save SOURCE (a model, or a spec JSON file) as a bundle in OUT_DIR.

        The bundle holds safetensors weights, config, tokenizer, custom code, a model
        card, a fingerprint of the outputs and tether.json; it is published atomically.
        """
        from tether.bundles.card import CardInfo
        from tether.bundles.save import save
        from tether.models.manifest import read_manifest
        from tether.tolerances import Tolerance

        if Path(source).is_file() and source.endswith(".json"):
            spec_values = dict(spec_values, spec_file=source)
            source_arg: str | None = None
        else:
            source_arg = source
        spec = build_spec(source_arg, spec_values)
        info = CardInfo.from_file(card_info) if card_info else CardInfo()
        info.license = license_ or info.license
        info.base_model = base_model or info.base_model
        info.language = list(language) or info.language
        info.datasets = list(dataset) or info.datasets
        tolerance = None
        if atol is not None or min_cosine is not None:
            tolerance = _override(Tolerance.for_dtype(spec.dtype), atol, min_cosine)
        out = save(spec, out_dir, overwrite=overwrite, card=info, tolerance=tolerance)
        manifest = read_manifest(out)
        size = sum(f["size"] for f in manifest.files.values())
        summary = {
            "bundle": str(out),
            "class": manifest.class_name,
            "files": len(manifest.files),
            "bytes": size,
            "fingerprint": manifest.fingerprint,
            "spec": manifest.spec,
        }
        if as_json:
            click.echo(json.dumps(summary, indent=2))
            return
        fp = manifest.fingerprint
        click.echo(
            f"saved {manifest.class_name} bundle to {out}: {len(manifest.files)} files, "
            f"{size / 1e6:.1f} MB; fingerprint: {', '.join(fp['outputs'])} on {fp['texts']} "
            f"{'probe texts' if 'attention_mask' in fp['outputs'] else 'probe inputs'} "
            f"(atol {fp['atol']:g}, min cosine {fp['min_cosine']}); "
            "reload reproduced the model in memory"
        )

    @group.command("verify")
    @click.argument("bundle")
    @click.option(
        "--revision", default=None, help="For a hub repo id: branch, tag or commit (or REPO@REV)."
    )
    @click.option("--class", "model_class", default=None, help="Load as this class instead.")
    @click.option("--device", default=None, help="Device for the reload (default: the spec's).")
    @click.option(
        "--atol", type=click.FloatRange(min=0), default=None, help="Override the manifest's atol."
    )
    @click.option(
        "--min-cosine", type=click.FloatRange(0, 1), default=None, help="Override the min cosine."
    )
    @click.option(
        "--trust-remote-code",
        is_flag=True,
        help="Run the bundle's own code to reload it (review it first; a bundle never "
        "trusts itself).",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
    def verify_cmd(
        bundle: str,
        revision: str | None,
        model_class: str | None,
        device: str | None,
        trust_remote_code: bool,
        atol: float | None,
        min_cosine: float | None,
        as_json: bool,
    ) -> None:
        """Check BUNDLE (a directory, or a hub repo id org/name[@rev]): sha256 of every
        file, reload, and the fingerprint within tolerance.

        Exit 0 when it verifies, 1 with a report of what differs when not, 2 when it
        cannot be checked (e.g. custom code without --trust-remote-code).
        """
        from tether.bundles.verify import verify
        from tether.cli.options import split_revision
        from tether.models.manifest import read_manifest, resolve_bundle

        bundle, revision = split_revision(bundle, revision)
        overrides: dict[str, Any] = {}
        if model_class:
            overrides.update(model_class=model_class, task=None)
        if device:
            overrides["device"] = device
        if trust_remote_code:
            overrides["trust_remote_code"] = True
        tolerance = None
        if atol is not None or min_cosine is not None:
            root, commit = resolve_bundle(bundle, revision)
            tolerance = _override(read_manifest(root).tolerance, atol, min_cosine)
            revision = commit or revision
        report = verify(bundle, revision=revision, tolerance=tolerance, **overrides)
        click.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.format())
        click.get_current_context().exit(0 if report.ok else 1)

    @group.group("card")
    def card_group() -> None:
        """Model cards: check that a card tells a reader how to reuse the model."""

    @card_group.command("check")
    @click.argument("path", type=click.Path(exists=True))
    @click.option(
        "--min-score",
        type=click.FloatRange(0.0, 1.0),
        default=None,
        help="Fail below this fraction of sections and metadata present (default 0.8).",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
    def card_check_cmd(path: str, min_score: float | None, as_json: bool) -> None:
        """Score the model card PATH (a README.md or a model directory); exit 1 below the
        minimum score, listing what is missing."""
        from tether.bundles.card import DEFAULT_MIN_SCORE, check_card

        result = check_card(path, DEFAULT_MIN_SCORE if min_score is None else min_score)
        click.echo(json.dumps(result.to_dict(), indent=2) if as_json else result.format())
        click.get_current_context().exit(0 if result.ok else 1)


def _override(base: Any, atol: float | None, min_cosine: float | None) -> Any:
    """``base`` (a Tolerance) with the limits given on the command line."""
    import dataclasses

    changes = {k: v for k, v in {"atol": atol, "min_cosine": min_cosine}.items() if v is not None}
    return dataclasses.replace(base, name=f"{base.name}+custom", **changes)
