"""How the report's figures draw: one colour and one marker per method and per model family, the same in every
figure of a report; a line style per hidden size; log axes whose tick labels never collide; titles kept whole.

On the figures against bytes, a combination (`replicas.combination`) keeps its base method's or family's colour: a
HashedNet pruned by a method takes that method's marker, a quantized model its quantization as a marker (`k5`), and
each network (`replicas.net`) its line style (a one-layer net the line of its hidden size, deeper nets the next).

The paper's methods and the families have fixed colours. The other methods the package ships (conf/method/) take the
next colours and markers of `OTHER_COLOURS` and `OTHER_MARKERS` by sorted name, so they too read the same whatever a
store holds; then a method or family of one's own, by sorted name over the store (the same in every figure of a
report).
"""
import textwrap
from dataclasses import dataclass, field

import pandas as pd
from matplotlib import colormaps
from matplotlib.lines import Line2D
from matplotlib.ticker import EngFormatter, LogLocator, NullFormatter

from ..replicas import net
from ..resources import CONF_DIR
from .paper import other_methods

# style key -> (colour, marker): the paper's methods, then the model families ("dense": unpruned MLPs of every width)
FIXED = {"magl1": ("tab:blue", "o"), "magl2": ("tab:orange", "s"), "obd": ("tab:green", "^"),
         "hashednet": ("tab:purple", "D"), "convnet": ("tab:gray", "P"), "dense": ("tab:brown", "X")}  # fmt: skip
NAMES = {"hashednet": "HashedNet", "dense": "dense MLP (method=none)"}  # a dense curve: a point per width
# tab10's colours that FIXED leaves (red, pink, olive, cyan), then Dark2's; the markers none of FIXED uses
OTHER_COLOURS = tuple(colormaps["tab10"].colors[i] for i in (3, 6, 8, 9)) + tuple(colormaps["Dark2"].colors)
OTHER_MARKERS = "v<>h*pd8H"
LINES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)))  # per hidden size, widest first; per ConvNet variant
GREY = "0.35"  # the legend's entries for a line style or for the paper's markers, which every colour shares
TICKS = ((1, 2, 5), (1, 3), (1,))  # log-axis labels at these multiples of each power of 10, the first that fits
TITLE_WIDTH = 110  # characters per title line at the figures' 9 pt on their 8 in


@dataclass(frozen=True)
class Styles:
    """What each curve of a report is drawn with: `marks` per style key (a method, a family), `lines` per hidden
    size, `fronts` per ConvNet variant and `nets` per network of the figures against bytes."""

    marks: dict
    lines: dict
    fronts: dict
    nets: dict = field(default_factory=dict)

    def combination_mark(self, combination: str) -> tuple:
        """A combination's colour and marker: its base's colour (`magl1`, `hashednet`, `dense`); the marker of the
        pruning method a HashedNet is pruned by, and of a quantization the quantization itself (`k5`, as text)."""
        base, *more = combination.split("+")
        colour, marker = self.marks[base]
        for part in more:
            marker = self.marks[part][1] if part in self.marks else f"${part}$"
        return colour, marker

    def legend(self, drawn: list[dict], paper: bool) -> list[Line2D]:
        """The legend of a figure whose curves' attrs are `drawn`: a filled marker per method or family (its colour),
        a grey line per hidden size, a dashed line per ConvNet front, and the paper's hollow marker when it is drawn:
        a handful of entries however many curves cross them."""
        keys = {c["style"] for c in drawn if c["style"] != "convnet" and "combination" not in c}
        handles = [Line2D([], [], color=self.marks[k][0], marker=self.marks[k][1], ls="none", label=name(k))
                   for k in self.marks if k in keys]  # fmt: skip
        order = list(self.marks)  # a combination after its base, the bases in the order of their marks
        combinations = sorted({c["combination"] for c in drawn if "combination" in c},
                              key=lambda k: (order.index(k.split("+")[0]), k))  # fmt: skip
        handles += [Line2D([], [], color=colour, marker=marker, ls="none", label=NAMES.get(k, k))
                    for k in combinations for colour, marker in [self.combination_mark(k)]]  # fmt: skip
        handles += [Line2D([], [], color=self.marks["convnet"][0], marker=self.marks["convnet"][1], ms=4,
                           ls=self.fronts[c["variant"]], label=f"ConvNet front ({c['variant']})")
                    for c in drawn if c["style"] == "convnet"]  # fmt: skip
        hidden = sorted({c["hidden"] for c in drawn if "hidden" in c}, reverse=True)
        handles += [Line2D([], [], color=GREY, ls=self.lines[h], label=f"{h:g} hidden") for h in hidden]
        handles += [Line2D([], [], color=GREY, ls=self.nets[n], label=n) for n in self.nets
                    if n in {c.get("net") for c in drawn}]  # fmt: skip
        if paper:
            handles.append(Line2D([], [], color=GREY, marker="o", mfc="white", ls="none",
                                  label="paper: mean ± std of its 5 runs"))  # fmt: skip
        return handles


def legend_below(fig, handles: list, most: int = 4):
    """The legend under the axes in as many columns (at most `most`) as fit the figure's width: long labels (a
    ConvNet variant's) take fewer columns rather than run off its edges."""
    renderer = fig.canvas.get_renderer()
    for ncols in range(most, 0, -1):
        legend = fig.legend(handles=handles, loc="outside lower center", ncols=ncols, fontsize=8)
        if ncols == 1 or legend.get_window_extent(renderer).width <= fig.bbox.width:
            return legend
        legend.remove()


def dense_key(method: str) -> str:
    """The style key of the dense MLPs trained as `method` trains (ratio 1): its colour and the dense marker;
    "dense" for method=none's."""
    return "dense" if method == "none" else f"dense:{method}"


def name(key: str) -> str:
    """A style key's legend entry."""
    if key.startswith("dense:"):
        return f"dense MLP, as {key.removeprefix('dense:')} trains"
    return NAMES.get(key, key)


def shipped_methods() -> list[str]:
    """The pruning methods the package ships but the paper's (and `none`, no pruning), sorted."""
    return sorted({p.stem for p in (CONF_DIR / "method").glob("*.yaml")} - FIXED.keys() - {"none"})


def styles(runs: pd.DataFrame) -> Styles:
    """The report's styles, from every run it reads (not one figure's), so that each figure draws alike."""
    shipped = shipped_methods()
    sized = set(runs.loc[runs["role"] == "sized", "model"])
    others = shipped + sorted((set(other_methods(runs)) | sized) - FIXED.keys() - set(shipped))
    marks = FIXED | {name: (OTHER_COLOURS[i % len(OTHER_COLOURS)], OTHER_MARKERS[i % len(OTHER_MARKERS)])
                     for i, name in enumerate(others)}  # fmt: skip
    marks |= {dense_key(m): (marks.get(m, FIXED["dense"])[0], FIXED["dense"][1])
              for m in sorted(set(runs.loc[(runs["role"] == "pruned") & (runs["ratio"] == 1.0), "method"]))}  # fmt: skip
    per_width = (runs["role"] == "sized") | (runs["role"] == "pruned") & (runs["ratio"] < 1)  # dense: a curve apiece
    hidden = sorted(set(runs.loc[per_width, "hidden"].dropna()), reverse=True)
    fronts = sorted(set(runs.loc[runs["role"] == "reference", "protocol"]))
    single = [net({"hidden": h}) for h in hidden]
    nets = single + sorted(set(runs.loc[per_width, "net"]) - set(single) - {""})  # a deeper net after the one-layer
    return Styles(marks, {h: LINES[i % len(LINES)] for i, h in enumerate(hidden)},
                  {v: LINES[1:][i % (len(LINES) - 1)] for i, v in enumerate(fronts)},
                  {n: LINES[i % len(LINES)] for i, n in enumerate(nets)})  # fmt: skip


def collide(labels, pad: float = 2.0) -> bool:
    """Whether any two of the drawn tick `labels` (left to right) come within `pad` pixels."""
    boxes = sorted((t.get_window_extent() for t in labels if t.get_visible() and t.get_text()), key=lambda b: b.x0)
    return any(b.x0 < a.x1 + pad for a, b in zip(boxes, boxes[1:]))


def log_x(ax) -> None:
    """A log x axis labelled `300`, `1k`, `20k`, `1M` at the first multiples of `TICKS` whose labels fit side by
    side once the figure is laid out; minor ticks unlabelled (gridlines only)."""
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.xaxis.set_minor_formatter(NullFormatter())
    for subs in TICKS:
        ax.xaxis.set_major_locator(LogLocator(subs=subs))
        ax.figure.draw_without_rendering()
        if not collide(ax.get_xticklabels()):
            return


def title(text: str) -> str:
    """`text` with each line wrapped to the figure's width, so that no title runs off it."""
    return "\n".join(textwrap.fill(line, TITLE_WIDTH) for line in text.splitlines())
