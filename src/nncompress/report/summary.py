"""`summary.md`: the paper's conclusions re-tested on our runs (see `claims`), the runs read, the tables of the
pruning methods the paper did not test, the model claims again at equal bytes on disk, and the best at each byte
budget (`ondisk`)."""
from pathlib import Path

import pandas as pd

from . import claims, ondisk
from .stats import ALPHA, compressed_protocols, variant_data, variants
from .tables import markdown, method_tables


def bytes_section(runs: pd.DataFrame, protocols) -> list[str]:
    """summary.md's comparison with ConvNets at equal bytes on disk instead of equal parameters."""
    lines = ["", "## At equal bytes on disk", "",
             "The two claims comparing models, re-tested with size counted as the artefact's bytes (`export=true`) "
             "instead of parameters: a pruned weight carries its index (CSR), a hashed weight carries none, ConvNets "
             "and dense MLPs are stored dense. Same tests as above, on the replicas that have artefacts.", ""]  # fmt: skip
    with_bytes = runs[runs["bytes"].notna()]
    if with_bytes.empty:
        return lines + ["Not tested: no stored replica has an artefact (train with `export=true`, or run "
                        "`python -m nncompress.artefact.export` on runs saved with `save_model=true`)."]  # fmt: skip
    table = claims.comparisons(with_bytes, size="bytes")
    sized = [claims.PRUNING_VS_CONVNET, claims.CONVNET_VS_HASHEDNET]
    verdicts = claims.verdicts(table, protocols)
    lines.append(verdicts[verdicts["claim"].isin(sized)].to_markdown(index=False))
    if not table.empty and table["claim"].isin(sized).any():
        lines += ["", table[table["claim"].isin(sized)].to_markdown(index=False, floatfmt=".3g")]
    return lines


def figures_section(missing: list[str]) -> list[str]:
    """summary.md's account of the figures not drawn (see `figures.write_figures`), one line each."""
    lines = ["", "## Figures not drawn", "",
             "A figure is drawn only where its protocol variant has runs of its own to show: one holding nothing, or "
             "only the ConvNet fronts every variant shares, would be a placeholder or a copy of another."]  # fmt: skip
    return lines + ["", *(f"- {line}" for line in missing)] if missing else lines + ["", "None: every figure has runs."]


def write_summary(runs: pd.DataFrame, out: Path, missing: list[str] | None = None) -> Path:
    """Write `out/summary.md`; with `missing` (`figures.write_figures`' lines), why each figure not drawn is not."""
    table = claims.comparisons(runs)
    protocols = compressed_protocols(runs)
    regenerated = sorted(set(runs.loc[runs["source"] == "regenerated", "dataset"]))
    lines = [
        "# Summary: the paper's conclusions re-tested on our runs",
        "",
        f"Read from {len(runs)} stored replicas. A = the side the paper says is at least as good; A - B in accuracy "
        "points with its 95 % confidence interval. Methods compared in one cell share each seed's initialisation and "
        "data order, so they are paired by seed (paired t-test); ConvNets and MLPs are not (Welch t-test). p-values "
        f"are Holm-adjusted over the tested cells of each claim and protocol; verdicts at the {ALPHA:.0%} level. "
        f"High compression = ratio <= {claims.HIGH_COMPRESSION}. ConvNets are compared at equal or smaller parameter "
        "count, choosing the best Pareto-front setting (selected on validation accuracy when available). A cell with "
        "fewer than two seeds on a side is not tested. Replicas that learned nothing (training accuracy within 1 "
        "point of always answering the commonest class) are kept, being what their method gave; `at chance` counts "
        "them per cell. A pruning method the paper did not test is A in a claim of its "
        "own against each of the paper's (`method >= paper method`), in every cell they share. Pruning is set against "
        "the smallest HashedNet at least as large (paired when both trained under one protocol at one ratio) and "
        "against the unpruned MLP of the nearest size (within a factor of 2) trained with the same regularizer under "
        "the same protocol (Welch; the comparison names the method it was trained as: `obd vs dense h10 (magl2)`).",
        "",
        "Datasets regenerated from MNIST rather than the original files: " + (", ".join(regenerated) or "none") + ".",
        "",
        "## Verdicts",
        "",
        "A claim fails where a cell contradicts it significantly; else it holds where at least one cell supports it "
        "significantly, and is not contradicted where cells were tested and none differs significantly.",
        "",
        claims.verdicts(table, protocols).to_markdown(index=False),
        "",
        "## Runs read",
        "",
        "Replicas are pooled only within one protocol variant (settings as shown) and one dataset's data.",
        "",
        variants(runs).to_markdown(index=False) if len(runs) else "none",
    ]
    if not table.empty:
        lines += ["", "## Every comparison", "", table.to_markdown(index=False, floatfmt=".3g")]
        disagree = table[(table["verdict"] == "CONTRADICTS") & table["claim"].isin(claims.CLAIMS)]
        lines += ["", "## Where we disagree with the paper (significant after Holm)", ""]
        for _, r in disagree.iterrows():
            lines.append(f"- {r['claim']} ({r['comparison']}): {r['dataset']}, ratio {r['ratio']:g}, "
                         f"{r['net'].removeprefix('h')} hidden, protocol {r['protocol']}: A - B = {r['A - B']:.2f} points "
                         f"[{r['ci low']:.2f}, {r['ci high']:.2f}], p (Holm) = {r['p (Holm)']:.3g}"
                         + (f"; {r['at chance']} of its replicas at chance" if r["at chance"] else ""))  # fmt: skip
        if disagree.empty:
            lines.append("- in no tested cell")
    # the paper's own tables are in tableN_<protocol>.md, beside its numbers
    others = [markdown(t, None, protocol, variant_data(runs, protocol))
              for protocol in protocols for t in method_tables(runs, protocol).values()]  # fmt: skip
    lines += ["", *others] if others else []
    lines += bytes_section(runs, protocols) + ondisk.markdown(runs)
    lines += figures_section(missing) if missing is not None else []
    path = out / "summary.md"
    path.write_text("\n".join(lines) + "\n")
    return path
