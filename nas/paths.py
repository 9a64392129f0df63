"""Where the project's data files are read from, and where generated ones are written.

Read (search spaces, baselines, latency tables, the proxy recipe) from ROOT, the first of:
  1. $NAS_HOME, a folder laid out like the repository (search_spaces/, latency_tables/,
     experiments/);
  2. the source checkout the package is imported from (`pip install -e .`): the repository's
     top-level folders are the editable sources;
  3. the copy inside the installed package, `nas/_files/` (`pip install .` or a wheel;
     pyproject.toml maps the repository's folders there, so git holds one copy).
`nas/_data/` (CIFAR-10, ImageNet top-1 figures) always comes from the package: PACKAGE_DATA.

Write (`nas latency build`, `derive`, `validate`): into ROOT in cases 1 and 2 (a built table lands
in the repository, to be committed), never into an installed package: in case 3 into USER_HOME,
$XDG_DATA_HOME/nas or else ~/.local/share/nas, whose latency_tables/ is searched before the
shipped one. Search runs, reports and exports go where their --out says (default: runs/ in the
current directory); decoded datasets go to the cache of `nas.data.cache_dir`.
"""

from __future__ import annotations

import os
from pathlib import Path

from nas.errors import NasError

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent
PACKAGE_DATA = _PACKAGE / "_data"
SHIPPED = _PACKAGE / "_files"


def _is_checkout(folder: Path) -> bool:
    return (folder / "pyproject.toml").is_file() and (folder / "search_spaces").is_dir()


def _user_home() -> Path:
    data_home = os.environ.get("XDG_DATA_HOME")
    return (Path(data_home) if data_home else Path.home() / ".local" / "share") / "nas"


if os.environ.get("NAS_HOME"):
    ROOT, USER_HOME = Path(os.environ["NAS_HOME"]), None
elif _is_checkout(_CHECKOUT):
    ROOT, USER_HOME = _CHECKOUT, None
else:
    ROOT, USER_HOME = SHIPPED, _user_home()

SEARCH_SPACES = ROOT / "search_spaces"
BASELINES = SEARCH_SPACES / "baselines"
LATENCY_TABLES = ROOT / "latency_tables"              # read: the shipped (or checkout's) tables
PUBLISHED_ARCHS = LATENCY_TABLES / "published_archs"  # published networks that are not baselines
PROXY_RECIPE = ROOT / "experiments" / "proxy_recipe.yaml"

WORK = USER_HOME or ROOT                              # where generated files go
USER_LATENCY_TABLES = USER_HOME / "latency_tables" if USER_HOME else None  # searched first
WRITTEN_LATENCY_TABLES = WORK / "latency_tables"      # where `nas latency build/derive` write
EXPERIMENTS = WORK / "experiments"                    # calibration and validation measurements


def check_home() -> None:
    """NasError (one line naming NAS_HOME) when $NAS_HOME is set but is not a folder: every file
    read from ROOT would be missing, and a listing of it silently empty."""
    home = os.environ.get("NAS_HOME")
    if not home or Path(home).is_dir():
        return
    what = "no such folder" if not Path(home).exists() else "not a folder"
    raise NasError(f"NAS_HOME={home}: {what}; expected a folder laid out like the repository "
                   "(search_spaces/, latency_tables/, experiments/), or unset NAS_HOME to use the installed files")


def shipped_files() -> list[Path]:
    """Every data file the package reads at run time without being told a path: the default
    search space, the baselines, the latency tables with their sources, the proxy recipe and
    the `nas/_data` files."""
    return [SEARCH_SPACES / "mobilenet_v3.yaml", *sorted(BASELINES.glob("*.json")),
            *sorted(LATENCY_TABLES.glob("*.csv")), LATENCY_TABLES / "pixel1_proxylessnas_lut.yaml",
            LATENCY_TABLES / "pixel1_published.yaml", *sorted(PUBLISHED_ARCHS.glob("*.json")),
            PROXY_RECIPE, PACKAGE_DATA / "cifar10" / "cifar10-jpeg.tar.gz",
            PACKAGE_DATA / "cifar10" / "cifar10_original_order_labels.npz",
            *(PACKAGE_DATA / "imagenet_top1" / f
              for f in ("imagenet_top1.yaml", "held_out.yaml", "kept_aside.yaml", "estimate.json", "ablations.yaml"))]
