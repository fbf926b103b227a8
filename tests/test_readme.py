"""The README's Python tour runs as written (the parts that need no trained model)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    # Blocks that load a trained model (a run, an exported file) are tested where one is made.
    runnable = [b for b in blocks if "TextGenerator.load" not in b and "InferenceSession" not in b]
    assert len(runnable) >= 2
    namespace: dict = {}
    for block in runnable:
        exec(compile(block, str(README), "exec"), namespace)
    assert namespace["cell"].expected_num_parameters() == 1600
    assert namespace["out"].shape == (4, 25, 32)  # the one-direction layer's second half
