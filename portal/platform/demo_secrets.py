"""Demo mode's secrets: generated once and kept in the data dir, so sessions and tokens
survive a restart of `make run`."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from pathlib import Path


def load_demo_secrets(data_dir: Path, names: Sequence[str]) -> dict[str, str]:
    path = data_dir / "demo-secrets.json"
    data_dir.mkdir(parents=True, exist_ok=True)
    values: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [n for n in names if n not in values]
    if not missing:
        return values
    values |= {name: secrets.token_urlsafe(32) for name in missing}
    path.write_text(json.dumps(values))
    path.chmod(0o600)
    return values
