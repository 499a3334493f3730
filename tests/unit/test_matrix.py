"""pipeline.yaml validation: every problem reported at once, exit 2, nothing written."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from extract.cli import app
from extract.extraction.matrix import ConfigError, load_matrix

REPO = Path(__file__).resolve().parents[2]
GOOD_MATRIX = """\
version: 0
matrix:
  dates:
    - {start: "2024-10-01", end: "2024-11-01"}
  granularities: [country]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_matrix(path)
    return info.value.problems


def test_repo_configs_are_valid() -> None:
    full = load_matrix(REPO / "pipeline.yaml")
    assert len(full.periods) == 205  # as in the real bucket manifest
    assert full.periods[0].start == date(2009, 1, 1)
    assert full.periods[-1].end == date(2026, 2, 1)
    assert len(full.entries()) == 205 * 12
    demo = load_matrix(REPO / "pipeline.demo.yaml")
    assert len(demo.entries()) == 2 * 12


def test_months_shorthand_expands_inclusive_and_crosses_years(tmp_path: Path) -> None:
    m = load_matrix(
        write(
            tmp_path,
            GOOD_MATRIX.replace(
                '- {start: "2024-10-01", end: "2024-11-01"}', '- months: "2024-11..2025-02"'
            ),
        )
    )
    assert [(p.start, p.end) for p in m.periods] == [
        (date(2024, 11, 1), date(2024, 12, 1)),
        (date(2024, 12, 1), date(2025, 1, 1)),
        (date(2025, 1, 1), date(2025, 2, 1)),
        (date(2025, 2, 1), date(2025, 3, 1)),
    ]


def test_entries_follow_dataset_names(tmp_path: Path) -> None:
    m = load_matrix(write(tmp_path, GOOD_MATRIX.replace("[country]", "[city_asn, country]")))
    assert [e.dataset.name for e in m.entries()] == [
        "downloads_by_country_city_asn",
        "uploads_by_country_city_asn",
        "downloads_by_country",
        "uploads_by_country",
    ]
    assert m.entries()[0].key == (
        "cache/v1/20241001T000000Z/20241101T000000Z/downloads_by_country_city_asn"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            GOOD_MATRIX.replace("[country]", "[country, town]"),
            "matrix.granularities[1]: unknown granularity 'town'",
        ),
        (
            GOOD_MATRIX.replace('"2024-10-01"', '"2024-13-01"'),
            "matrix.dates[0].start: '2024-13-01' is not a date",
        ),
        (
            GOOD_MATRIX.replace('end: "2024-11-01"', 'end: "2024-09-01"'),
            "matrix.dates[0]: start 2024-10-01 is not before end 2024-09-01",
        ),
        (GOOD_MATRIX.replace("version: 0", "version: 2"), "version: 2 is not supported"),
        (GOOD_MATRIX + "extra: 1\n", "extra: unknown key"),
        (
            GOOD_MATRIX.replace("  granularities", "  granularity"),
            "matrix.granularity: unknown key",
        ),
        ("- just\n- a list\n", "top level: expected a mapping, got list"),
        ("version: 0\nmatrix: [\n", "not valid YAML"),
        (
            GOOD_MATRIX.replace(
                '- {start: "2024-10-01", end: "2024-11-01"}', '- months: "2025-03..2025-01"'
            ),
            "matrix.dates[0].months: '2025-03..2025-01' is reversed",
        ),
        (
            GOOD_MATRIX.replace('end: "2024-11-01"', 'stop: "2024-11-01"'),
            "matrix.dates[0].end: missing",
        ),
    ],
)
def test_each_bad_config_names_its_field(tmp_path: Path, text: str, expected: str) -> None:
    problems = problems_of(write(tmp_path, text))
    assert any(expected in p for p in problems), problems


def test_a_yaml_error_points_into_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 0\nmatrix: [\n")
    [problem] = problems_of(path)
    assert f'in "{path}", line 3' in problem and "<unicode string>" not in problem


def test_sample_months_says_which_end_is_wrong() -> None:
    result = CliRunner().invoke(app, ["sample", "--months", "1999-01..2030-02"])
    assert result.exit_code == 2
    assert "--months (first month): 1999-01 is before 2009" in result.output
    assert "--months (last month): 2030-02 starts after the current month" in result.output
    assert "--months.months" not in result.output


def test_a_period_is_a_calendar_month_that_has_begun(tmp_path: Path) -> None:
    """A week, a month plus a day, or a month that has not begun is refused, naming its field:
    built, a future month would be published and shown as the latest period."""
    from extract.months import current_month, next_month

    after = next_month(current_month())
    text = f"""\
version: 0
matrix:
  dates:
    - {{start: "2024-10-01", end: "2024-10-08"}}
    - {{start: "2024-10-02", end: "2024-11-02"}}
    - {{start: "{after}", end: "{next_month(after)}"}}
    - months: "2024-11..{after:%Y-%m}"
    - {{start: "2024-09-01", end: "2024-10-01"}}
  granularities: [country]
"""
    problems = problems_of(write(tmp_path, text))
    assert len(problems) == 4, problems
    assert "matrix.dates[0]: 2024-10-01..2024-10-08 is not a calendar month" in problems[0]
    assert "matrix.dates[1]: 2024-10-02..2024-11-02 is not a calendar month" in problems[1]
    assert f"matrix.dates[2]: {after:%Y-%m} starts after the current month" in problems[2]
    assert f"matrix.dates[3].months (last month): {after:%Y-%m} starts after" in problems[3]
    current = f"""\
version: 0
matrix:
  dates:
    - months: "{current_month():%Y-%m}..{current_month():%Y-%m}"
  granularities: [country]
"""
    assert len(load_matrix(write(tmp_path, current)).periods) == 1  # begun, if not ended


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = """\
version: 3
colour: blue
matrix:
  dates:
    - {start: "2024-10-01", end: "2024-10-01"}
    - {start: "yesterday", end: "2024-11-01"}
  granularities: [country, planet]
"""
    problems = problems_of(write(tmp_path, text))
    assert len(problems) == 5, problems
    joined = "\n".join(problems)
    for field in (
        "version",
        "colour",
        "matrix.dates[0]",
        "matrix.dates[1].start",
        "matrix.granularities[1]",
    ):
        assert field in joined


def test_unreadable_file(tmp_path: Path) -> None:
    assert "cannot read the file" in problems_of(tmp_path / "missing.yaml")[0]
    assert "cannot read the file" in problems_of(tmp_path)[0]  # a directory


@pytest.mark.parametrize("command", [["extract", "run"], ["cache", "status"], ["sample"]])
def test_cli_exits_2_and_writes_nothing(
    tmp_path: Path, artifacts: Path, command: list[str]
) -> None:
    bad = write(
        tmp_path, GOOD_MATRIX.replace("[country]", "[town]").replace("version: 0", "version: 9")
    )
    result = CliRunner().invoke(app, [*command, "--config", str(bad)])
    assert result.exit_code == 2, result.output
    assert "town" in result.output and "version" in result.output
    assert str(bad) in result.output
    assert list(artifacts.iterdir()) == []


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # unquoted, YAML reads a datetime: the time must not be dropped silently
        (
            'start: "2024-10-01"',
            "start: 2024-10-01 12:00:00",
            "matrix.dates[0].start: 2024-10-01 12:00:00 has a time of day",
        ),
        (
            'start: "2024-10-01"',
            'start: "2024-10-01T12:00:00"',
            "periods are whole days, without a time",
        ),
        (
            '- {start: "2024-10-01", end: "2024-11-01"}',
            '- {start: "0001-01-01", end: "0001-02-01"}',
            "matrix.dates[0]: 0001-01 is before 2009",
        ),
        (
            'end: "2024-11-01"',
            f'end: "{date.today().year + 2}-01-01"',
            "matrix.dates[0]: 2024-10-01..",
        ),
        (
            '- {start: "2024-10-01", end: "2024-11-01"}',
            '- {months: "2008-12..2009-02"}',
            "matrix.dates[0].months (first month): 2008-12 is before 2009",
        ),
        (
            "[country]",
            "[[country]]",
            "matrix.granularities[0]: expected a granularity name, got a list",
        ),
        ("[country]", "[{country: 1}]", "matrix.granularities[0]: expected a granularity name"),
    ],
)
def test_edge_cases_are_errors_with_their_field(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert old in GOOD_MATRIX
    problems = problems_of(write(tmp_path, GOOD_MATRIX.replace(old, new)))
    assert any(expected in p for p in problems), problems


def test_first_allowed_month_passes(tmp_path: Path) -> None:
    text = GOOD_MATRIX.replace('start: "2024-10-01"', 'start: "2009-01-01"').replace(
        'end: "2024-11-01"', 'end: "2009-02-01"'
    )
    m = load_matrix(write(tmp_path, text))
    assert m.periods[0].start == date(2009, 1, 1)


def test_duplicated_key_is_an_error_not_last_wins(tmp_path: Path) -> None:
    text = GOOD_MATRIX + GOOD_MATRIX.split("\n", 1)[1].replace("[country]", "[city]")
    problems = problems_of(write(tmp_path, text))
    assert problems == [
        "matrix: key written twice (lines 2 and 6); YAML would silently keep only the last"
    ]
    inner = GOOD_MATRIX.replace(
        "  granularities: [country]", "  granularities: [country]\n  granularities: [city]"
    )
    assert "granularities: key written twice" in problems_of(write(tmp_path, inner))[0]


@pytest.mark.parametrize(
    "text",
    [
        GOOD_MATRIX.replace('start: "2024-10-01"', "start: 2024-10-01 12:00:00"),
        GOOD_MATRIX.replace('start: "2024-10-01"', 'start: "0001-01-01"'),
        GOOD_MATRIX + "matrix: {}\n",
        GOOD_MATRIX.replace("[country]", "[[country]]"),
    ],
)
def test_cli_edge_cases_exit_2_without_traceback(
    tmp_path: Path, artifacts: Path, text: str
) -> None:
    result = CliRunner().invoke(app, ["extract", "run", "--config", str(write(tmp_path, text))])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.exception is not None  # SystemExit
    assert isinstance(result.exception, SystemExit)
    assert list(artifacts.iterdir()) == []


def test_a_duplicated_key_is_listed_with_every_other_problem(tmp_path: Path) -> None:
    """Not alone and first: a user fixes the whole file in one go."""
    text = """\
version: 0
version: 3
colour: blue
matrix:
  dates:
    - {start: "2024-10-01", end: "2024-10-09"}
  granularities: [country, planet]
  granularities: [town]
"""
    problems = problems_of(write(tmp_path, text))
    joined = "\n".join(problems)
    assert "version: key written twice (lines 1 and 2)" in joined
    assert "granularities: key written twice (lines 7 and 8)" in joined
    for field in ("version: 3 is not supported", "colour: unknown key", "matrix.dates[0]"):
        assert field in joined, problems
    assert "unknown granularity 'town'" in joined
    assert len(problems) == 6, problems


def test_readme_demo_commands_read_the_demo_matrix() -> None:
    """README's extract commands are run on the demo workspace as written: each that reads
    the matrix names pipeline.demo.yaml (the default, pipeline.yaml, has 203 months the
    demo has no raw data for)."""
    readme = (REPO / "README.md").read_text()
    block = readme.split("Commands, as they run on the demo workspace", 1)[1]
    block = block.split("```sh\n", 1)[1].split("```", 1)[0]
    reading = [
        line
        for line in block.splitlines()
        if re.match(r"\.venv/bin/iqb (sample|extract run|pipeline run|cache status)\b", line)
    ]
    assert len(reading) >= 8
    assert all("--config pipeline.demo.yaml" in line.split("#")[0] for line in reading), reading


def test_commands_say_which_matrix_they_read(tmp_path: Path, artifacts: Path) -> None:
    config = write(tmp_path, GOOD_MATRIX)
    result = CliRunner().invoke(app, ["cache", "status", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert f"matrix: {config} (1 month, 2 entries)" in " ".join(result.output.split())
    result = CliRunner().invoke(app, ["cache", "status", "--config", str(config), "--json"])
    assert "matrix:" not in result.output  # one JSON document, nothing else


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("version: 0", "version: 0.0", "version: 0.0 is not supported"),
        ("version: 0", "version: false", "version: False is not supported"),
        (
            '- {start: "2024-10-01", end: "2024-11-01"}',
            '- months: "2024-1..2024-02"',
            "matrix.dates[0].months (first month): '2024-1' is not a month",
        ),
        (
            '- {start: "2024-10-01", end: "2024-11-01"}',
            '- months: "2024-01..2024-010"',
            "matrix.dates[0].months (last month): '2024-010' is not a month",
        ),
    ],
)
def test_no_value_is_coerced_into_a_valid_one(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    """A value that Python would read as a valid one (0.0 == 0, int("010") == 10) is refused."""
    assert old in GOOD_MATRIX
    problems = problems_of(write(tmp_path, GOOD_MATRIX.replace(old, new)))
    assert any(expected in p for p in problems), problems
