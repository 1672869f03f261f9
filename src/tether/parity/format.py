"""Render a ParityReport: a plain-text table for terminals and CI logs, and a PNG plot.

Kept apart from ``compare.py`` so the computation reads on its own; matplotlib is an
optional extra (``tether[plot]``) imported only when a plot is asked for.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from tether.judging import ROUNDING_ULPS, Verdict

if TYPE_CHECKING:
    from tether.parity.compare import ParityReport

_NAME_WIDTH = 56


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    if x == 0:
        return "0"
    if math.isinf(x):
        return "inf"
    return f"{x:.3e}"


def _bar(max_abs: float) -> str:
    """A log-scale bar: one block per decade above 1e-8, so growth by depth is visible."""
    if max_abs <= 0:
        return ""
    return "#" * max(1, min(12, int(math.log10(max_abs) + 9)))


def _ulps(item: Verdict) -> str:
    """Max abs diff in float32 ulps at the tensor's largest |A|, and what that reads as."""
    ulps = item.ulps
    if item.level == "exact":
        return f"{'0':>8} exact"
    text = "inf" if math.isinf(ulps) else f"{ulps:.0f}" if ulps < 1e5 else f"{ulps:.1e}"
    return f"{text:>8} {item.level}"


def _row(item: Verdict, ok: bool | None, name_width: int = _NAME_WIDTH) -> str:
    """One table row; ``ok`` None means the verdict does not check this row."""
    name = item.name if len(item.name) <= name_width else "…" + item.name[-name_width + 1 :]
    if item.shape_mismatch:
        return f"  {name:<{name_width}} shapes differ: {item.shape_mismatch}"
    return (
        f"  {name:<{name_width}} {_num(item.max_abs):>10} {_num(item.max_rel):>10} "
        f"{_num(item.mean_abs):>10} {item.cos_min:>10.6f} {item.cos_mean:>10.6f} "
        f"{_ulps(item):<17} {'-' if ok is None else 'ok' if ok else 'FAIL':<4}"
    )


def _header(first: str, name_width: int = _NAME_WIDTH) -> str:
    return (
        f"  {first:<{name_width}} {'max abs':>10} {'max rel':>10} {'mean abs':>10} "
        f"{'cos min':>10} {'cos mean':>10} {'f32 ulps':>8} {'level':<8} res."
    )


def _level_words(item: Verdict) -> str:
    if item.level == "rounding":
        return "at the level of float32 rounding, so a tolerance question, not a bug"
    return "beyond float32 rounding: a real difference"


def format_report(report: ParityReport, all_modules: bool = False) -> str:
    tol = report.tolerance
    lines = [
        f"A: {report.a}  [{report.kind_a}]",
        f"B: {report.b}  [{report.kind_b}]",
        f"{report.texts} texts, tolerance {tol.describe()}, {report.seconds:.1f} s",
        "",
        "Final outputs (padding excluded; cosine per text; f32 ulps: max abs diff in float32 ulps",
        f"at the largest |A|, 'rounding' up to {ROUNDING_ULPS:g}, 'beyond' above)",
        _header("output"),
    ]
    for out in report.outputs:
        lines.append(_row(out, out.passes(cosine=report.embedding is None)))
    if report.embedding:  # the verdict checks only its cosine (see compare._verdict)
        emb = report.embedding
        checked = tol.min_cosine is not None
        lines.append(_row(emb, not emb.cosine_failures if checked else None))
    if report.topk:
        t = report.topk
        lines += [
            "",
            f"Nearest neighbours (top-{t.k} by cosine among the {report.texts} texts): "
            f"mean overlap {t.mean_overlap:.3f}, min {t.min_overlap:.3f}; "
            f"same nearest neighbour for {t.top1_agreement:.1%} of texts",
        ]
    if report.modules:
        shown = report.modules if all_modules else report.layers
        first = report.first_divergence
        if first and first not in shown:
            shown = sorted([*shown, first], key=report.modules.index)
        lines += ["", "Error by depth (A's execution order; bar = decades of max abs diff)"]
        lines.append(_header("module") + "  growth")
        for item in shown:
            mark = " <- first divergence" if first is not None and item is first else ""
            lines.append(f"{_row(item, item.passed)}  {_bar(item.max_abs):<12}{mark}")
        if first:
            types = (
                f"{first.type_a} in both"
                if first.type_a == first.type_b
                else f"{first.type_a} in A, {first.type_b} in B"
            )
            lines += [
                "",
                f"First divergence: {first.name} ({types}): max abs diff "
                f"{_num(first.max_abs)} ({_ulps(first).split()[0]} float32 ulps at its "
                f"largest value {first.max_ref:.3g}: {_level_words(first)}), "
                f"cosine min {first.cos_min:.6f}.",
            ]
        else:
            lines += ["", f"No module exceeds the tolerance ({len(report.modules)} compared)."]
        for side, names in (("A", report.only_in_a), ("B", report.only_in_b)):
            if names:
                more = f" (+{len(names) - 8} more)" if len(names) > 8 else ""
                lines.append(f"Only in {side}: {', '.join(names[:8])}{more}")
    for note in report.notes:
        lines.append(f"note: {note}")
    lines.append("")
    if report.passed:
        lines.append(f"PASS: B matches A within {tol.name}.")
    else:
        lines.append(f"FAIL: B does not match A within {tol.name}:")
        lines += [f"  - {f}" for f in report.failures]
    return "\n".join(line.rstrip() for line in lines)


def plot_report(report: ParityReport, path: str | Path) -> Path:
    """Save a PNG of max abs diff (log scale) and 1 - cosine by depth."""
    from tether.errors import ParityError, require_extra

    rows = report.layers or report.modules
    first = report.first_divergence
    if first is not None and first not in rows:
        rows = sorted([*rows, first], key=report.modules.index)
    if not rows:
        raise ParityError(
            "There is no layer-by-layer data to plot (one side is not a PyTorch model).",
            "Compare two PyTorch models, or leave out plot=.",
        )
    require_extra("matplotlib", "plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = list(range(len(rows)))
    floor = 1e-12
    fig, ax = plt.subplots(figsize=(max(8.0, len(rows) * 0.28), 4.5))
    ax.semilogy(x, [max(r.max_abs, floor) for r in rows], marker="o", label="max abs diff")
    ax.semilogy(x, [max(r.mean_abs, floor) for r in rows], marker=".", label="mean abs diff")
    ax.semilogy(x, [max(1 - r.cos_min, floor) for r in rows], marker="x", label="1 - cos min")
    if report.tolerance.atol:
        ax.axhline(report.tolerance.atol, color="grey", linestyle="--", label="atol")
    if first is not None:
        ax.axvline(rows.index(first), color="red", alpha=0.5, label="first divergence")
    ax.set_xticks(x, [r.name for r in rows], rotation=90, fontsize=7)
    ax.set_title(f"{report.b} vs {report.a}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
