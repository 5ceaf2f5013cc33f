"""Fuzzed bad input to every subcommand's flags and input files: exit 2, fast, no traceback, no file created,
inputs left byte-identical.

Numbers are drawn at and beyond each flag's domain (orchestrator.cli); files are damaged tables, checkpoints,
configs and results folders; tracking stores are missing files, bogus schemes and loopback ports nobody listens
on. Commands run in-process (as the console script does) in an empty working folder that is checked afterwards.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator import cli
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
REF = ROOT / "bench" / "data" / "reference_grid.csv"
TINY = ROOT / "orchestrator" / "recipes" / "tiny.toml"
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _snapshot(folder: Path) -> dict[str, str]:
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_fifo():
            out[str(p)] = "fifo"
        elif p.is_file():
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[str(p)] = "dir"
    return out


def run_bad(work: Path, argv: list[str], inputs: Path) -> str:
    """Run ``lawsweep argv`` in the empty folder ``work``; assert exit 2 with a message, within seconds, with
    no traceback, no file created in ``work`` and ``inputs`` byte-identical. Returns stderr."""
    before_in, before_work = _snapshot(inputs), _snapshot(work)
    err, cwd = io.StringIO(), os.getcwd()
    os.chdir(work)
    t0 = time.monotonic()
    try:
        with redirect_stdout(io.StringIO()), redirect_stderr(err):
            try:
                code = cli.main(argv)
            except SystemExit as e:  # argparse
                code = e.code
    finally:
        os.chdir(cwd)
    elapsed = time.monotonic() - t0
    text = err.getvalue()
    assert code == 2, (argv, code, text)
    assert "error:" in text and "Traceback" not in text, (argv, text)
    assert elapsed < 20, f"{argv} took {elapsed:.1f} s to refuse"  # a hang guard, not a speed target
    assert _snapshot(work) == before_work, f"{argv} created files: {set(_snapshot(work)) - set(before_work)}"
    assert _snapshot(inputs) == before_in, f"{argv} changed its inputs"
    return text


@pytest.fixture()
def dirs(tmp_path):
    work, inputs = tmp_path / "work", tmp_path / "inputs"
    work.mkdir()
    inputs.mkdir()
    return work, inputs


# -- numbers at and beyond each flag's domain ---------------------------------------------------------------
def _beyond(lo: float, hi: float, integer: bool = False) -> st.SearchStrategy[str]:
    outside = st.one_of(
        st.floats(max_value=lo, exclude_max=True, allow_nan=False, allow_infinity=False),
        st.floats(min_value=hi, exclude_min=True, allow_nan=False, allow_infinity=False),
        st.sampled_from([math.nan, math.inf, -math.inf]),
    )
    text = outside.map(lambda v: str(int(v)) if integer and math.isfinite(v) and v == int(v) else repr(v))
    return st.one_of(text, st.sampled_from(["", "abc", "1e", "--", "0x10", "1,5"]))


# (command prefix, flag, domain, integer, further args that make the rest of the call valid)
NUMERIC_FLAGS = [
    (["predict"], "--n", cli.N_RANGE, False, ["--d", "1e10"]),
    (["predict"], "--d", cli.D_RANGE, False, ["--n", "1e8"]),
    (["predict", "--n", "1e8", "--d", "1e10", "--from", str(REF)], "--budget", cli.FLOPS_RANGE, False,
     ["--checkpoint-loss", "3.0"]),
    (["predict", "--n", "1e8", "--d", "1e10", "--from", str(REF)], "--checkpoint-loss", (1e-6, 100), False,
     ["--budget", "1e20"]),
    (["predict", "--n", "1e8", "--d", "1e10"], "--tracking-timeout", (0.1, 600), False, []),
    (["plan", "--target-d", "1e11", "--budget", "1e18"], "--target-n", cli.N_RANGE, False, []),
    (["plan", "--target-n", "1e9", "--budget", "1e18"], "--target-d", cli.D_RANGE, False, []),
    (["plan", "--target-n", "1e9", "--target-d", "1e11"], "--budget", cli.FLOPS_RANGE, False, []),
    (["plan", "--target-n", "1e9", "--target-d", "1e11", "--budget", "1e18"], "--workers", (1, 100_000), True, []),
    (["plan", "--target-n", "1e9", "--target-d", "1e11", "--budget", "1e18"], "--worker-memory", (0.1, 1e5),
     False, []),
    (["report", str(REF)], "--target-n", cli.N_RANGE, False, ["--target-d", "1e10"]),
    (["report", str(REF)], "--target-d", cli.D_RANGE, False, ["--target-n", "1e8"]),
    (["fit", str(REF)], "--tracking-timeout", (0.1, 600), False, []),
    (["bench", "--table", str(REF)], "--seeds", (1, 1000), True, []),
    (["schedules", str(REF)], "--n", cli.N_RANGE, False, ["--d", "1e6"]),
    (["schedules", str(REF), "--n", "1e6"], "--d", cli.D_RANGE, False, []),
    (["schedules", str(REF), "--n", "1e6"], "--steps", (2, 1e6), True, []),
    (["schedules", str(REF), "--n", "1e6", "--d", "1e6"], "--peak-lr", (1e-8, 10), False, []),
]


@SETTINGS
@given(st.data())
@pytest.mark.parametrize("case", NUMERIC_FLAGS, ids=[f"{c[0][0]} {c[1]}" for c in NUMERIC_FLAGS])
def test_numbers_beyond_a_flag_s_domain_exit_2_before_any_work(dirs, case, data):
    prefix, flag, (lo, hi), integer, rest = case
    value = data.draw(_beyond(lo, hi, integer))
    err = run_bad(dirs[0], [*prefix, f"{flag}={value}", *rest], dirs[1])
    assert flag in err


def test_numbers_at_a_flag_s_domain_edges_are_taken(dirs):
    """The edges themselves are legal: the published law answers for the smallest and largest targets."""
    work, _ = dirs
    for n, d in ((cli.N_RANGE[0], cli.D_RANGE[0]), (cli.N_RANGE[1], cli.D_RANGE[1])):
        out = io.StringIO()
        with redirect_stdout(out):
            assert cli.main(["predict", "--n", repr(n), "--d", repr(d), "--json"]) == 0
        lr = json.loads(out.getvalue())["lr"]
        assert math.isfinite(lr) and lr > 0


# -- damaged input files ------------------------------------------------------------------------------------
def _ref_lines() -> list[str]:
    return REF.read_text().splitlines()


def _table_with(column: str, value: str) -> str:
    lines = _ref_lines()
    j = lines[0].split(",").index(column)
    rows = [line.split(",") for line in lines[1:]]
    for r in rows:
        r[j] = value
    return "\n".join([lines[0]] + [",".join(r) for r in rows]) + "\n"


BAD_TABLES = {
    "empty.csv": b"",
    "binary.csv": bytes(range(256)) * 4,
    "header_only.csv": (_ref_lines()[0] + "\n").encode(),
    "json.csv": b'{"N": 1, "D": 2}\n',
    "negative_loss.csv": _table_with("loss", "-2.5").encode(),
    "zero_loss.csv": _table_with("loss", "0").encode(),
    "nan_loss.csv": _table_with("loss", "nan").encode(),
    "inf_loss.csv": _table_with("loss", "inf").encode(),
    "text_loss.csv": _table_with("loss", "low").encode(),
    "negative_n.csv": _table_with("N", "-5").encode(),
    "inf_lr.csv": _table_with("lr", "inf").encode(),
    "csv_as.parquet": REF.read_bytes(),
    "table.xlsx": REF.read_bytes(),
}


def _make_input(inputs: Path, kind: str) -> str:
    """A damaged or impossible source of the given kind, inside ``inputs``; returns the path to pass."""
    if kind in BAD_TABLES:
        (inputs / kind).write_bytes(BAD_TABLES[kind])
        return str(inputs / kind)
    if kind == "fifo":
        os.mkfifo(inputs / "table.csv")
        return str(inputs / "table.csv")
    if kind == "empty_dir":
        (inputs / "folder").mkdir()
        return str(inputs / "folder")
    if kind == "missing":
        return str(inputs / "no-such.csv")
    raise AssertionError(kind)


TABLE_KINDS = [*BAD_TABLES, "fifo", "empty_dir", "missing"]
TABLE_COMMANDS = [
    lambda src: ["fit", src],
    lambda src: ["predict", "--n", "1e8", "--d", "1e10", "--from", src],
    lambda src: ["bench", "--table", src, "--seeds", "1"],
    lambda src: ["report", src],
    lambda src: ["schedules", src, "--n", "1e6", "--d", "1e6"],
]


@SETTINGS
@given(st.sampled_from(TABLE_KINDS), st.sampled_from(range(len(TABLE_COMMANDS))))
def test_damaged_tables_exit_2_naming_the_file(dirs, kind, which):
    work, inputs = dirs
    for p in inputs.iterdir():  # hypothesis reuses the fixture's folders
        p.rmdir() if p.is_dir() else p.unlink()
    src = _make_input(inputs, kind)
    err = run_bad(work, TABLE_COMMANDS[which](src), inputs)
    assert Path(src).name in err, err


# -- tracking stores that are missing, bogus or dead ---------------------------------------------------------
def _dead_uris(inputs: Path) -> list[str]:
    (inputs / "not_sqlite.db").write_bytes(b"hello, not a database")
    return [
        f"sqlite:///{inputs / 'missing.db'}",  # a read never creates a store
        f"sqlite:///{inputs / 'not_sqlite.db'}",
        f"sqlite:///{inputs / 'no' / 'such' / 'dir' / 'mlflow.db'}",
        "sqlite:///mlflow.db",  # the default, in a folder without one
        f"http://127.0.0.1:{free_port()}",
        f"https://127.0.0.1:{free_port()}",
        f"postgresql://u@127.0.0.1:{free_port()}/mlflow",
        "ftp://example.invalid/x",
        "mlflow.db",
        "http://",
        "http://127.0.0.1:99999",
    ]


@pytest.mark.parametrize("cmd", [
    lambda uri: ["fit", "mlflow:lawsweep", "--tracking-uri", uri, "--tracking-timeout", "2"],
    lambda uri: ["predict", "--n", "1e8", "--d", "1e10", "--from", "mlflow:x", "--tracking-uri", uri],
    lambda uri: ["report", "mlflow:lawsweep", "--tracking-uri", uri, "--tracking-timeout", "2"],
    lambda uri: ["bench", "--table", "mlflow:lawsweep", "--tracking-uri", uri],
    lambda uri: ["schedules", "mlflow:lawsweep", "--n", "1e6", "--d", "1e6", "--tracking-uri", uri],
], ids=["fit", "predict", "report", "bench", "schedules"])
def test_dead_or_bogus_tracking_stores_exit_2_fast_and_create_nothing(dirs, cmd):
    work, inputs = dirs
    for uri in _dead_uris(inputs):
        err = run_bad(work, cmd(uri), inputs)
        assert uri.split("://")[0] in err or uri in err, err


def _sweep_config(inputs: Path, tracking: str = "", extra: str = "") -> Path:
    path = inputs / "sweep.toml"
    path.write_text(TINY.read_text() + extra + (f'\n[tracking]\nuri = "{tracking}"\n' if tracking else ""))
    return path


def test_run_refuses_an_unreachable_tracking_store_before_anything_is_written(dirs):
    """`run` refuses (exit 2) rather than starting and buffering: no Ray, no results folder, no store."""
    import ray

    work, inputs = dirs
    for uri in (f"http://127.0.0.1:{free_port()}", f"sqlite:///{inputs / 'gone' / 'mlflow.db'}", "bogus://x"):
        cfg = _sweep_config(inputs, uri)
        err = run_bad(work, ["run", str(cfg)], inputs)
        assert "nothing was run or written" in err and uri in err, err
        assert not ray.is_initialized()


# -- configs: huge grids, special files -----------------------------------------------------------------
def test_a_grid_over_the_trial_threshold_needs_yes(dirs):
    work, inputs = dirs
    cfg = inputs / "big.toml"
    cfg.write_text(TINY.read_text().replace("lr = [0.004, 0.016]", f"lr = {[1e-4 * (1 + i) for i in range(3000)]}"))
    for cmd in ("run", "plan", "submit"):
        err = run_bad(work, [cmd, str(cfg)], inputs)
        assert "--yes" in err and "6,000 trials" in err, err
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli.main(["plan", str(cfg), "--yes", "--json"]) == 0  # asked for: planned


@pytest.mark.parametrize("kind", ["fifo", "empty_dir", "binary", "empty"])
@pytest.mark.parametrize("cmd", ["run", "plan", "submit"])
def test_configs_that_are_not_toml_files_exit_2(dirs, kind, cmd):
    work, inputs = dirs
    path = inputs / "sweep.toml"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "empty_dir":
        path.mkdir()
    elif kind == "binary":
        path.write_bytes(bytes(range(256)))
    else:
        path.write_bytes(b"")
    run_bad(work, [cmd, str(path)], inputs)


# -- checkpoints --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["binary", "empty", "text", "foreign_torch", "fifo", "folder", "missing",
                                  "no_model_config"])
def test_foreign_or_damaged_checkpoints_exit_2_before_fitting(dirs, kind):
    work, inputs = dirs
    ck = inputs / "ck.pt"
    if kind == "binary":
        ck.write_bytes(os.urandom(4096))
    elif kind == "empty":
        ck.write_bytes(b"")
    elif kind == "text":
        ck.write_text("this is not a checkpoint\n")
    elif kind == "foreign_torch":
        torch.save({"state_dict": {"w": torch.zeros(2)}}, ck)
    elif kind == "no_model_config":
        torch.save({"format": "lawsweep-checkpoint-1", "model_config": ["nope"]}, ck)
    elif kind == "fifo":
        os.mkfifo(ck)
    elif kind == "folder":
        ck.mkdir()
    err = run_bad(work, ["predict", "--n", "1e8", "--d", "1e10", "--from", str(REF), "--budget", "1e20",
                         "--checkpoint", str(ck)], inputs)
    assert "--checkpoint" in err and str(ck) in err, err


# -- results folders for resume and report --------------------------------------------------------------
STATES = {
    "array": "[1, 2]",
    "string": '"sweep"',
    "null": "null",
    "no_cwd": json.dumps({"parent_run_id": "abc", "tracking_uri": "sqlite:///mlflow.db"}),
    "cwd_gone": json.dumps({"cwd": "/no/such/folder", "parent_run_id": "abc", "tracking_uri": "sqlite:///x.db"}),
    "cwd_number": json.dumps({"cwd": 5, "parent_run_id": "abc"}),
    "binary": "\x00\x01\x02",
    "truncated": '{"cwd": "/tmp", "parent_',
}


@pytest.mark.parametrize("state", list(STATES))
def test_resume_of_a_damaged_results_folder_exits_2_and_touches_nothing(dirs, state):
    work, inputs = dirs
    (inputs / "sweep.json").write_text(STATES[state])
    (inputs / "sweep.csv").write_bytes(REF.read_bytes())
    err = run_bad(work, ["resume", str(inputs)], inputs)
    assert "sweep.json" in err, err


def test_resume_refuses_a_dead_tracking_store(dirs):
    work, inputs = dirs
    cfg = _sweep_config(inputs, f"http://127.0.0.1:{free_port()}")
    (inputs / "config.toml").write_bytes(cfg.read_bytes())
    (inputs / "sweep.json").write_text(json.dumps({"cwd": str(work), "parent_run_id": "abc", "config":
                                                   "config.toml", "tracking_uri": "http://x"}))
    err = run_bad(work, ["resume", str(inputs)], inputs)
    assert "nothing was run or written" in err


@pytest.mark.parametrize("out", ["a_file", "under_a_file", "/dev/null"])
def test_report_out_that_cannot_be_a_folder_exits_2_before_the_work(dirs, out):
    work, inputs = dirs
    (inputs / "a_file").write_text("keep me")
    target = {"a_file": str(inputs / "a_file"), "under_a_file": str(inputs / "a_file" / "report")}.get(out, out)
    err = run_bad(work, ["report", str(REF), "--out", target], inputs)
    assert "--out" in err


def test_report_of_a_sweep_whose_server_is_down_exits_2_and_offers_no_attach(dirs):
    work, inputs = dirs
    (inputs / "sweep.csv").write_bytes(REF.read_bytes())
    (inputs / "sweep.json").write_text(json.dumps({"cwd": str(work), "parent_run_id": "abc",
                                                   "tracking_uri": f"http://127.0.0.1:{free_port()}"}))
    err = run_bad(work, ["report", str(inputs), "--tracking-timeout", "1"], inputs)
    assert "--no-attach" in err and "unreachable" in err


@pytest.mark.parametrize("address", ["nonsense", "host:notaport", "127.0.0.1:0", "http://x:1", "/tmp/sock",
                                     "127.0.0.1:{dead}"])
@pytest.mark.parametrize("cmd", ["run", "plan-free"])
def test_ray_addresses_that_are_not_or_do_not_answer_exit_2_before_ray_starts(dirs, address, cmd):
    import ray

    work, inputs = dirs
    address = address.format(dead=free_port())
    if cmd == "run":
        err = run_bad(work, ["run", str(_sweep_config(inputs, f"sqlite:///{inputs / 'ok.db'}")),
                             "--address", address], inputs)
    else:  # the same address in the config file
        cfg = _sweep_config(inputs, "", f'\n[ray]\naddress = "{address}"\n')
        err = run_bad(work, ["run", str(cfg)], inputs)
    assert address in err and ("not a Ray address" in err or "no Ray cluster answers" in err), err
    assert not ray.is_initialized()


@pytest.mark.parametrize("address", ["auto", "127.0.0.1:6379", "ftp://x", "http://"])
def test_submit_needs_a_job_server_url(dirs, address):
    work, inputs = dirs
    cfg = inputs / "sweep.toml"  # a config submit accepts: results and tracking reachable from the cluster
    cfg.write_text(TINY.read_text().replace('name = "tiny"', 'name = "tiny"\nresults_dir = "/shared/r"')
                   + '\n[tracking]\nuri = "http://127.0.0.1:5000"\n')
    err = run_bad(work, ["submit", str(cfg), "--address", address], inputs)
    assert "job server" in err, err
