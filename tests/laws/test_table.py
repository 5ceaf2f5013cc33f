"""laws.table: joined table specs (one grid recorded in several sweeps)."""

import pandas as pd
import pytest

from laws.table import read_tables, table_parts


def test_a_joined_spec_reads_every_part_in_order_and_names_a_missing_one(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    pd.DataFrame({"N": [1.0], "D": [2.0], "loss": [3.0]}).to_csv(a, index=False)
    pd.DataFrame({"N": [4.0, 5.0], "D": [6.0, 7.0], "loss": [8.0, 9.0], "eff_lr": [0.1, 0.2]}).to_csv(b, index=False)
    assert table_parts(f"{a}+{b}") == [a, b] and table_parts(a) == [a]
    t = read_tables(f"{a}+{b}")
    assert t.N.tolist() == [1.0, 4.0, 5.0] and t.index.tolist() == [0, 1, 2]
    assert t.eff_lr.isna().tolist() == [True, False, False]
    with pytest.raises(FileNotFoundError, match="c.csv: no such file"):
        read_tables(f"{a}+{tmp_path / 'c.csv'}")
