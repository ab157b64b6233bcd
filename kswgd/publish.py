"""Publish a results folder into ``results/NAME``: the Markdown leaderboard, a small Parquet
table of every run's final metrics and provenance, and convergence figures. Everything written
is small enough to commit; the per-checkpoint rows stay in the (git-ignored) run folder."""

from __future__ import annotations

from pathlib import Path

from kswgd import store
from kswgd.leaderboard import final_table, leaderboard_markdown
from kswgd.plots import save_convergence_plot


def publish(out: Path, dest: Path, metrics: list[str] | None = None,
            note: str | None = None) -> list[Path]:
    """Write leaderboard.md (headed by ``note`` if given), final.parquet and
    convergence_<metric>.png into ``dest``."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    _, manifests = store.load_runs(out)
    runs = [m for m in manifests if m["config"]["repetition"] >= 0]
    suites = sorted({m.get("suite", "?") for m in runs})
    commits = {m["run_id"]: m.get("git_commit") for m in manifests}
    env = runs[0]["environment"] if runs else {}
    header = (f"Suite {', '.join(suites)}: `kswgd run --suite {suites[0] if suites else '?'}`; "
              f"code at {', '.join(sorted({str(commits[m['run_id']]) for m in runs}))}; "
              f"CPU {env.get('cpu', '?')}, {env.get('numba_threads', '?')} Numba threads.\n\n"
              + (f"{note}\n\n" if note else ""))
    store.write_text(dest / "leaderboard.md", header + leaderboard_markdown(out))
    written = [dest / "leaderboard.md"]
    table = final_table(out)
    table["metrics"] = table["metrics"].map(",".join)
    table["git_commit"] = table["run_id"].map(commits)
    store.write_parquet(dest / "final.parquet", table)
    written.append(dest / "final.parquet")
    names = metrics or sorted({m for ms in table["metrics"] for m in ms.split(",")})
    for metric in names:
        written.append(save_convergence_plot(out, dest / f"convergence_{metric}.png", metric))
    return written
