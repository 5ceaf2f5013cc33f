import copy
import json
import tomllib
from pathlib import Path

import pytest

from orchestrator.config import ConfigError, load_config, parse_config, recipes
from orchestrator.spec import TrialSpec

RECIPES = Path(__file__).resolve().parents[2] / "orchestrator" / "recipes"


def _raw(name="tiny"):
    return tomllib.loads((RECIPES / f"{name}.toml").read_text())


@pytest.mark.parametrize("name", recipes())
def test_every_bundled_recipe_loads(name):
    cfg = load_config(name)
    assert cfg.scales and cfg.grids()


def test_demo_spans_the_sizes_the_issue_asks_for():
    cfg = load_config(None)
    Ns = sorted(s.N for s in cfg.search_scales())
    assert 30_000 <= Ns[0] and Ns[-1] <= 1_000_000
    assert len({s.D for s in cfg.search_scales()}) >= 2  # D varies, so beta and gamma are identified


def test_trial_spec_is_plain_data_with_the_scale_overrides():
    cfg = load_config("tiny")
    key = cfg.search_scales()[1].key
    spec = cfg.trial_spec(key, 0.01, 8, 3)
    tc = spec.to_dict()
    assert TrialSpec.from_dict(json.loads(json.dumps(tc))) == spec  # what Tune stores is the spec
    assert spec.N == cfg.search_scales()[1].N and spec.batch_tokens == 8 * spec.model.context
    assert tc["model"]["d_model"] == 64 and tc["train"]["lr"] == 0.01 and tc["train"]["seed"] == 3
    assert tc["train"]["tokens"] == 4096 and tc["data"]["source"] == "pydoc"


def test_each_scale_derives_its_own_model_from_the_model_table():
    """n_head = 0 means d_model // 32 at every width: one scale's derived heads never leak into another's."""
    cfg = load_config("demo")
    heads = {cfg.trial_spec(s.key, 1e-3, 1, 0).model.d_model: cfg.trial_spec(s.key, 1e-3, 1, 0).model.n_head
             for s in cfg.search_scales()}
    assert heads == {48: 1, 96: 3}


def _bad(mutate):
    raw = copy.deepcopy(_raw())
    mutate(raw)
    with pytest.raises(ConfigError) as e:
        parse_config(raw)
    return str(e.value)


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda r: r["grid"].update(lr=[-0.01, 0.02]), "grid.lr: every LR must be a positive number, got -0.01"),
        (lambda r: r["grid"].update(lr=[]), "grid.lr is empty"),
        (lambda r: r["grid"].update(batch_size=[8.5]), "grid.batch_size: every batch size must be a positive integer"),
        (lambda r: r["grid"].update(batch_size=[0]), "got 0"),
        (lambda r: r["grid"].update(lr_octaves=[0]), "exactly one of grid.lr"),
        (lambda r: r["train"].update(schedule="cosinus"), "unknown schedule 'cosinus'"),
        (lambda r: r["train"].update(scheduel="cosine"), "Did you mean 'schedule'"),
        (lambda r: r["train"].update(warmup_frac="0.1"), "train.warmup_frac must be a number"),
        (lambda r: r["sweep"].update(policy="bayes"), "unknown policy 'bayes'"),
        (lambda r: r["sweep"].update(cpus_per_trial=0), "sweep.cpus_per_trial must be > 0"),
        (lambda r: r["sweep"].update(seeds=[]), "sweep.seeds must be a non-empty list"),
        (lambda r: r.update(scales=[]), "no scales"),
        (lambda r: r["scales"][0].pop("tokens"), "scales[0].tokens is missing"),
        (lambda r: r["scales"][0].update(d_model=-32), "scales[0].d_model must be a positive integer"),
        (lambda r: r["scales"][1].update(d_model=32), "appear twice"),
        (lambda r: r["scales"][0].update(tokens=10), "less than one step"),
        (lambda r: r["model"].update(n_head=5), "divisible"),
        (lambda r: r.update(gird={}), "unknown key 'gird'. Did you mean 'grid'"),
        (lambda r: r.setdefault("data", {}).update(source="/no/such/corpus.txt"), "data.source: no such file"),
        (lambda r: r["sweep"].update(estimator="median"), "sweep.estimator: unknown estimator 'median'"),
        (lambda r: r["sweep"].update(policy="law_prior", stop_when_found=1.5),
         "sweep.stop_when_found must be a probability between 0 and 1 (e.g. 0.9), got 1.5"),
        (lambda r: r["sweep"].update(policy="grid", stop_when_found=0.9),
         "sweep.stop_when_found = 0.9 needs a law-prior policy (law_prior, law_prior:BASE or ladder), but sweep.policy "
         "is 'grid'"),
        (lambda r: r.setdefault("target", {}).update(N=1e9), "give both target.N and target.D"),
        (lambda r: r.update(sweep=[1, 2]), "[sweep] must be a table"),
        (lambda r: r.setdefault("data", {}).update(tokenizer="bpe"),
         "model.vocab_size=256 is smaller than data.bpe_vocab_size=1024; set model.vocab_size = 1024"),
        (lambda r: r.setdefault("data", {}).update(tokenizer="/no/tok.json"), "data.tokenizer: no such file"),
        (lambda r: r.setdefault("data", {}).update(bpe_vocab_size=100), "data.bpe_vocab_size must be an integer"),
        (lambda r: r["sweep"].update(workers_per_trial=2), "needs train.engine = 'deepspeed'"),
        (lambda r: r["sweep"].update(workers_per_trial=0), "sweep.workers_per_trial must be a positive integer"),
        (lambda r: (r["sweep"].update(workers_per_trial=3), r["train"].update(engine="deepspeed")),
         "grid.batch_size 8: train.batch_size=8 does not split over 3 workers"),
        (lambda r: r["train"].update(engine="deepspeed", micro_batch_size=3), "micro_batch_size=3 does not divide"),
        (lambda r: r["train"].update(zero_stage=2), "needs train.engine = 'deepspeed'"),
        (lambda r: r["train"].update(engine="deepspeed", zero_stage=4), "train.zero_stage must be 0, 1, 2 or 3"),
        (lambda r: r["train"].update(engine="deepspeed", zero_stage=2, optimizer="adamh"), "use train.zero_stage = 0"),
        (lambda r: r["grid"].update(schedules="wsd"), "grid.schedules must be a list of tables"),
        (lambda r: r["grid"].update(schedules=["wsd"]), "grid.schedules[0] must be a table"),
        (lambda r: r["grid"].update(schedules=[{"schedule": "wsd", "lr": 0.1}]),
         "grid.schedules[0]: unknown key(s) ['lr']"),
        (lambda r: r["grid"].update(schedules=[{"schedule": "cosinus"}]), "grid.schedules[0] (cosinus): "),
        (lambda r: r["grid"].update(schedules=[{"schedule": "wsd", "decay_frac": 1.5}]),
         "grid.schedules[0] (wsd-decay1.5)"),
        (lambda r: r["grid"].update(schedules=[{"schedule": "wsd"}, {"schedule": "wsd"}]), "label 'wsd' appears twice"),
        (lambda r: r["grid"].update(schedules=[{"name": "a/b", "schedule": "wsd"}]), "without '/'"),
        (lambda r: r["train"].update(branch_tokens=[1024, 2048]), "use sweep.branch_budgets"),
        (lambda r: r["sweep"].update(branch_budgets=[0.5]), "sweep.branch_budgets must list 2 or more"),
        (lambda r: r["sweep"].update(branch_budgets=[0.25, 0.5]), "the largest 1.0"),
        (lambda r: r["sweep"].update(branch_budgets=[0.5, 1.0]), "needs train.schedule = 'wsd'"),
        (lambda r: (r["sweep"].update(branch_budgets=[0.5, 1.0]), r["train"].update(schedule="wsd"),
                    r["grid"].update(schedules=[{"schedule": "wsd"}])),
         "grid.schedules cannot be combined with sweep.branch_budgets"),
        (lambda r: (r["sweep"].update(branch_budgets=[0.01, 1.0]), r["train"].update(schedule="wsd")),
         "smallest branch budget (41 tokens) is under 4 steps"),
    ],
)
def test_bad_configs_name_field_value_and_fix(mutate, expected):
    assert expected in _bad(mutate)


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(str(tmp_path / "nope.toml"))
    p = tmp_path / "bad.toml"
    p.write_text("[sweep\nname = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(str(p))


def test_paths_are_made_absolute_and_checkpoint_rules(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpus.txt").write_text("text " * 2000)
    (tmp_path / "base.pt").write_bytes(b"x")
    raw = _raw()
    raw["data"] = {"source": "corpus.txt"}
    raw["train"]["init_checkpoint"] = "base.pt"
    cfg = parse_config(raw)
    assert cfg.data.source == str(tmp_path / "corpus.txt")
    assert cfg.train.init_checkpoint == str(tmp_path / "base.pt")
    raw["train"]["init_checkpoint"] = "missing.pt"
    with pytest.raises(ConfigError, match="init_checkpoint: no such file"):
        parse_config(raw)
    raw["train"].pop("init_checkpoint")
    raw["train"]["save_checkpoint"] = "out.pt"
    with pytest.raises(ConfigError, match="save_checkpoint cannot be set"):
        parse_config(raw)


def test_a_tokenizer_file_is_read_when_the_config_is(tmp_path):
    """A bad tokenizer file, or a model vocabulary too small for it, fails the config before Ray starts
    (not every trial, one by one)."""
    from trainers.data import _pydoc_text
    from trainers.tokenizer import train_bpe

    good = tmp_path / "tokenizer.json"
    train_bpe(_pydoc_text()[:100_000], 300).save(str(good))
    (tmp_path / "bad.json").write_text("{not json")
    msg = _bad(lambda r: r.setdefault("data", {}).update(tokenizer=str(tmp_path / "bad.json")))
    assert "is not a tokenizer.json" in msg and "bad.json" in msg
    msg = _bad(lambda r: r.setdefault("data", {}).update(tokenizer=str(good)))
    assert "model.vocab_size=256 is smaller than the vocabulary of data.tokenizer" in msg
    assert "set model.vocab_size = 300" in msg
    raw = _raw()
    raw.setdefault("data", {}).update(tokenizer=str(good))
    raw["model"]["vocab_size"] = 300
    assert parse_config(raw).data.tokenizer == str(good)


def test_fortunes_source_is_named_and_its_absence_says_how_to_install(monkeypatch, tmp_path):
    import orchestrator.config as oc

    raw = tomllib.loads((Path(oc.__file__).parent / "recipes" / "tiny.toml").read_text())
    raw.setdefault("data", {})["source"] = "fortunes"
    monkeypatch.setattr(oc, "FORTUNES_DIR", tmp_path / "missing")
    with pytest.raises(ConfigError, match="apt-get install fortunes"):
        parse_config(copy.deepcopy(raw))
    monkeypatch.setattr(oc, "FORTUNES_DIR", tmp_path)
    assert parse_config(copy.deepcopy(raw)).data.source == "fortunes"  # a named source stays a name
    raw["data"]["source"] = "licenses"
    monkeypatch.setattr(oc, "LICENSES_DIR", tmp_path / "missing")
    with pytest.raises(ConfigError, match="apt-get install base-files"):
        parse_config(copy.deepcopy(raw))
    monkeypatch.setattr(oc, "LICENSES_DIR", tmp_path)
    assert parse_config(copy.deepcopy(raw)).data.source == "licenses"


def test_a_schedule_axis_multiplies_the_scales_and_sets_each_trials_schedule():
    raw = _raw()
    raw["grid"]["schedules"] = [{"schedule": "cosine"}, {"schedule": "wsd", "decay_frac": 0.3, "decay_shape": "sqrt"},
                                {"name": "flat", "schedule": "constant"}]
    cfg = parse_config(raw)
    keys = [s.key for s in cfg.search_scales()]
    assert keys == ["d32-L1-D4096/cosine", "d32-L1-D4096/wsd-decay0.3-sqrt", "d32-L1-D4096/flat",
                    "d64-L1-D4096/cosine", "d64-L1-D4096/wsd-decay0.3-sqrt", "d64-L1-D4096/flat"]
    t = cfg.trial_spec("d64-L1-D4096/wsd-decay0.3-sqrt", 0.004, 8, 0).train
    assert (t.schedule, t.decay_frac, t.decay_shape, t.tokens, t.warmup_frac) == ("wsd", 0.3, "sqrt", 4096, 0.1)
    assert cfg.trial_spec("d32-L1-D4096/flat", 0.004, 8, 0).train.schedule == "constant"
    assert len({s.key for s in cfg.search_scales()}) == 6
    assert [s.key for s in parse_config(_raw()).search_scales()] == ["d32-L1-D4096", "d64-L1-D4096"]


def test_the_divergence_predictor_stops_adamw_from_scratch_by_default_and_shadows_the_rest(tmp_path):
    raw = _raw()
    raw["train"] = {**raw.get("train", {}), "optimizer": "adamw"}
    assert parse_config(copy.deepcopy(raw)).divergence_mode() == "stop"  # "auto", the default
    raw["train"]["optimizer"] = "adamh"
    assert parse_config(copy.deepcopy(raw)).divergence_mode() == "shadow"
    ck = tmp_path / "base.pt"
    ck.write_bytes(b"")
    raw["train"].update(optimizer="adamw", init_checkpoint=str(ck))
    assert parse_config(copy.deepcopy(raw)).divergence_mode() == "shadow"  # continued pre-training: not measured
    for value, mode in ((True, "stop"), (False, "off"), ("shadow", "shadow")):
        raw["sweep"]["divergence_predictor"] = value
        assert parse_config(copy.deepcopy(raw)).divergence_mode() == mode
    raw["sweep"]["divergence_model"] = "nowhere.json"
    with pytest.raises(ConfigError, match="sweep.divergence_model: no such file 'nowhere.json'"):
        parse_config(copy.deepcopy(raw))
    (tmp_path / "mine.json").write_text("{}")
    raw["sweep"]["divergence_model"] = str(tmp_path / "mine.json")
    assert parse_config(copy.deepcopy(raw)).sweep.divergence_model == str((tmp_path / "mine.json").resolve())
    del raw["sweep"]["divergence_model"]
    raw["sweep"]["divergence_predictor"] = "yes"
    with pytest.raises(ConfigError, match=r"sweep.divergence_predictor must be true, false, \"shadow\".*got 'yes'"):
        parse_config(copy.deepcopy(raw))


def test_a_results_folder_s_copy_of_the_config_keeps_meaning_the_prior_the_sweep_used(tmp_path):
    """[sweep] prior is relative to the sweep file; the copy a results folder keeps (read by resume and report
    from elsewhere) names it by its absolute path, comments and the rest of the text untouched."""
    from orchestrator.config import portable_config_text, sweep_prior

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "earlier.json").write_text(json.dumps({"alpha": -0.4, "beta": 0.3, "gamma": 0.55}))
    src = tmp_path / "a" / "sweep.toml"
    src.write_text("[sweep]\nname = 'x'\nprior = 'earlier.json'  # an earlier sweep's fit\n[grid]\nlr = [0.01]\n"
                   "batch_size = [8]\n[[scales]]\nd_model = 32\ntokens = 4096\n")
    cfg = load_config(str(src))
    assert sweep_prior(cfg.sweep).law.alpha == -0.4
    copy_dir = tmp_path / "results"
    copy_dir.mkdir()
    (copy_dir / "config.toml").write_text(portable_config_text(cfg))
    text = (copy_dir / "config.toml").read_text()
    assert "# an earlier sweep's fit" in text and "name = 'x'" in text
    again = load_config(str(copy_dir / "config.toml"))
    assert again.sweep.prior == cfg.sweep.prior == str((tmp_path / "a" / "earlier.json").resolve())
    # a verbatim copy would have looked for results/earlier.json
    (copy_dir / "verbatim.toml").write_text(src.read_text())
    with pytest.raises(ConfigError, match="sweep.prior: no such file 'earlier.json'"):
        load_config(str(copy_dir / "verbatim.toml"))
