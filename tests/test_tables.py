"""nas.tables: the one table layout of the CLI and of the markdown reports."""

from nas.tables import markdown_table, text_table


def test_text_table_right_aligns_numbers_and_left_aligns_text():
    text = text_table([{"name": "v3", "params": 2542856, "ms": 1.5}, {"name": "small", "params": None, "ms": 12.25}],
                      ["name", "params", "ms"])
    assert text.splitlines() == ["name      params     ms",
                                 "-----  ---------  -----",
                                 "v3     2,542,856   1.50",
                                 "small          -  12.25"]


def test_text_table_without_rows_is_the_header_and_rule():
    assert text_table([], ["a", "bb"]).splitlines() == ["a  bb", "-  --"]


def test_markdown_table_is_compact_with_numeric_columns_right_aligned():
    lines = markdown_table([{"trial": 3, "network": "a|b", "accuracy %": None}, {"trial": 1234, "network": "", "accuracy %": 66.0}])
    assert lines == ["| trial | network | accuracy % |", "|---:|---|---:|", "| 3 | a\\|b | - |", "| 1,234 |  | 66.0 |"]


def test_markdown_table_without_rows_says_none():
    assert markdown_table([]) == ["(none)"]
