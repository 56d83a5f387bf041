"""report.md and the plots of a built data set (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

MAX_BARS = 40  # labels a bar chart shows at most


def cell(value: object) -> str:
    """`value` as one markdown table cell: `|` escaped, line breaks folded, so no cell text can add a
    column or a row."""
    return " ".join(str(value).replace("\\", "\\\\").replace("|", "\\|").split())


def report_md(report: dict[str, Any]) -> str:
    lines = ["# devloop dataset", "", f"Attempts read: {report['attempts']}", ""]
    lines += ["| stage | train | valid |", "|---|---:|---:|"]
    for stage, s in report["stages"].items():
        lines.append(f"| {cell(stage)} | {s['kept']['train']} | {s['kept']['valid']} |")
    lines += ["", "## Dropped, by the first rule failed", "", "| stage | rule | attempts |", "|---|---|---:|"]
    for stage, s in report["stages"].items():
        lines += [f"| {cell(stage)} | {cell(why)} | {n} |" for why, n in s["dropped"].items()]
    lines += ["", "## Rejections per rule (every rule an attempt failed)", "",
              "| stage | rule | attempts |", "|---|---|---:|"]  # fmt: skip
    for stage, s in report["stages"].items():
        lines += [f"| {cell(stage)} | {cell(why)} | {n} |" for why, n in s["rejections"].items()]
    lines += [
        "",
        "## Attempts kept per repository",
        "",
        "| stage | repository | attempts |",
        "|---|---|---:|",
    ]
    for stage, s in report["stages"].items():
        lines += [f"| {cell(stage)} | {cell(r)} | {n} |" for r, n in s["per_repo"].items()]
    lines += ["", "## Other outputs", "", "| file | rows |", "|---|---:|"]
    for name, n in sorted(report["outputs"].items()):
        lines.append(f"| {cell(name)} | {n} |")
    if report.get("mistral_invalid"):
        lines += ["", f"Rows mistral-common refused (left out): {len(report['mistral_invalid'])}"]
        lines += [f"- {cell(x)}" for x in report["mistral_invalid"][:20]]
    lines += ["", "## Rules", "", "| stage | rule | value |", "|---|---|---|"]
    for stage, s in report["stages"].items():
        lines += [f"| {cell(stage)} | {cell(k)} | {cell(v)} |" for k, v in sorted(s["rules"].items())]
    lines += ["", "## Plots", ""]
    lines += [f"![{p}](plots/{p})" for p in report.get("plots", [])]
    return "\n".join(lines) + "\n"


def plots(report: dict[str, Any], tokens: dict[str, list[int]], out: Path) -> list[str]:
    """token_lengths.png, per_repo.png and rejections.png under out/plots; their names. The PNGs carry
    no software/date metadata, so a re-run writes the same bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    out.mkdir(parents=True, exist_ok=True)
    stages = list(report["stages"])
    meta = {"Software": None}
    names = []

    fig, ax = plt.subplots(figsize=(7, 4))
    data = [tokens.get(s, []) for s in stages]
    if any(data):
        lo, hi = min(min(d) for d in data if d), max(max(d) for d in data if d)
        # One length (or nearly): bins over a range wide enough to see and for whole-number ticks.
        span = (lo - 5, hi + 5) if hi - lo < 10 else None
        ax.hist(
            [d for d in data],
            bins=10 if span else 20,
            range=span,
            label=[
                f"{s} ({len(d)} row{'' if len(d) == 1 else 's'})" for s, d in zip(stages, data, strict=True)
            ],
        )
        ax.legend()
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # token counts are whole numbers
    else:
        ax.text(0.5, 0.5, "no rows kept", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("tokens per row (approx., characters / 3)")
    ax.set_ylabel("rows")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Token lengths of the rows kept")
    fig.tight_layout()
    fig.savefig(out / "token_lengths.png", dpi=80, metadata=meta)
    plt.close(fig)
    names.append("token_lengths.png")

    for name, key, title, xlabel in (
        ("per_repo.png", "per_repo", "Attempts kept per repository", "attempts"),
        ("rejections.png", "rejections", "Attempts failing each rule", "attempts"),
    ):
        labels = sorted({k for s in stages for k in report["stages"][s][key]})
        if len(labels) > MAX_BARS:  # hundreds of repositories: the largest, the rest counted in the title
            total = {k: sum(report["stages"][s][key].get(k, 0) for s in stages) for k in labels}
            shown = sorted(sorted(labels, key=lambda k: (-total[k], k))[:MAX_BARS])
            title = f"{title} (the {MAX_BARS} largest of {len(labels)})"
            labels = shown
        # Constrained layout with the legend outside below the axes: no gap however tall the chart is.
        fig, ax = plt.subplots(
            figsize=(7, max(3.0, 0.3 * len(labels) * len(stages) + 1.6)), layout="constrained"
        )
        height = 0.8 / max(1, len(stages))
        for j, s in enumerate(stages):
            values = [report["stages"][s][key].get(k, 0) for k in labels]
            ax.barh([i + j * height for i in range(len(labels))], values, height=height, label=s)
        ax.set_yticks([i + height * (len(stages) - 1) / 2 for i in range(len(labels))], labels)
        ax.invert_yaxis()
        ax.set_title(title)
        if not labels:  # an empty chart: a plain statement, no axis or legend for bars that are not there
            ax.text(0.5, 0.5, "none", ha="center", va="center", transform=ax.transAxes)
            ax.set_xticks([])
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel(xlabel)
            fig.legend(loc="outside lower center", ncol=len(stages), frameon=False)
        fig.savefig(out / name, dpi=80, metadata=meta)
        plt.close(fig)
        names.append(name)
    return names
