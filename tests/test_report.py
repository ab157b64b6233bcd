"""The HTML report and the figures, checked without a browser: the page parses, every table has
the right rows, every image is an embedded PNG, nothing points outside the page, text is
escaped; figure files are written; each method keeps its colour and marker in every figure."""

from __future__ import annotations

import base64
import itertools
import json
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from kswgd import registry
from kswgd.reports import leaderboard, plots
from kswgd.reports.report import Sources, ablation_tables, markdown_to_html, render_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
VOID = {"meta", "img", "br", "hr", "link", "input"}


# --- synthetic results with the store's flat columns ------------------------------------------
def fabricate_rows(seed: int = 0) -> pd.DataFrame:
    """Checkpoint rows of finished runs as ``kswgd.engine.store.load_rows`` returns them: a 2-D
    gaussian group (kswgd at 2 ranks × 2 feature counts, ula with a hostile label, a pilot and
    a failed run), a second gaussian budget (N = 60) and a digits group."""
    rng = np.random.default_rng(seed)
    rows = []

    def run(dataset, dparams, method, mparams, label, n, rep, pilot=False, status="ok"):
        rid = f"{dataset}-{label}-{n}-{rep}-{pilot}".replace(" ", "_")
        base = {"run_id": rid, "suite": "synthetic", "dataset": dataset,
                **{f"dataset.{k}": v for k, v in dparams.items()}, "method": method,
                **{f"method.{k}": v for k, v in mparams.items()}, "label": label,
                "uses": "trajectories", "n_particles": n, "n_steps": 10, "n_train": 200,
                "n_reference": 150, "repetition": -1 if pilot else rep, "pilot": pilot,
                "root_seed": 7, "code": "abc", "status": status,
                "metrics": "w2,mmd2" if dataset == "digits" else "w2",
                "reason": None if status == "ok" else "FloatingPointError: diverged"}
        start = 1.0 + rng.random()
        for k, it in enumerate((0, 5, 10)):
            rows.append({**base, "iteration": it, "seconds": 0.01 * it * (1 + rep),
                         "fit_seconds": 0.1, "w2": start / (1 + k) + 0.01 * rep,
                         # a signed metric, recorded on digits only
                         "mmd2": (start / (1 + k)) ** 2 - 0.1 if dataset == "digits"
                         else np.nan,
                         "health.away": 0.0, "diag.step": 0.1})

    gauss = {"d": 2}
    for rank, feats in itertools.product((5, 10), (50, 100)):
        for rep in (0, 1):
            run("gaussian", gauss, "kswgd", {"rank": rank, "n_features": feats, "step": 0.1},
                f"kswgd r{rank} F{feats}", 40, rep)
    for rep in (0, 1):
        run("gaussian", gauss, "ula", {"step": 0.05}, "ula <b>&", 40, rep)
    run("gaussian", gauss, "ula", {"step": 0.3}, "ula <b>&", 40, 0, pilot=True)
    run("gaussian", gauss, "svgd", {"step": 0.1}, "svgd", 40, 0, status="failed")
    for rep in (0, 1):
        run("gaussian", gauss, "ula", {"step": 0.05}, "ula", 60, rep)
    for rep in (0, 1):
        run("digits", {"latent_dim": 8}, "dmps", {"rank": 5, "step": 0.1}, "dmps", 40, rep)
    return pd.DataFrame(rows)


def fabricate_floors() -> pd.DataFrame:
    return pd.DataFrame([
        {"dataset": "gaussian", "dataset.d": 2, "dataset.latent_dim": np.nan, "n_particles": 40,
         "metric": "w2", "value": 0.3, "std": 0.02, "kind": "noise"},
        {"dataset": "gaussian", "dataset.d": 2, "dataset.latent_dim": np.nan, "n_particles": 40,
         "metric": "w2", "value": 0.2, "std": 0.01, "kind": "data"},
        {"dataset": "gaussian", "dataset.d": 3, "dataset.latent_dim": np.nan, "n_particles": 40,
         "metric": "w2", "value": 9.0, "std": 0.1, "kind": "noise"},
    ])


def fake_board(header, rows) -> str:
    labels = sorted(set(rows.loc[~rows["pilot"], "label"]))
    return ("| method | runs |\n|---|---|\n"
            + "".join(f"| {lab} | {rows.loc[rows['label'] == lab, 'run_id'].nunique()} |\n"
                      for lab in labels)
            + "\n- *W2*: lower is better; `mmd2` can be < 0\n")


def synthetic_sources() -> Sources:
    rows = fabricate_rows()
    datasets = {"gaussian": registry.get_dataset("gaussian", d=2),
                "digits": registry.get_dataset("digits", latent_dim=8)}
    by_run = rows.drop_duplicates("run_id").set_index("run_id")

    def dataset(rid):
        return datasets[by_run.loc[rid, "dataset"]]

    def particles(rid):
        r = by_run.loc[rid]
        return dataset(rid).draw(int(r["n_particles"]), np.random.default_rng(len(rid)))

    def reference(rid):
        return dataset(rid).draw(150, np.random.default_rng(1))

    manifests = {rid: {"spec": {"label": r["label"], "method_params": [["step", 0.1]],
                                "n_particles": int(r["n_particles"]), "root_seed": 7},
                       "git_commit": "0123abc",
                       "environment": {"cpu": "Test CPU <x>", "numba_threads": 2,
                                       "packages": {"numpy": "2.1"}}}
                 for rid, r in by_run.iterrows()}
    return Sources(rows=rows, floors=fabricate_floors(), manifests=manifests,
                   leaderboard=fake_board, particles=particles, dataset=dataset,
                   reference=reference)


# --- an HTML structure checker ----------------------------------------------------------------
class Page(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors = [], []
        self.tables, self.imgs, self.urls, self.tags = [], [], [], []
        self._row = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        for key in ("href", "src"):
            if key in attrs:
                self.urls.append(attrs[key])
        if tag == "img":
            self.imgs.append(attrs)
        if tag == "table":
            self.tables.append([])
        if tag == "tr":
            self._row = []
            self.tables[-1].append(self._row)
        if tag in ("td", "th"):
            self._row.append("")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        if {"td", "th"} & set(self.stack) and self._row is not None:
            self._row[-1] += data


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    return page


@pytest.fixture(scope="module")
def page_text():
    return render_report(synthetic_sources(), title="synthetic <report>")


def test_report_is_well_formed_and_self_contained(page_text):
    page = parse(page_text)
    assert page_text.startswith("<!DOCTYPE html>")
    assert not page.errors and not page.stack
    assert not {"script", "link", "iframe", "object"} & set(page.tags)
    # only in-page anchors and embedded images: nothing to fetch
    assert all(u.startswith(("#", "data:image/png;base64,")) for u in page.urls), page.urls
    assert "http://" not in page_text and "https://" not in page_text
    assert "url(" not in page_text and "@import" not in page_text


def test_every_image_is_an_embedded_png(page_text):
    page = parse(page_text)
    assert len(page.imgs) >= 8
    for img in page.imgs:
        data = base64.b64decode(img["src"].removeprefix("data:image/png;base64,"),
                                validate=True)
        assert data.startswith(PNG_MAGIC)
        assert img.get("alt")
    alts = [img["alt"] for img in page.imgs]
    # 3 groups × 1 metric and mmd2 on digits; scatters for the two 2-D groups; a digits grid;
    # one heatmap for kswgd's rank × n_features
    assert sum(a.startswith("convergence of") for a in alts) == 4
    assert sum(a.startswith("particles") for a in alts) == 2
    assert sum(a.startswith("decoded particles") for a in alts) == 1
    assert [a for a in alts if a.startswith("ablation")] == [
        "ablation heatmap kswgd method.rank method.n_features"]


def test_tables_have_one_row_per_label_and_text_is_escaped(page_text):
    page = parse(page_text)
    boards = [t for t in page.tables if t[0] == ["method", "runs"]]
    # one table per group (digits N=40, gaussian N=40, gaussian N=60), in any order
    assert sorted([r[0] for r in t[1:]] for t in boards) == [
        ["dmps"],
        ["kswgd r10 F100", "kswgd r10 F50", "kswgd r5 F100", "kswgd r5 F50", "svgd",
         "ula <b>&"],
        ["ula"]]
    assert "ula &lt;b&gt;&amp;" in page_text and "<b>" not in page_text
    assert "synthetic &lt;report&gt;" in page_text
    # provenance: one row per run, pilot and failed runs included
    prov = [t for t in page.tables if t[0][:2] == ["run", "label"]]
    assert sorted(len(t) - 1 for t in prov) == [2, 2, 12]
    assert {r[5] for t in prov for r in t[1:]} == {"0123abc"}
    # each row ends with the run's spec in one line (parameters, budget, seeds, code)
    assert all(t[0][-1] == "spec" for t in prov)
    specs = [json.loads(r[-1]) for t in prov for r in t[1:]]
    assert all({"method_params", "n_particles", "root_seed"} <= set(sp) for sp in specs)
    assert "Test CPU &lt;x&gt;" in page_text
    assert "versions (every run): numpy 2.1" in page_text      # the packages dict, not empty


def test_markdown_legend_and_table():
    out = markdown_to_html("### Title <x>\n\n| a | b |\n|---|---|\n| 1 | *2* |\n\n- `k`: x < y\n"
                           "plain **strong** line\n")
    page = parse(out)
    assert not page.errors and page.tables == [[["a", "b"], ["1", "2"]]]
    assert "<h5>Title &lt;x&gt;</h5>" in out and "<em>2</em>" in out
    assert "<li><code>k</code>: x &lt; y</li>" in out and "<strong>strong</strong>" in out


def test_ablation_tables_average_repetitions_and_mark_shared_cells():
    final = pd.DataFrame({
        "label": ["a", "a", "b", "c", "d"], "seconds": [1.0, 3.0, 2.0, 5.0, 7.0],
        "w2": [0.2, 0.4, 0.5, 0.1, 0.9],
        "method.rank": [5, 5, 10, 10, 5], "method.dictionary": ["rbf", "rbf", "rbf", "rbf", "rff"],
        "method.landmarks": ["random", "random", "random", "kmeans", "random"]})
    value, secs, marks = ablation_tables(final, "method.dictionary", "method.rank", "w2")
    assert list(value.index) == ["rbf", "rff"] and list(value.columns) == ["5", "10"]
    assert value.loc["rbf", "5"] == pytest.approx(0.3)  # mean of repetitions of a
    assert secs.loc["rbf", "5"] == pytest.approx(2.0)  # median seconds
    assert value.loc["rbf", "10"] == pytest.approx(0.1)  # best of b (0.5) and c (0.1)
    assert secs.loc["rbf", "10"] == pytest.approx(5.0)  # the seconds of that configuration
    assert marks.loc["rbf", "10"] and not marks.loc["rbf", "5"]
    assert np.isnan(value.loc["rff", "10"])


def test_floors_match_dataset_params_and_particle_count():
    floors = fabricate_floors()
    head = {"dataset": "gaussian", "dataset.d": 2, "n_particles": 40}
    assert plots.floors_for(floors, head, "w2") == {"noise": (0.3, 0.02), "data": (0.2, 0.01)}
    assert plots.floors_for(floors, {**head, "dataset.d": 3}, "w2") == {"noise": (9.0, 0.1)}
    assert plots.floors_for(floors, {**head, "n_particles": 60}, "w2") == {}
    assert plots.floors_for(floors, {**head, "n_steps": 99}, "w2") == {
        "noise": (0.3, 0.02), "data": (0.2, 0.01)}
    assert plots.floors_for(floors, head, "mmd2") == {}


def test_method_styles_are_fixed_distinct_and_depend_only_on_the_set_of_labels():
    shipped = ["kswgd", "dmps", "svgd", "ula", "mala", "lawgd"]
    assert plots.method_styles(shipped) == plots.METHOD_STYLES
    assert len({c for c, _ in plots.METHOD_STYLES.values()}) == len(shipped)
    ablation = [f"rbf{f} r{r}" for f in (400, 800) for r in (10, 30, 60)] + ["poly10 r30"]
    styles = plots.method_styles(ablation + ["kswgd", "ula"])
    assert styles == plots.method_styles(list(reversed(ablation)) + ["ula", "kswgd", "ula"])
    # 9 labels, 14 colours: every label its own colour
    assert len({c for c, _ in styles.values()}) == len(styles)
    assert styles["kswgd"] == plots.METHOD_STYLES["kswgd"]
    assert all(c in plots.PALETTE and m in plots.MARKERS for c, m in styles.values())
    # more labels than colours: colours repeat with another marker, pairs stay distinct
    many = plots.method_styles(f"label {k}" for k in range(40))
    assert len(set(many.values())) == 40
    assert plots.method_style("a new plug-in") == plots.method_styles(["a new plug-in"])[
        "a new plug-in"]


def _line_styles(fig) -> dict[str, tuple]:
    from matplotlib.colors import to_hex

    out = {}
    for ax in fig.axes:
        for line in ax.get_lines():
            if not line.get_label().startswith("_") and "floor" not in line.get_label():
                out.setdefault(line.get_label(), set()).add(
                    (to_hex(line.get_color()), line.get_marker()))
    return out


def test_each_label_keeps_its_colour_across_figures():
    import matplotlib.pyplot
    rows = fabricate_rows()
    groups = leaderboard.comparable_groups(rows)
    styles = plots.method_styles(rows["label"])
    seen: dict[str, set] = {}
    for metric in ("w2", "mmd2"):
        for group in groups:
            if metric not in group[1] or group[1][metric].isna().all():
                continue
            fig = plots.convergence_figure([group], metric, fabricate_floors(), styles)
            for label, drawn_here in _line_styles(fig).items():
                seen.setdefault(label, set()).update(drawn_here)
            matplotlib.pyplot.close(fig)
    assert "ula" in seen and "kswgd r5 F50" in seen and "dmps" in seen
    for label, drawn in seen.items():
        assert drawn == {styles[label]}, label


def test_convergence_figure_titles_floors_and_files(tmp_path):
    rows = fabricate_rows()
    groups = [g for g in leaderboard.comparable_groups(rows) if g[0]["dataset"] == "gaussian"]
    fig = plots.convergence_figure(groups, "w2", fabricate_floors())
    titles = [sub.get_suptitle() for sub in fig.subfigs]
    # d = 2 is the gaussian's default: only parameters that differ are named
    assert titles == ["synthetic · gaussian · N=40 T=10 · w2",
                      "synthetic · gaussian · N=60 T=10 · w2"]
    assert [ax.get_title() for ax in fig.axes[:2]] == ["w2 vs iteration", "w2 vs sampler seconds"]
    assert plots.dataset_text({"dataset": "gaussian", "dataset.d": 3.0, "dataset.lag": 0.1}) == (
        "gaussian (d=3)")
    floor_lines = [ln.get_label() for ln in fig.axes[0].get_lines() if "floor" in ln.get_label()]
    assert floor_lines == ["noise floor", "data floor"]
    assert not [ln for ln in fig.axes[2].get_lines() if "floor" in ln.get_label()]
    # the pilot and the failed run are not drawn
    labels = {ln.get_label() for ln in fig.axes[0].get_lines()}
    assert "svgd" not in labels and "ula <b>&" in labels
    written = plots.save_figure(fig, [tmp_path / "c.png", tmp_path / "c.svg"])
    assert [p.name for p in written] == ["c.png", "c.svg"]
    assert (tmp_path / "c.png").read_bytes().startswith(PNG_MAGIC)
    assert "<svg" in (tmp_path / "c.svg").read_text()[:2000]
    with pytest.raises(ValueError, match="png, .svg or .pdf"):
        plots.save_figure(plots.convergence_figure(groups, "w2"), [tmp_path / "c.gif"])
    with pytest.raises(ValueError, match="no finished run records the metric 'ksd'"):
        plots.convergence_figure(groups, "ksd")


TINY_2D = """
name = "tiny2d"
root_seed = 3
repetitions = 1
n_particles = 60
n_steps = 6
n_checkpoints = 2
n_train = 1000
n_reference = 200
metrics = ["w2"]
floor_seeds = 2
step_grid = [0.02, 0.05]
pilot_steps = 3

[[datasets]]
name = "gaussian"
params = { d = 2 }

[[methods]]
name = "kswgd"
params = { step = 0.5, rank = 3, dictionary = "poly", degree = 2 }

[[methods]]
name = "ula"
params = {}
"""


def test_report_command_on_a_real_results_folder(tmp_path, capsys):
    """End to end: a tiny real sweep, then `kswgd report`: the real leaderboard's rows, a
    convergence figure, the particle scatter over the runner's reference, provenance."""
    import textwrap

    from kswgd.cli import main
    from kswgd.engine.driver import run_suite
    from kswgd.engine.suite import load_suite

    suite_file = tmp_path / "tiny2d.toml"
    suite_file.write_text(textwrap.dedent(TINY_2D))
    out = tmp_path / "out"
    run_suite(load_suite(str(suite_file)), out, log=lambda s: None)
    page_file = tmp_path / "report.html"
    assert main(["report", "--out", str(out), "--to", str(page_file)]) == 0
    text = page_file.read_text()
    page = parse(text)
    assert not page.errors and not page.stack
    assert all(u.startswith(("#", "data:image/png;base64,")) for u in page.urls)
    boards = [t for t in page.tables if t[0][0] == "method"]
    assert len(boards) == 1
    assert sorted(r[0] for r in boards[0][1:]) == ["data floor", "kswgd", "noise floor", "ula"]
    # ula's 3-step pilots belong to the 6-step runs' section, not to a section of their own
    assert text.count("<section") == 1
    (prov,) = [t for t in page.tables if t[0][:2] == ["run", "label"]]
    pilot_col = prov[0].index("pilot")
    assert sorted(r[pilot_col] for r in prov[1:]).count("True") >= 2
    alts = [img["alt"] for img in page.imgs]
    assert any(a.startswith("convergence of w2") for a in alts)
    assert any(a.startswith("particles") for a in alts)
    for img in page.imgs:
        assert base64.b64decode(img["src"].split(",", 1)[1]).startswith(PNG_MAGIC)
    capsys.readouterr()
    assert main(["report", "--out", str(tmp_path / "nowhere"), "--to", str(page_file)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nowhere" in err and "Traceback" not in err


def test_scatter_keeps_the_best_configurations_by_the_first_metric():
    from kswgd.reports.report import _best_labels

    rows = pd.DataFrame({
        "run_id": ["a0", "a0", "a1", "b0", "c0", "d0"],
        "label": ["a", "a", "a", "b", "c", "d"],
        "iteration": [0, 10, 10, 10, 10, 10],
        "metrics": ["w2"] * 6,
        "w2": [0.0, 0.5, 0.1, 0.2, 0.4, 0.35]})      # final means: a 0.3, b 0.2, c 0.4, d 0.35
    assert _best_labels(rows, 2) == ["b", "a"]
    assert _best_labels(rows, 4) == ["a", "b", "c", "d"]   # all fit: plan order
