"""Everything a search needs to run (and rerun): parsed, checked before any work, saved as YAML."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from nas.errors import NasError

SAMPLERS = ("tpe", "nsga2", "random")
OBJECTIVES = ("constrained", "mnas", "pareto")
PRUNERS = ("median", "halving", "none")
ENGINES = ("optuna", "ray")
MNAS_W = -0.07  # MnasNet's latency exponent in ACC x (LAT / T)^w


def parse_budget(text: str | float) -> float:
    """A latency budget in milliseconds from `60ms`, `60` or `0.06s`."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s)?\s*", str(text))
    if m is None or float(m.group(1)) <= 0:
        raise NasError(f"budget {text!r} is not allowed; expected a positive latency like 60ms, 60 or 0.06s")
    value = float(m.group(1))
    return value * 1000 if m.group(2) == "s" else value


def parse_duration(text: str | None) -> float | None:
    """Seconds from `45m`, `1h`, `90s` or `300` (seconds); None stays None."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(s|m|h)?\s*", str(text))
    if m is None or float(m.group(1)) <= 0:
        raise NasError(f"time limit {text!r} is not allowed; expected a duration like 45m, 1h or 600s")
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


@dataclass(frozen=True)
class SearchConfig:
    """One search. Latencies in milliseconds, times in seconds."""

    target: str
    budget_ms: float
    out: str
    space: str
    recipe: dict
    trials: int = 60
    time_limit_s: float | None = None
    seed: int = 0
    sampler: str = "tpe"
    objective: str = "constrained"
    pruner: str = "median"
    workers: int = 1
    storage: str | None = None
    engine: str = "optuna"
    baselines: tuple[str, ...] = ("mobilenet_v3_large", "mobilenet_v3_small")
    ray_address: str | None = None
    scheduler: str = "asha"
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{Path(self.out).resolve() / 'study.db'}"

    @property
    def dataset(self) -> str:
        return self.recipe.get("dataset", "cifar10")

    def check(self) -> None:
        """Raise NasError for a choice outside its allowed values."""
        for name, allowed in (("sampler", SAMPLERS), ("objective", OBJECTIVES), ("pruner", PRUNERS),
                              ("engine", ENGINES)):
            if getattr(self, name) not in allowed:
                raise NasError(f"--{name} {getattr(self, name)!r} is not allowed; expected one of {', '.join(allowed)}")
        if self.trials < 1:
            raise NasError(f"--trials {self.trials} is not allowed; expected an integer >= 1")
        if self.workers < 1:
            raise NasError(f"--workers {self.workers} is not allowed; expected an integer >= 1")


def config_to_dict(c: SearchConfig) -> dict[str, Any]:
    d = asdict(c)
    d["baselines"] = list(c.baselines)
    d["dataset"] = c.dataset
    return d


def save_config(c: SearchConfig) -> Path:
    path = Path(c.out) / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config_to_dict(c), sort_keys=False))
    return path


def load_config(run_dir: str | Path) -> SearchConfig:
    """The config of an existing run folder (for --resume)."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise NasError(f"{run_dir}: not a run folder (no config.yaml); start a search with --out {run_dir}")
    d = yaml.safe_load(path.read_text())
    d["baselines"] = tuple(d.get("baselines", ()))
    d.pop("dataset", None)
    return SearchConfig(**d)
