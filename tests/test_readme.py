"""README examples are tests: every ```python block runs."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})


def test_readme_opens_with_install_and_test_commands():
    first_block = re.search(r"```bash\n(.*?)```", README.read_text(), flags=re.S).group(1)
    lines = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert lines == ['pip install -e ".[test]" && ashlsim compare',
                     'pip install -e ".[torch]" && python -m pytest']  # fmt: skip
    ci = (README.parent / ".ci" / "run").read_text()  # CI runs what the README says
    assert 'pip install -e ".[test]" && ashlsim compare' in ci
    assert 'pip install -e ".[torch]" && python -m pytest' in ci


def test_the_readmes_copy_of_a_sweep_file_is_the_file():
    import re
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parent.parent
    text = (root / "README.md").read_text()
    block = re.search(
        r"\(`experiments/sweeps/speed_spread.yaml`\):\n\n```yaml\n(.*?)```", text, re.S
    )
    copy = yaml.safe_load(block.group(1))
    assert copy == yaml.safe_load((root / "experiments/sweeps/speed_spread.yaml").read_text())
