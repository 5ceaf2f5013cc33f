"""Fuzzed bad input: broken sweep configs exit 2 before Ray starts; damaged tables never crash `fit`."""

import dataclasses
import io
import math
import tomllib
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.cli import main
from orchestrator.config import GridConfig, SweepSection, TargetConfig, TrackingConfig
from trainers.config import DataConfig, ModelConfig, TrainConfig

RECIPES = Path(__file__).resolve().parents[2] / "orchestrator" / "recipes"
BASE = tomllib.loads((RECIPES / "tiny.toml").read_text())

_SECTIONS = {"sweep": SweepSection, "model": ModelConfig, "train": TrainConfig, "data": DataConfig,
             "grid": GridConfig, "tracking": TrackingConfig, "target": TargetConfig}
_SET_BY_GRID = {"lr", "batch_size", "tokens", "seed", "d_model"}


def _wrong_values(type_name: str) -> list:
    """Values of a type the field can never take."""
    t = type_name.replace(" ", "")
    if t.startswith(("int", "float")) or t in ("int|None",):
        return ["3", [1], {"a": 1}, True]
    if t == "bool":
        return ["yes", 2, [True]]
    if t.startswith("str") or t.startswith("Literal"):
        return [7, [1, 2], {"x": 1}]
    if t.startswith("list"):
        return ["x", 5, {"a": 1}]
    if t.startswith("dict"):
        return ["x", [1], 5]
    if t.startswith("tuple"):
        return ["x", 5]
    return []


WRONG_TYPES = [
    (section, f.name, v)
    for section, cls in _SECTIONS.items()
    for f in dataclasses.fields(cls)
    if f.name not in _SET_BY_GRID and not (section == "model" and f.name == "n_head")
    for v in _wrong_values(str(f.type))
]

OTHER_BREAKAGE = [
    ("grid", "lr", []),
    ("grid", "batch_size", []),
    ("grid", "lr", [0.01, -0.01]),
    ("grid", "batch_size", [0]),
    ("scales", 0, {"d_model": 32, "tokens": 8}),  # fewer tokens than one step: a contradictory budget
    ("scales", 0, {"d_model": -32, "tokens": 4096}),
    ("scales", 0, {"d_model": 32}),
    ("data", "source", "/no/such/corpus"),
    ("data", "format", "uint16"),  # shards without a shard path
    ("train", "init_checkpoint", "/no/such/ckpt.pt"),
    ("sweep", "max_retries", -1),
    ("sweep", "cpus_per_trial", 0),
    ("sweep", "trial_timeout_s", -5),
    ("sweep", "seeds", []),
    ("train", "warmup_frac", 2.0),
    ("train", "lr", 0.1),  # set by the grid, not by [train]
    ("target", "N", 1e9),  # N without D
    ("model", "n_layer", 0),
    ("model", "context", -1),
]


def _dump(doc: dict) -> str:
    def val(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f'"{k}" = {val(x)}' for k, x in v.items()) + "}"
        return repr(v)

    out = []
    for section, body in doc.items():
        if section == "scales":
            for s in body:
                out.append("[[scales]]")
                out += [f'"{k}" = {val(v)}' for k, v in s.items()]
            continue
        out.append(f"[{section}]")
        out += [f'"{k}" = {val(v)}' for k, v in body.items()]
    return "\n".join(out) + "\n"


def _run_cli(path: Path, *args: str) -> tuple[int, str]:
    import os

    err = io.StringIO()
    cwd = os.getcwd()
    os.chdir(path.parent)  # whatever a wrongly accepted config would write lands in the test's folder
    try:
        with redirect_stdout(io.StringIO()), redirect_stderr(err):
            try:
                code = main([*args, str(path)])
            except SystemExit as e:  # argparse
                code = e.code
    finally:
        os.chdir(cwd)
    return code, err.getvalue()


def _mutate(section, key, value) -> dict:
    import copy

    doc = copy.deepcopy(BASE)
    if section == "scales":
        doc["scales"][key] = value
    else:
        doc.setdefault(section, {})[key] = value
    return doc


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(WRONG_TYPES + OTHER_BREAKAGE), st.sampled_from(["run", "plan", "submit"]))
def test_broken_configs_exit_2_with_a_message_and_start_nothing(tmp_path, case, cmd):
    import ray

    path = tmp_path / "bad.toml"
    path.write_text(_dump(_mutate(*case)))
    code, err = _run_cli(path, cmd)
    assert code == 2, (case, err)
    assert "error:" in err and "Traceback" not in err
    section, key, _ = case
    if section != "scales":
        assert str(key) in err or section in err, (case, err)  # the message names what is wrong
    assert not ray.is_initialized()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.from_regex(r"[A-Za-z_][A-Za-z0-9_ .-]{0,11}", fullmatch=True).filter(
    lambda k: k not in {f.name for f in dataclasses.fields(TrainConfig)}),
       st.sampled_from([1, "x", [1], {"a": 1}]))
def test_unknown_sections_and_keys_are_refused(tmp_path, key, value):
    import copy

    doc = copy.deepcopy(BASE)
    doc["train"][key] = value
    path = tmp_path / "bad.toml"
    path.write_text(_dump(doc))
    code, err = _run_cli(path, "run")
    assert code == 2 and "unknown key" in err, err


@pytest.fixture(scope="module")
def table_text() -> str:
    return (Path(__file__).resolve().parents[2] / "bench" / "data" / "reference_grid.csv").read_text()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_damaged_tables_never_crash_fit(tmp_path, table_text, data):
    lines = table_text.splitlines()
    how = data.draw(st.sampled_from(["truncate", "garble", "drop_column", "shuffle_cells", "binary"]))
    if how == "truncate":
        text = table_text[: data.draw(st.integers(0, len(table_text)))]
    elif how == "garble":
        i = data.draw(st.integers(1, len(lines) - 1))
        lines[i] = data.draw(st.text(max_size=80))
        text = "\n".join(lines)
    elif how == "drop_column":
        cols = lines[0].split(",")
        j = data.draw(st.integers(0, len(cols) - 1))
        text = "\n".join(",".join(c for k, c in enumerate(line.split(",")) if k != j) for line in lines)
    elif how == "shuffle_cells":
        rows = [line.split(",") for line in lines[1:60]]
        for r in rows:
            data.draw(st.randoms()).shuffle(r)
        text = "\n".join([lines[0]] + [",".join(r) for r in rows])
    else:
        text = data.draw(st.binary(max_size=300)).decode("latin-1")
    path = tmp_path / "damaged.csv"
    path.write_text(text, encoding="utf-8", errors="replace")
    code, err = _run_cli(path, "fit")
    assert code in (0, 1, 2), err
    assert "Traceback" not in err
    if code == 2:
        assert "error:" in err


# -- every numeric field has a domain, and values beyond it are refused -----------------------------------
def _numeric(type_name: str) -> bool:
    t = type_name.replace(" ", "")
    return t.startswith(("int", "float")) or t in ("list[int]", "list[float]", "list[float]|None",
                                                     "tuple[float,float]", "dict[str,float]")


def test_every_numeric_config_field_has_a_domain():
    from orchestrator.config import DOMAINS, RayConfig, ScaleConfig

    sections = {**_SECTIONS, "ray": RayConfig, "scales": ScaleConfig}
    missing = [
        f"{section}.{f.name}" for section, cls in sections.items() for f in dataclasses.fields(cls)
        if _numeric(str(f.type)) and not (section == "train" and f.name in ("lr", "batch_size", "tokens"))
        and not any(f"{section}.{f.name}{s}" in DOMAINS for s in ("", "[]", "{}"))
    ]
    assert missing == []


def _beyond_domain(lo: float, hi: float):
    below = st.floats(max_value=lo, exclude_max=True, allow_nan=False, allow_infinity=False) if lo > -1e300 \
        else st.nothing()
    above = st.floats(min_value=hi, exclude_min=True, allow_nan=False, allow_infinity=False)
    return st.one_of(below, above, st.sampled_from([math.nan, math.inf, -math.inf]),
                     st.sampled_from([int(lo) - 1, int(hi) + 1] if hi < 2**62 else [int(lo) - 1]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_numbers_beyond_a_config_field_s_domain_exit_2_naming_it(tmp_path, data):
    import copy

    import ray

    from orchestrator.config import DOMAINS

    key = data.draw(st.sampled_from(sorted(DOMAINS)))
    value = data.draw(_beyond_domain(*DOMAINS[key]))
    section, name = key.split(".")
    field_name = name.rstrip("[]{}")
    if name.endswith("[]"):
        value = [value]
    elif name.endswith("{}"):
        value = {"proxy_slot": value}
    doc = copy.deepcopy(BASE)
    if section == "scales":
        doc["scales"][0][field_name] = value
    else:
        doc.setdefault(section, {})[field_name] = value
    path = tmp_path / "bad.toml"
    path.write_text(_dump(doc))
    cmd = data.draw(st.sampled_from(["plan", "run", "submit"]))
    code, err = _run_cli(path, cmd)
    assert code == 2, (key, value, err)
    assert "Traceback" not in err and (field_name in err or section in err), (key, value, err)
    assert not ray.is_initialized()
