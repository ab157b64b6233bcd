"""The ``kswgd`` command. It parses arguments and calls library functions; no logic lives here.

Each subcommand is a pair: ``_add_<name>(subparsers)`` declares it and ``_cmd_<name>(args)``
runs it. :func:`main` owns what the user sees when something goes wrong:

- a user error (``ConfigError``: unknown dataset, method, suite, metric or parameter, a bad
  file, a TOML syntax error; or a bad command line) is one line ``kswgd: error: ...`` on stderr
  and exit status 2, never a traceback; so is a file-system error about a path the user gave
  (no such file or folder, permission denied, a read-only file system, a name too long);
- any other OSError (a full disk, an I/O error) is a failure mid-work: one line and exit 1;
- Ctrl-C prints ``interrupted`` (``run`` adds how many runs finished) and exits 130;
- output piped into a reader that stops early (``kswgd list | head -3``) ends quietly, exit 0.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys

from kswgd.params import ConfigError, parse_kv

# Numba's OpenMP threads spin while waiting by default: on a shared or busy machine a small
# parallel kernel then takes 16 ms instead of 0.2 ms. Read when the first parallel kernel runs.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

#: Exit status of a user error (bad name, bad file, bad command line) and of Ctrl-C (128 + SIGINT).
EXIT_USAGE, EXIT_INTERRUPTED = 2, 130
#: Exit status of a system failure mid-work (a full disk, an I/O error).
EXIT_FAILURE = 1
#: Exit status when the reader of stdout went away: 128 + SIGPIPE, what a shell reports for a
#: command killed by a closed pipe.
EXIT_BROKEN_PIPE = 141


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``kswgd CMD: error: ... (see kswgd CMD --help)``."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _int_at_least(text: str, low: int, expected: str, too_small: str) -> int:
    """An argparse integer ≥ ``low``: ``expected`` names it when the text is no integer,
    ``too_small`` (formatted with the value) when it is below ``low``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(too_small.format(value))
    return value


def _positive_int(text: str) -> int:
    """argparse type: an integer ≥ 1."""
    return _int_at_least(text, 1, "a positive integer", "must be at least 1, got {}")


def _seed(text: str) -> int:
    """argparse type: a seed, an integer ≥ 0 (numpy's SeedSequence takes no negative)."""
    return _int_at_least(text, 0, "an integer ≥ 0", "a seed must be ≥ 0, got {}")


def _scheduler(text: str) -> str:
    """argparse type of ``--scheduler``: ``local:N``, or a Dask address ``[PROTOCOL://]HOST:PORT``
    with a port 1–65535 (Dask's own parser raises a bare ValueError on a missing port)."""
    if text.startswith("local:"):
        return text  # its worker count is checked by check_backend
    host, _, port = text.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(
            f"expected local:N or a scheduler address such as tcp://HOST:8786, got {text!r}")
    return text


def _positive_seconds(text: str) -> float:
    """argparse type: a finite number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def _add_list(sub):
    p = sub.add_parser("list", help="list the datasets and methods found by the registry")
    p.set_defaults(func=_cmd_list)


def _cmd_list(args) -> int:
    from kswgd import registry

    datasets, samplers = registry.datasets(), registry.samplers()  # errors before any output
    print("datasets:")
    for name, cls in datasets.items():
        print(f"  {name:18s} {cls.description}")
    print("methods:")
    for name, cls in samplers.items():
        print(f"  {name:18s} uses {'+'.join(cls.uses) or '-':28s} {cls.description}")
    return 0


def _add_run(sub):
    p = sub.add_parser("run", help="run a benchmark suite and print its leaderboard")
    p.add_argument("--suite", required=True,
                   help="suite name (benchmarks/suites/NAME.toml) or path")
    p.add_argument("--out", default="runs", help="results folder (default: ./runs, git-ignored)")
    p.add_argument("--dataset", action="append", help="only this dataset of the suite (repeatable)")
    p.add_argument("--method", action="append", help="only this method of the suite (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.add_argument("--jobs", type=_positive_int, default=1, metavar="N",
                   help="run N runs at a time, each in a worker process (default 1)")
    p.add_argument("--scheduler", metavar="ADDRESS", type=_scheduler,
                   help="send the runs to a Dask scheduler (tcp://host:8786), or 'local:N' to "
                        "start N single-threaded local workers; needs pip install -e '.[dask]'")
    p.add_argument("--threads-per-run", type=_positive_int, default=1, metavar="T",
                   help="Numba and BLAS threads of each run (default 1, whatever --jobs or "
                        "--scheduler: the same numbers from every backend)")
    p.add_argument("--time-limit", type=_positive_seconds, metavar="S",
                   help="seconds one run may take before it is stopped and stored as failed "
                        "(default: the suite's time_limit, else 3600)")
    p.set_defaults(func=_cmd_run)


def _progress(quiet: bool, workers: int):
    """The progress display of a sweep: a bar on a terminal, one line per run otherwise
    (kswgd.reports.progress), or nothing with --quiet."""
    if quiet:
        from kswgd.engine.driver import LogProgress

        return lambda total: LogProgress(lambda s: None)
    from kswgd.reports.progress import Progress

    return lambda total: Progress(total, sys.stderr, workers=workers)


def _log_beside_bar():
    """The sweep's own messages (step choices, failures): printed above the live progress bar
    on a terminal (tqdm.write keeps the bar intact), plain lines otherwise (None)."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return lambda s: tqdm.write(s, file=sys.stderr)


def _cmd_run(args) -> int:
    from kswgd.engine.store import check_out
    from kswgd.engine.suite import load_suite

    suite = load_suite(args.suite)
    suite.check_filters(args.dataset, args.method)  # cheap checks before the heavy imports
    check_out(args.out)
    from kswgd.engine.plan import plan_suite

    plan_suite(suite, args.dataset, args.method)  # every name and parameter, before any output
    from kswgd.engine.executors import check_backend, check_threads, make_executor

    check_threads(args.threads_per_run)
    check_backend(args.jobs, args.scheduler)  # before the lock creates --out
    from kswgd.engine.driver import SweepInterrupted, folder_lock, run_suite
    from kswgd.reports.leaderboard import leaderboard_markdown

    log = (lambda s: None) if args.quiet else _log_beside_bar()
    labels: dict[str, str] = {}
    try:
        with (folder_lock(args.out),  # another sweep on --out: refused before any work
              make_executor(args.jobs, args.scheduler, args.threads_per_run) as executor):
            if not args.quiet:
                print(f"suite {suite.name}: results in {args.out} "
                      f"({_backend(executor)}, {args.threads_per_run} thread(s) per run)",
                      file=sys.stderr)
            ids = run_suite(suite, args.out, log=log, datasets=args.dataset,
                            methods=args.method, executor=executor,
                            progress=_progress(args.quiet, executor.slots),
                            time_limit=args.time_limit, labels=labels)
    except SweepInterrupted as stop:
        print(stop, file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted before the first run; nothing was computed", file=sys.stderr)
        return 130
    print(leaderboard_markdown(args.out, ids, labels))
    return 0


def _backend(executor) -> str:
    d = executor.describe()
    if d["kind"] == "dask":
        return f"Dask scheduler {d['scheduler']}, {d['workers']} worker(s)"
    if d["kind"] == "serial":
        return "serial"
    return f"{d['workers']} worker process{'es' if d['workers'] > 1 else ''}"


def _add_leaderboard(sub):
    p = sub.add_parser("leaderboard", help="print the leaderboard of a results folder")
    p.add_argument("--out", default="runs", help="results folder (default: ./runs)")
    p.add_argument("--format", default="md", choices=("md", "csv", "json"),
                   help="md (tables with legends), csv or json (one row per method and "
                        "comparable group, with the budget and parameter columns)")
    p.set_defaults(func=_cmd_leaderboard)


def _cmd_leaderboard(args) -> int:
    from kswgd.reports.leaderboard import leaderboard

    print(leaderboard(args.out, args.format), end="")
    return 0


def _add_datasets(sub):
    p = sub.add_parser("datasets", help="describe the registered datasets")
    p.add_argument("--json", action="store_true", help="print the description as JSON")
    p.add_argument("--timing", action="store_true",
                   help="also time default-size generation of every dataset")
    p.set_defaults(func=_cmd_datasets)


def _cmd_datasets(args) -> int:
    from kswgd.tools.catalog import describe_datasets, time_datasets

    rows = describe_datasets()
    if args.timing:
        times = {t["name"]: t for t in time_datasets()}
        for row in rows:
            row["timing_s"] = {k: round(v, 3) for k, v in times[row["name"]].items()
                               if k != "name"}
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        sizes = ", ".join(f"{k}={v}" for k, v in r["default_sizes"].items())
        print(f"{r['name']:15s} d={r['dim']:<5d} data={'+'.join(r['data_kinds']):21s} "
              f"known={'+'.join(r['known']) or '-':36s} {sizes}")
        if args.timing:
            print(f"{'':15s} generation {r['timing_s']['total']:.2f} s")
    if args.timing:
        print(f"total generation time: {sum(r['timing_s']['total'] for r in rows):.2f} s")
    return 0


def _add_sample(sub):
    p = sub.add_parser("sample", help="write draws of a dataset to a .npy file")
    p.add_argument("dataset")
    p.add_argument("--split", default="reference", help="reference | train")
    p.add_argument("--n", type=_positive_int, required=True)
    p.add_argument("--seed", type=_seed, default=0, help="root seed of the draws (default 0)")
    p.add_argument("--out", required=True,
                   help="output file, must end in .npy (numpy.save format, (N, d) float64); "
                        "written at exactly this path")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    p.set_defaults(func=_cmd_sample)


def _cmd_sample(args) -> int:
    from kswgd.engine.store import write_npy
    from kswgd.tools.catalog import output_file, sample_dataset

    out = output_file(args.out, ".npy")  # checked before anything is drawn
    x = sample_dataset(args.dataset, args.split, args.n, args.seed, parse_kv(args.param))
    write_npy(out, x)  # atomic, at exactly this path
    print(f"wrote {out}: {x.shape[0]} x {x.shape[1]} float64")
    return 0


def _add_score(sub):
    p = sub.add_parser("score", help="score an (N, d) .npy sample file against a dataset")
    p.add_argument("file", help="(N, d) float array saved with numpy.save")
    p.add_argument("--dataset", help="target law (required unless --run)")
    p.add_argument("--run", metavar="OUT/runs/RUN_ID",
                   help="score against a stored run's target: its dataset, parameters, root "
                        "seed, reference size, floor seeds and metrics, read from its manifest "
                        "(the run's particles.npy reproduces its final stored metrics)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--metrics", default="default",
                   help="comma-separated metric names, 'default' or 'all' (default: default; "
                        "with --run: the run's own)")
    p.add_argument("--n-reference", type=_positive_int, default=None,
                   help="reference set size (default: the dataset's)")
    p.add_argument("--seed", type=_seed, default=None,
                   help="root seed of the reference and noise floor, as a suite's root_seed "
                        "(default 0)")
    p.add_argument("--floor-seeds", type=_positive_int, default=None,
                   help="seeds of the noise floor (default 3)")
    p.add_argument("--train", default=None, help="training points (.npy) for the 'copy' metric")
    p.add_argument("--json", action="store_true", help="one JSON object {metric: {value, ...}}")
    p.set_defaults(func=_cmd_score)


def _cmd_score(args) -> int:
    from kswgd.tools.scoring import load_samples

    given = [o for o, v in (("--dataset", args.dataset), ("--param", args.param),
                            ("--n-reference", args.n_reference), ("--train", args.train),
                            ("--seed", args.seed), ("--floor-seeds", args.floor_seeds))
             if v is not None and v != []]
    if args.run and given:
        raise ConfigError(f"--run takes the target from the run's manifest; drop {given[0]}")
    if not args.run and not args.dataset:
        raise ConfigError("name the target: --dataset NAME or --run OUT/runs/RUN_ID")
    x = load_samples(args.file)
    train = load_samples(args.train) if args.train else None
    from kswgd.core.metrics import signed
    from kswgd.tools.scoring import score_run, score_samples

    if args.run:
        metrics = None if args.metrics == "default" else args.metrics
        res = score_run(x, args.run, metrics)
    else:
        res = score_samples(x, args.dataset, parse_kv(args.param), metric_names=args.metrics,
                            n_reference=args.n_reference, seed=args.seed or 0,
                            n_floor_seeds=args.floor_seeds or 3, train_x=train)
    if args.json:
        print(json.dumps(res))
        return 0
    print(f"{args.file}: {x.shape[0]} x {x.shape[1]} vs {args.run or args.dataset} reference "
          f"(noise floor: fresh draws of the same size)")
    print(f"  {'metric':18s} {'value':>12s} {'floor':>12s} {'± std':>10s} {'value/floor':>12s}")
    for name, r in res.items():
        # Unbiased metrics (mmd2, energy, ksd) have a floor near 0: no ratio for them.
        ok = not signed(name) and r["floor"] > 0
        ratio = f"{r['value'] / r['floor']:.3g}" if ok else "-"
        print(f"  {name:18s} {r['value']:12.5g} {r['floor']:12.5g} {r['floor_std']:10.2g} "
              f"{ratio:>12s}")
    return 0


def _add_spectra(sub):
    p = sub.add_parser("spectra", help="verify the spectral estimators against known spectra")
    p.add_argument("--json", action="store_true", help="print one JSON array of row objects")
    p.add_argument("--rank", type=_positive_int, default=5,
                   help="compare λ_1..λ_rank: 1 to 5 for the table, whose tolerances are set "
                        "for those (default 5)")
    p.add_argument("--seed", type=_seed, default=0, help="root seed of data and fits")
    p.add_argument("--scale", metavar="DATASET", help="instead of the table: the rbf scale "
                   "check (F = 1 000 vs 2 000 bumps on 100 000 pairs of DATASET)")
    p.set_defaults(func=_cmd_spectra)


def _cmd_spectra(args) -> int:
    from kswgd.tools.verify import rbf_scale_check, verification_table

    if args.scale:
        from kswgd.registry import get_dataset

        get_dataset(args.scale)  # a clear error for an unknown name
        print(json.dumps(rbf_scale_check(args.scale, rank=args.rank, seed=args.seed), indent=1))
        return 0

    if args.rank > 5:  # its degree-5 polynomial dictionaries hold 5 non-constant functions
        raise ConfigError(f"--rank must be 1 to 5 for the table (its tolerances are set for "
                          f"λ_1..λ_5), got {args.rank}")
    rows = verification_table(rank=args.rank, seed=args.seed)
    keys = ("system", "estimator", "dictionary", "k", "exact", "estimate", "rel_error",
            "tolerance", "ok")
    failed = sum(not r["ok"] for r in rows)
    if args.json:
        print(json.dumps([{k: r[k] for k in keys} for r in rows]))
        return 1 if failed else 0
    print(f"{'system':8s} {'estimator':14s} {'dictionary':10s} {'k':>2s} {'exact':>9s} "
          f"{'estimate':>9s} {'rel_error':>9s} {'tolerance':>9s} result")
    for r in rows:
        print(f"{r['system']:8s} {r['estimator']:14s} {r['dictionary']:10s} {r['k']:2d} "
              f"{r['exact']:9.4f} {r['estimate']:9.4f} {r['rel_error']:9.2%} "
              f"{r['tolerance']:9.2%} {'pass' if r['ok'] else 'FAIL'}")
    print(f"{len(rows) - failed} of {len(rows)} rows within tolerance"
          + (f"; {failed} failed" if failed else ""))
    return 1 if failed else 0


def _add_compare(sub):
    p = sub.add_parser("compare", help="compare two results folders side by side (ratios)")
    p.add_argument("reference", help="results folder of the reference run (e.g. main)")
    p.add_argument("candidate", help="results folder of the candidate run (e.g. a branch)")
    p.add_argument("--factor", type=_slowdown, default=None,
                   help="slowdown that counts as a speed regression (default 1.5)")
    p.set_defaults(func=_cmd_compare)


def _slowdown(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 1 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number > 1, got {text!r}")
    return value


def _cmd_compare(args) -> int:
    """Exit 0: no regression; 1: a regression (listed on stderr, one line each)."""
    from kswgd.reports.leaderboard import COMPARE_FACTOR, compare

    table, regressions, warnings = compare(args.reference, args.candidate,
                                           args.factor or COMPARE_FACTOR)
    print(table)
    for line in warnings:
        print(f"kswgd: warning: {line}", file=sys.stderr)
    for line in regressions:
        print(f"kswgd: regression: {line}", file=sys.stderr)
    return 1 if regressions else 0


def _add_plot(sub):
    p = sub.add_parser("plot", help="convergence plot (metric vs iteration and vs seconds)")
    p.add_argument("--out", default="runs", help="results folder (default: ./runs)")
    p.add_argument("--metric", default="w2", help="metric to plot (default: w2)")
    p.add_argument("--to", required=True, action="append",
                   help="image file to write (.png, .svg or .pdf); repeat for several formats")
    p.set_defaults(func=_cmd_plot)


def _cmd_plot(args) -> int:
    from kswgd.reports.plots import check_figure_paths, convergence_figure_of, save_figure

    try:
        check_figure_paths(args.to)  # before the figure is drawn
        for path in save_figure(convergence_figure_of(args.out, args.metric), args.to):
            print(path)
    except ValueError as err:
        raise ConfigError(str(err)) from err
    return 0


def _add_report(sub):
    p = sub.add_parser("report", help="one self-contained HTML page of a results folder "
                                      "(leaderboards, figures, provenance)")
    p.add_argument("--out", default="runs", help="results folder (default: ./runs)")
    p.add_argument("--to", required=True, help="HTML file to write, e.g. report.html")
    p.set_defaults(func=_cmd_report)


def _cmd_report(args) -> int:
    from kswgd.reports.report import write_report

    print(write_report(args.out, args.to))
    return 0


def _add_publish(sub):
    p = sub.add_parser("publish", help="write a results folder's leaderboard, final table and "
                                       "figures into results/NAME (small, committable)")
    p.add_argument("--out", default="runs", help="results folder (default: ./runs)")
    p.add_argument("--to", required=True, help="destination folder, e.g. results/smoke")
    p.add_argument("--metrics", help="comma-separated metrics to plot (default: all recorded)")
    p.add_argument("--note", help="a sentence to put under the leaderboard's header")
    p.add_argument("--replace", action="store_true",
                   help="replace a non-empty destination entirely (refused without it)")
    p.set_defaults(func=_cmd_publish)


def _cmd_publish(args) -> int:
    from kswgd.reports.publish import publish

    metrics = args.metrics.split(",") if args.metrics else None
    try:
        for path in publish(args.out, args.to, metrics, args.note, replace=args.replace):
            print(path)
    except ValueError as err:
        raise ConfigError(str(err)) from err
    return 0


def _add_suites(sub):
    p = sub.add_parser("suites", help="list the shipped suites with descriptions and cost")
    p.add_argument("--json", action="store_true", help="print one JSON array of suite objects")
    p.set_defaults(func=_cmd_suites)


def _cmd_suites(args) -> int:
    from kswgd.tools.catalog import describe_suites, suites_listing

    rows = describe_suites()
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(suites_listing(rows))
    return 0


def _add_bench(sub):
    p = sub.add_parser("bench", help="speed figures as ratios to their floors and references")
    p.add_argument("--json", action="store_true", help="one JSON object per figure")
    p.add_argument("--fast", action="store_true", help="tiny sizes (checks the machinery only)")
    p.add_argument("--section", action="append", help="only this section (repeatable)")
    p.set_defaults(func=_cmd_bench)


def _cmd_bench(args) -> int:
    from kswgd.tools.bench import main as bench_main

    return bench_main(args.fast, args.json, args.section)


# Subcommands are registered here, in the order `kswgd --help` shows them.
_SUBCOMMANDS = [_add_list, _add_suites, _add_run, _add_leaderboard, _add_compare, _add_plot,
                _add_report, _add_publish, _add_datasets,
                _add_sample, _add_score, _add_spectra, _add_bench]


def build_parser() -> argparse.ArgumentParser:
    from kswgd import __version__

    parser = _Parser(
        prog="kswgd", description="Benchmark suite and reproducibility harness for Koopman "
        "spectral particle samplers (KSWGD, DMPS, SVGD, ULA, MALA, LAWGD).")
    parser.add_argument("--version", action="version", version=f"kswgd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in _SUBCOMMANDS:
        add(sub)
    return parser


#: File-system errors about a path the user gave: one line and exit 2, like a ConfigError.
_PATH_ERRNOS = {errno.ENOENT, errno.EEXIST, errno.EACCES, errno.EPERM, errno.EISDIR,
                errno.ENOTDIR, errno.EROFS, errno.ENAMETOOLONG, errno.ELOOP}


def _error(message: str) -> None:
    print(f"kswgd: error: {' '.join(str(message).split())}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (see the module docstring).

    A command may raise ``KeyboardInterrupt("K of N runs finished; ...")`` to say more than
    "interrupted"; the text is printed after ``interrupted: ``.
    """
    import tomllib

    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as done:  # --help, --version, or a bad command line (one line shown)
            return int(done.code or 0)
        status = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe must raise here, inside the handler
        return status
    except ConfigError as err:
        _error(err)
    except tomllib.TOMLDecodeError as err:
        _error(f"TOML syntax error: {err}")
    except BrokenPipeError:
        # The reader went away (``kswgd list | head``). As the Python docs advise, point stdout
        # at devnull so that the interpreter's final flush does not fail again, and stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except OSError as err:
        _error(f"{err.strerror or err}: {err.filename!r}" if err.filename else err)
        return EXIT_USAGE if err.errno in _PATH_ERRNOS else EXIT_FAILURE
    except KeyboardInterrupt as err:
        print(f"interrupted: {err}" if str(err) else "interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
