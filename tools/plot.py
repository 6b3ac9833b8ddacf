#!/usr/bin/env python3
"""Re-draw the figures of a slurmlab metrics.h5 with matplotlib (for papers and notebooks).

The programs draw their own PNGs on the cluster (no Python needed there); this tool
re-draws the same data from metrics.h5 wherever h5py and matplotlib are installed
(Debian: python3-h5py python3-matplotlib, as env/debian.sh installs; or the project's
.venv, which sees them).

The figures the programs draw themselves are re-drawn as they drew them, from the same data:
  * logdet-histogram: histogram.png, the histogram of log det C with the exact theory's
    normal curve N(E, Var) scaled to the counts and the sample and theory means;
  * fit-regression: loss_curves.png (train and validation loss of every run, each run's
    best epoch marked), hubble.png (data with error bars, the network, the LambdaCDM fit
    and Einstein-de Sitter over the redshift grid) and residuals.png (data minus LambdaCDM).

Everything else, per HDF5 group (the root is the group "/"):
  * series: every 1-D numeric dataset of a group is a line in that group's line chart,
    against the group's "step" or "epoch" dataset when one of the same length exists,
    else against its index ("train/loss", "train/accuracy" -> train.png);
  * tables: a group with string columns (env-dump's "ranks" and "diagnostics") is drawn as
    a table (ranks-table.png) and printed as text;
  * matrices: every 2-D dataset is a heat map with a colour bar (confusion matrices,
    histograms per epoch), values printed in small matrices.
Root attributes (program, job id, ...) go into the titles.

Examples:
  tools/plot.py results/env-dump-42/metrics.h5            # everything, into .../plots/
  tools/plot.py metrics.h5 --list                          # what the file holds
  tools/plot.py metrics.h5 --group train --log-y --format pdf -o paper/
"""
import argparse
import os
import sys


# Column order of env-dump's rank table (its printed summary), then the GPU details.
TABLE_ORDER = ["rank", "index", "step", "epoch", "node", "node_index", "local_rank", "slurm_localid", "host", "pid",
               "cpu_affinity", "current_cpu", "cuda_visible_devices", "device", "gpu_name", "gpu_memory_bytes",
               "gpu_pci_bus", "gpu_uuid", "severity", "code", "message", "hint"]


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="tools/plot.py",
        description=__doc__.split("\n\n", 1)[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("metrics", help="a metrics.h5 written by a slurmlab program")
    parser.add_argument("-o", "--output-dir", help="where the figures go (default: plots/ beside the file)")
    parser.add_argument("-g", "--group", action="append", default=[],
                        help="only this group (repeatable), e.g. train or ranks; '/' is the root")
    parser.add_argument("--format", default="png", choices=["png", "pdf", "svg"], help="figure file format")
    parser.add_argument("--log-y", action="store_true", help="logarithmic y axis for the line charts")
    parser.add_argument("--dpi", type=int, default=120, help="resolution of PNG output (default 120)")
    parser.add_argument("--list", action="store_true", help="print the file's groups, datasets and attributes, draw nothing")
    return parser.parse_args(argv)


def text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        return text(value.item())
    return str(value)


def is_string_dataset(h5py, dataset):
    return h5py.check_string_dtype(dataset.dtype) is not None or dataset.dtype.kind in ("S", "U", "O")


def collect(h5py, f):
    """Groups of the file -> their 1-D numeric, 1-D string and 2-D datasets, in file order."""
    groups = {}

    def visit(name, obj):
        if not isinstance(obj, h5py.Dataset):
            return
        group = os.path.dirname(name) or "/"
        entry = groups.setdefault(group, {"series": {}, "strings": {}, "matrices": {}})
        base = os.path.basename(name)
        if obj.ndim == 1 and is_string_dataset(h5py, obj):
            entry["strings"][base] = [text(v) for v in obj[...]]
        elif obj.ndim == 1 and obj.dtype.kind in "iufb":
            entry["series"][base] = obj[...]
        elif obj.ndim == 2 and obj.dtype.kind in "iufb":
            entry["matrices"][base] = obj[...]

    f.visititems(visit)
    return groups


def list_file(h5py, f):
    def show_attributes(obj, indent):
        for key, value in obj.attrs.items():
            print(f"{indent}@{key} = {text(value)}")

    print("/")
    show_attributes(f, "  ")

    def visit(name, obj):
        indent = "  " * (name.count("/") + 1)
        if isinstance(obj, h5py.Dataset):
            kind = "string" if is_string_dataset(h5py, obj) else str(obj.dtype)
            print(f"{indent}{name}  {kind} {obj.shape}")
        else:
            print(f"{indent}{name}/")
        show_attributes(obj, indent + "  ")

    f.visititems(visit)


def file_title(f):
    parts = [text(f.attrs[k]) for k in ("program",) if k in f.attrs]
    if "job_id" in f.attrs and text(f.attrs["job_id"]):
        parts.append("job " + text(f.attrs["job_id"]))
    return " ".join(parts)


def output_stem(group, suffix=""):
    return ("root" if group == "/" else group.replace("/", "_")) + suffix


def save(plt, fig, out_dir, stem, args, **options):
    fig.tight_layout()
    path = os.path.join(out_dir, f"{stem}.{args.format}")
    fig.savefig(path, dpi=args.dpi, **options)
    plt.close(fig)
    return path


def draw_series(plt, group, series, title, args, out_dir):
    x_name = next((n for n in ("step", "epoch") if n in series), None)
    lines = {n: v for n, v in series.items() if n != x_name}
    if not lines:
        return None
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, values in lines.items():
        if x_name is not None and len(series[x_name]) == len(values):
            ax.plot(series[x_name], values, label=name, marker="o" if len(values) <= 30 else None, markersize=3)
        else:
            ax.plot(range(len(values)), values, label=name, marker="o" if len(values) <= 30 else None, markersize=3)
    ax.set_xlabel(x_name if x_name else "index")
    ax.set_ylabel(next(iter(lines)) if len(lines) == 1 else "value")
    if args.log_y:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend()
    ax.set_title(" - ".join(p for p in (title, group) if p))
    return save(plt, fig, out_dir, output_stem(group), args)


def table_text(columns):
    names = list(columns)
    rows = max(len(v) for v in columns.values())
    cells = [[text(columns[n][i]) if i < len(columns[n]) else "" for n in names] for i in range(rows)]
    widths = [max(len(n), *(len(r[k]) for r in cells)) if cells else len(n) for k, n in enumerate(names)]
    lines = ["  ".join(n.ljust(w) for n, w in zip(names, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def draw_table(plt, group, series, strings, title, args, out_dir):
    # The table: every 1-D column of the group, numbers and strings, in file order of kinds.
    columns = {}
    length = max(len(v) for v in strings.values())
    for name, values in series.items():
        if len(values) == length:
            columns[name] = [text(v) for v in values]
    columns.update({n: v for n, v in strings.items()})
    # HDF5 lists names alphabetically; order the columns as env-dump prints its table (the key
    # first), other columns after them in file order.
    known = {name: i for i, name in enumerate(TABLE_ORDER)}
    order = sorted(range(len(columns)), key=lambda i: (known.get(list(columns)[i], len(known)), i))
    columns = {list(columns)[i]: list(columns.values())[i] for i in order}
    print(f"{group}:")
    print(table_text(columns) if length else "  (empty)")
    print()
    if length == 0:
        return None
    names = list(columns)
    cells = [[columns[n][i] for n in names] for i in range(length)]
    width = min(24, max(6, 0.11 * sum(max(len(n), *(len(c) for c in columns[n])) + 2 for n in names)))
    fig, ax = plt.subplots(figsize=(width, 0.8 + 0.32 * (length + 1)))
    ax.axis("off")
    table = ax.table(cellText=cells, colLabels=names, loc="center", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    table.auto_set_column_width(list(range(len(names))))
    ax.set_title(" - ".join(p for p in (title, group) if p))
    return save(plt, fig, out_dir, output_stem(group, "-table"), args, bbox_inches="tight")


def draw_matrix(plt, group, name, matrix, title, args, out_dir):
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    image = ax.imshow(matrix, cmap="viridis", aspect="auto", interpolation="nearest")
    fig.colorbar(image, ax=ax)
    rows, cols = matrix.shape
    if rows * cols <= 400:
        mid = (matrix.max() + matrix.min()) / 2
        for i in range(rows):
            for j in range(cols):
                v = matrix[i, j]
                label = f"{v:.0f}" if float(v).is_integer() else f"{v:.2f}"
                ax.text(j, i, label, ha="center", va="center", fontsize=8, color="white" if v < mid else "black")
    ax.set_xlabel("column")
    ax.set_ylabel("row")
    full = name if group == "/" else f"{group}/{name}"
    ax.set_title(" - ".join(p for p in (title, full) if p))
    return save(plt, fig, out_dir, output_stem(full), args)


# ---- the programs' own figures -------------------------------------------------------

def attribute(obj, name, default=None):
    if name not in obj.attrs:
        return default
    value = obj.attrs[name]
    return text(value) if isinstance(value, (bytes, str)) else (value.item() if hasattr(value, "item") else value)


def logdet_figures(plt, f, title, args, out_dir):
    """histogram.png as logdet-histogram draws it; consumes the histogram and theory groups."""
    import numpy as np
    if "histogram/edges" not in f or "histogram/counts" not in f:
        return [], set()
    edges = f["histogram/edges"][...]
    counts = f["histogram/counts"][...]
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.stairs(counts, edges, fill=True, alpha=0.55, color="C0", label=f"log det C ({int(counts.sum())} samples)")
    notes = [f"histogram: {len(counts)} bins, {int(counts.sum())} samples"]
    if "theory" in f and "mean" in f["theory"].attrs and "variance" in f["theory"].attrs:
        mean, variance = float(attribute(f["theory"], "mean")), float(attribute(f["theory"], "variance"))
        sd = variance ** 0.5
        x = np.linspace(min(edges[0], mean - 4 * sd), max(edges[-1], mean + 4 * sd), 400)
        # Expected counts per bin: samples x bin width x the normal density.
        scale = counts.sum() * np.diff(edges).mean()
        ax.plot(x, scale * np.exp(-0.5 * ((x - mean) / sd) ** 2) / (sd * (2 * np.pi) ** 0.5), color="C3", lw=2,
                label=f"theory N({mean:.4g}, {sd:.3g}\u00b2)")
        ax.axvline(mean, color="C3", ls="--", lw=1.2, label="theory mean")
        notes.append(f"theory N({mean:.6g}, {variance:.6g})")
    if "summary" in f and "mean" in f["summary"].attrs:
        sample_mean = float(attribute(f["summary"], "mean"))
        ax.axvline(sample_mean, color="C0", ls="-.", lw=1.2, label="sample mean")
        notes.append(f"sample mean {sample_mean:.6g}")
    dim, eta = attribute(f, "dim"), attribute(f, "eta")
    ax.set_xlabel("log det C")
    ax.set_ylabel("matrices per bin")
    ax.set_title(f"{title}: d = {dim}, eta = {eta}" if dim is not None else title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    path = save(plt, fig, out_dir, "histogram", args)
    print(f"{path}: " + "; ".join(notes))
    return [path], {"histogram", "theory"}


def fit_figures(plt, f, title, args, out_dir):
    """loss_curves, hubble and residuals as fit-regression draws them."""
    import numpy as np
    written, used = [], set()
    # Runs are named by what they vary: "hidden-16" (the width sweep), "hidden-8-features-3"
    # (the first 3 features only, for the feature gains).
    runs = sorted(f["runs"].items(), key=lambda r: (int(attribute(r[1], "hidden", 0)), -int(attribute(r[1], "features", 0)))) \
        if "runs" in f else []
    if runs:
        fig, ax = plt.subplots(figsize=(8, 5))
        notes = []
        for k, (name, run) in enumerate(runs):
            colour = f"C{k % 10}"
            train, val = run["train_loss"][...], run["val_loss"][...]
            epochs = np.arange(1, len(train) + 1)
            ax.plot(epochs, train, color=colour, ls="--", lw=1, label=f"train ({name})")
            ax.plot(epochs, val, color=colour, lw=1.6, label=f"validation ({name})")
            best = attribute(run, "best_epoch")
            if best is not None and 0 <= int(best) < len(val):
                ax.plot([int(best) + 1], [val[int(best)]], "o", color=colour, ms=7, mec="black")
                notes.append(f"{name}: best epoch {int(best) + 1}, validation loss {val[int(best)]:.4g}")
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss (MSE)")
        ax.set_title(f"{title}: loss curves (o: lowest validation loss)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8 if len(runs) <= 4 else 6, ncol=1 if len(runs) <= 4 else 2)
        written.append(save(plt, fig, out_dir, "loss_curves", args))
        print(f"{written[-1]}: " + "; ".join(notes))
        used |= {"runs/" + name for name, _ in runs} | {"epochs"}
    if "data/redshift" in f and "data/target" in f and "grid/z" in f:
        z, y = f["data/redshift"][...], f["data/target"][...]
        error = f["data/error"][...] if "data/error" in f else None
        column = attribute(f["data/redshift"], "column", "z")
        target = attribute(f, "target", "target")
        grid_z = f["grid/z"][...]
        log_x = bool((z > 0).all() and (grid_z > 0).all())
        curves = [(name, label, colour) for name, label, colour in (
            ("network", "network", "C1"), ("lcdm", "flat LambdaCDM fit", "C2"),
            ("einstein_de_sitter", "Einstein-de Sitter (no dark energy)", "C3")) if f"grid/{name}" in f]
        fig, ax = plt.subplots(figsize=(8, 5.5))
        has_errors = error is not None and np.isfinite(error).all() and (error > 0).any()
        ax.errorbar(z, y, yerr=error if has_errors else None, fmt=".", ms=2, color="0.45", ecolor="0.8",
                    elinewidth=0.6, label=f"data ({len(z)} supernovae)")
        for name, label, colour in curves:
            ax.plot(grid_z, f[f"grid/{name}"][...], color=colour, lw=2, label=label)
        if log_x:
            ax.set_xscale("log")
        ax.set_xlabel(column)
        ax.set_ylabel(target)
        ax.set_title(f"{title}: Hubble diagram")
        ax.grid(True, alpha=0.3)
        ax.legend()
        written.append(save(plt, fig, out_dir, "hubble", args))
        print(f"{written[-1]}: {len(z)} points, curves " + ", ".join(n for n, _, _ in curves))
        reference = next((n for n in ("lcdm", "network") if f"grid/{n}" in f), None)
        if reference and log_x:
            order = np.argsort(grid_z)
            model = np.interp(np.log(z), np.log(grid_z[order]), f[f"grid/{reference}"][...][order])
            fig, ax = plt.subplots(figsize=(8, 4))
            ax.errorbar(z, y - model, yerr=error if has_errors else None, fmt=".", ms=2, color="0.45", ecolor="0.8",
                        elinewidth=0.6, label="data")
            for name, label, colour in curves:
                if name != reference:
                    ax.plot(grid_z[order], f[f"grid/{name}"][...][order] - f[f"grid/{reference}"][...][order],
                            color=colour, lw=2, label=label)
            ax.axhline(0, color="C2" if reference == "lcdm" else "C1", lw=1.5)
            ax.set_xscale("log")
            ax.set_xlabel(column)
            ax.set_ylabel(f"{target} - {'LambdaCDM' if reference == 'lcdm' else 'network'}")
            ax.set_title(f"{title}: residuals")
            ax.grid(True, alpha=0.3)
            ax.legend()
            written.append(save(plt, fig, out_dir, "residuals", args))
            print(f"{written[-1]}: rms {float(np.sqrt(np.mean((y - model) ** 2))):.4g} about {reference}")
        used |= {"data", "grid", "split"}
    return written, used


PROGRAM_FIGURES = {"logdet-histogram": logdet_figures, "fit-regression": fit_figures}


def main(argv):
    args = parse_args(argv)
    try:
        import h5py
    except ImportError:
        print("tools/plot.py: h5py is missing; install python3-h5py (bash env/debian.sh does)", file=sys.stderr)
        return 2
    if not os.path.isfile(args.metrics):
        print(f"tools/plot.py: {args.metrics} does not exist; give the metrics.h5 a program wrote", file=sys.stderr)
        return 2
    with h5py.File(args.metrics, "r") as f:
        if args.list:
            list_file(h5py, f)
            return 0
        try:
            import matplotlib
            matplotlib.use("Agg")
            import warnings
            warnings.filterwarnings("ignore", message="Glyph .* missing from")  # CJK host names
            import matplotlib.pyplot as plt
        except ImportError:
            print("tools/plot.py: matplotlib is missing; install python3-matplotlib (bash env/debian.sh does)",
                  file=sys.stderr)
            return 2
        groups = collect(h5py, f)
        title = file_title(f)
        out_dir = args.output_dir or os.path.join(os.path.dirname(os.path.abspath(args.metrics)), "plots")
        os.makedirs(out_dir, exist_ok=True)
        written, consumed = [], set()
        recipe = PROGRAM_FIGURES.get(text(f.attrs.get("program", "")))
        if recipe and not args.group:
            written, consumed = recipe(plt, f, title, args, out_dir)
    wanted = {("/" if g in ("/", "") else g.strip("/")) for g in args.group}
    unknown = wanted - set(groups)
    if unknown:
        print(f"tools/plot.py: no datasets in group(s) {', '.join(sorted(unknown))}; "
              f"the file has {', '.join(sorted(groups))} (see --list)", file=sys.stderr)
        return 2
    for group, entry in groups.items():
        if (wanted and group not in wanted) or group in consumed:
            continue
        if entry["strings"]:
            written.append(draw_table(plt, group, entry["series"], entry["strings"], title, args, out_dir))
        elif entry["series"]:
            written.append(draw_series(plt, group, entry["series"], title, args, out_dir))
        for name, matrix in entry["matrices"].items():
            written.append(draw_matrix(plt, group, name, matrix, title, args, out_dir))
    written = [w for w in written if w]
    for path in written:
        print("wrote", path)
    if not written:
        print("tools/plot.py: nothing to draw (no 1-D or 2-D numeric datasets, no tables)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
