import math

import numpy as np
import pytest

from laws.schedules import SCHEDULES, Schedule, lr_multipliers


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_every_schedule_warms_up_linearly_then_stays_in_unit_range(name):
    s = Schedule(name=name, total_steps=100, warmup_steps=10)
    m = lr_multipliers(s)
    assert m.shape == (100,)
    np.testing.assert_allclose(m[:10], np.arange(1, 11) / 10)
    assert np.all((m >= 0) & (m <= 1 + 1e-12))
    assert m[10] == pytest.approx(1.0)


def test_cosine_ends_at_min_ratio_and_is_half_way_at_midpoint():
    s = Schedule(name="cosine", total_steps=1001, warmup_steps=0, min_ratio=0.1)
    assert s(0) == pytest.approx(1.0)
    assert s(500) == pytest.approx(0.55)
    assert s(1000) == pytest.approx(0.1)


def test_wsd_is_flat_until_the_decay_fraction_then_linear_to_min():
    s = Schedule(name="wsd", total_steps=100, warmup_steps=0, decay_frac=0.2)
    m = lr_multipliers(s)
    assert np.all(m[:80] == 1.0)
    assert np.all(np.diff(m[80:]) < 0)
    assert m[89] == pytest.approx(0.5, abs=0.03)
    assert m[-1] == pytest.approx(0.0, abs=1e-12)


def test_constant_and_linear():
    assert lr_multipliers(Schedule(name="constant", total_steps=7)).tolist() == [1.0] * 7
    lin = Schedule(name="linear", total_steps=11)
    assert lin(5) == pytest.approx(0.5)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(name="cosinus", total_steps=10), "unknown name"),
        (dict(name="cosine", total_steps=0), "total_steps"),
        (dict(name="cosine", total_steps=10, warmup_steps=11), "warmup_steps"),
        (dict(name="wsd", total_steps=10, decay_frac=0.0), "decay_frac"),
        (dict(name="cosine", total_steps=10, min_ratio=1.5), "min_ratio"),
    ],
)
def test_bad_schedules_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        Schedule(**kwargs)


def test_multipliers_are_finite():
    for name in SCHEDULES:
        assert all(math.isfinite(v) for v in lr_multipliers(Schedule(name=name, total_steps=50, warmup_steps=5)))
