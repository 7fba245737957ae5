"""The README's first command is the one CI runs."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _first_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return [block.strip() for block in re.findall(r"```bash\n(.*?)\n```", readme, re.S)[:2]]


def test_ci_runs_the_readme_test_command():
    test_command = _first_commands()[1]
    ci_lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert "pytest" in test_command
    assert test_command in ci_lines


def test_readme_starts_the_dashboard_with_the_set_up_of_the_tests():
    start, test = _first_commands()
    assert start.endswith(".venv/bin/python -m dashboard")
    set_up = start.removesuffix(" && .venv/bin/python -m dashboard")
    assert set_up.replace("-e .", '-e ".[test]"') in test


def test_quick_start_runs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    code = re.search(r"## Quick start\n\n```python\n(.*?)\n```", readme, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README quick start", "exec"), namespace)
    assert namespace["res"].get_result("array").shape == (10, 4, 2)
