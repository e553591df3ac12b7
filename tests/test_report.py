"""Paper-table arithmetic: mean +- std, paired t-tests, marks, Markdown and CSV."""

import csv
import math

import numpy as np
from scipy import stats

from tfser.core import report


def test_cell_mean_std_and_paired_t_test():
  baseline = [0.515, 0.511, 0.519, 0.520, 0.512]
  better = [0.503, 0.502, 0.504, 0.503, 0.501]  # lower TVD is better
  cell = report.compare(better, baseline, higher_is_better=False)
  assert math.isclose(cell.mean, np.mean(better))
  assert math.isclose(cell.std, np.std(better, ddof=1))
  assert math.isclose(cell.p_value, stats.ttest_rel(better, baseline).pvalue)
  assert cell.p_value < 0.05 and cell.mark == report.IMPROVED
  worse = report.compare(better, baseline, higher_is_better=True)
  assert worse.mark == report.DECLINED


def test_no_mark_without_significance_or_baseline():
  a = [0.50, 0.52, 0.49, 0.51, 0.50]
  b = [0.51, 0.50, 0.50, 0.50, 0.51]
  assert report.compare(a, b).mark == ""
  assert report.compare(a).p_value is None
  assert report.compare(a, a).mark == ""  # identical pairs: p is NaN, no claim
  assert report.compare([]).format() == "n/a"


def test_unpaired_lengths_are_an_error():
  try:
    report.compare([1, 2, 3], [1, 2])
  except ValueError as e:
    assert "paired" in str(e)
  else:
    raise AssertionError("expected ValueError")


def test_format_like_the_paper():
  cell = report.Cell(0.515, 0.004, 5, 0.01, "*")
  assert cell.format() == ".515 \u00b1 .004*"


def test_write_table_markdown_and_csv(tmp_path):
  base = report.compare([0.5, 0.52, 0.51])
  mt = report.compare([0.6, 0.61, 0.63], [0.5, 0.52, 0.51])
  header = ["Model", "Act. CCC"]
  md_path, csv_path = report.write_table(str(tmp_path / "t1"), header,
                                         [["Baseline", base], ["MT", mt]], title="# Table 1")
  text = open(md_path).read()
  assert text.startswith("# Table 1") and "| MT | .613 \u00b1 .015" in text
  rows = list(csv.reader(open(csv_path)))
  assert rows[0] == ["Model", "column", "mean", "std", "n", "p_value", "mark"]
  assert rows[2][0] == "MT" and float(rows[2][2]) == mt.mean and rows[2][6] == mt.mark
