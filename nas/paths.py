"""Where the project's data files live: `search_spaces/`, `latency_tables/`, `experiments/`."""

from __future__ import annotations

import os
from pathlib import Path

# The data folders sit beside the package in the source tree (the README installs with -e);
# NAS_HOME points elsewhere for a non-editable install.
ROOT = Path(os.environ.get("NAS_HOME", Path(__file__).resolve().parent.parent))
SEARCH_SPACES = ROOT / "search_spaces"
BASELINES = SEARCH_SPACES / "baselines"
LATENCY_TABLES = ROOT / "latency_tables"
EXPERIMENTS = ROOT / "experiments"
