"""``verify()``: check a bundle completely, hashes and outputs, without running new code."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tether.bundles.fingerprint import (
    FingerprintComparison,
    compare_fingerprints,
    format_comparison,
    load_fingerprint,
    recompute_like,
)
from tether.bundles.save import library_versions
from tether.errors import TetherError, VerificationError
from tether.models.inspection import inspect, sha256_cached
from tether.models.loading import check_custom_code, load_checkpoint
from tether.models.manifest import (
    DOC_FILES,
    Manifest,
    bundle_spec,
    check_bundle_class,
    check_predicted_class,
    escapes,
    present_files,
    read_manifest,
    resolve_bundle,
)
from tether.models.spec import read_token_env
from tether.tolerances import Tolerance


@dataclass
class VerificationReport:
    """What verify() found: file hashes, the reload, and the recomputed fingerprint."""

    bundle: str
    saved_class: str
    loaded_class: str | None = None
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    docs_changed: list[str] = field(default_factory=list)
    load_error: str | None = None
    comparison: FingerprintComparison | None = None
    versions_changed: dict[str, list[str | None]] = field(default_factory=dict)
    #: The hub commit checked, when the bundle was given as a repo id.
    commit: str | None = None

    @property
    def ok(self) -> bool:
        return (
            not (self.changed or self.missing or self.extra or self.load_error)
            and self.comparison is not None
            and self.comparison.ok
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["comparison"] = self.comparison.to_dict() if self.comparison else None
        data["ok"] = self.ok
        return data

    def format(self) -> str:
        """A readable report: verdict first, then what differs."""
        lines = [f"{'OK' if self.ok else 'FAILED'}: bundle {self.bundle}"]
        lines.append(
            f"class: saved as {self.saved_class}"
            + (f", loaded as {self.loaded_class}" if self.loaded_class else "")
        )
        if not (self.changed or self.missing or self.extra):
            lines.append("files: all sha256 match the manifest")
        for label, names in (
            ("changed", self.changed),
            ("missing", self.missing),
            ("extra (not in the manifest)", self.extra),
            ("model card changed (does not affect outputs)", self.docs_changed),
        ):
            if names:
                lines.append(f"files {label}: {', '.join(names)}")
        if self.load_error:
            lines.append(f"reload: {self.load_error}")
        if self.comparison is not None:
            lines.append(format_comparison(self.comparison))
        for name, (saved, now) in self.versions_changed.items():
            lines.append(f"note: {name} {saved} when saved, {now} now")
        return "\n".join(lines)

    def raise_for_status(self) -> None:
        """Raise VerificationError with the report unless the bundle verified."""
        if not self.ok:
            raise VerificationError(self.format())


def verify(
    path: str | Path,
    *,
    revision: str | None = None,
    tolerance: Tolerance | None = None,
    **overrides: Any,
) -> VerificationReport:
    """Check a bundle: every file's sha256, then reload and recompute its fingerprint.

    ``path`` is a bundle directory or the hub repo id of one (``org/name``, at
    ``revision``: a branch, tag or commit; downloaded into the HF cache, or taken from
    it offline); the report names the commit that was checked.

    ``overrides`` change spec fields for the reload (``device="cuda"``, or a class, which
    fails unless it builds the saved class; ``trust_remote_code=True`` for a bundle
    with custom code, which is never trusted from its own manifest). ``tolerance``
    defaults to the manifest's. Code that changed is never run: the reload is skipped
    and the report says why.

    Raises:
        UntrustedCustomCodeError: the bundle carries custom code and the caller did
            not pass ``trust_remote_code=True``.
    """
    token_env = overrides.get("token_env")
    root, commit = resolve_bundle(
        path,
        revision,
        token=read_token_env(str(token_env)) if token_env else None,
        load_kwargs=overrides.get("load_kwargs"),
    )
    manifest = read_manifest(root)
    report = VerificationReport(
        f"{path}@{commit}" if commit else str(root), manifest.class_name, commit=commit
    )
    _compare_files(root, manifest, report)
    now = library_versions()
    report.versions_changed = {
        k: [v, now.get(k)] for k, v in manifest.versions.items() if now.get(k) != v
    }
    spec = bundle_spec(root, **overrides)
    touched = report.changed + report.missing + report.extra
    if any(name.endswith(".py") for name in touched) or (
        spec.trust_remote_code and "config.json" in touched
    ):
        report.load_error = (
            "not reloaded: the custom code (or the config that points to it) differs from "
            "what was saved, and tether does not run code it could not verify"
        )
        return report
    # Verifying is not trusting: a bundle's custom code runs only when the caller says
    # so (trust_remote_code=True), as for load(). Raised, not reported: nothing was
    # checked against the outputs, and the user has a decision to make.
    check_custom_code(spec, inspect(str(root)))
    try:
        expected = load_fingerprint(root / manifest.fingerprint["file"])
        # Every file is hashed above: reload even a changed bundle, to report how its
        # outputs changed (load() would refuse it), with the class check kept.
        check_predicted_class(spec, root, manifest)
        loaded = load_checkpoint(spec)
        check_bundle_class(manifest, loaded)
    except TetherError as exc:
        report.load_error = f"{type(exc).__name__}: {exc.message}"
        return report
    report.loaded_class = type(loaded.model).__name__
    actual = recompute_like(loaded, expected)
    report.comparison = compare_fingerprints(expected, actual, tolerance or manifest.tolerance)
    return report


def _compare_files(root: Path, manifest: Manifest, report: VerificationReport) -> None:
    present = present_files(root)
    for rel, meta in sorted(manifest.files.items()):
        if rel not in present or not (root / rel).is_file():
            report.missing.append(rel)
        elif escapes(root, rel):  # a symlink out of the bundle is never its file
            report.changed.append(rel)
        elif sha256_cached(root / rel) != meta["sha256"]:
            (report.docs_changed if rel in DOC_FILES else report.changed).append(rel)
    report.extra = sorted(present - set(manifest.files))
