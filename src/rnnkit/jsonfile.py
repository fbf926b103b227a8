"""Reading the JSON files rnnkit writes (configs, vocabularies, headers) with clear errors."""

import json
import os
from pathlib import Path
from typing import Any

from rnnkit.errors import RnnkitError


def read_json(path: str | os.PathLike, what: str = "", missing: str | None = None) -> Any:
    """The object in JSON file ``path``; RnnkitError when it is missing or not UTF-8 JSON.

    ``what`` names the file in messages (e.g. "vocab file"); ``missing`` replaces the whole
    message for a missing file.
    """
    path = Path(path)
    name = f"{what} {path}" if what else str(path)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise RnnkitError(missing or f"{name} not found") from None
    except json.JSONDecodeError as e:
        raise RnnkitError(f"{name} is not valid JSON: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise RnnkitError(f"cannot read {name} as UTF-8 JSON: {e}") from None


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as UTF-8 JSON at ``path`` through a temporary file and a rename, so a
    crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, path)
