"""The distribution installs one name, cxstream, with its data files and license."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_holds_only_the_cxstream_package(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--wheel-dir", str(tmp_path), str(ROOT)], check=True, timeout=300)
    [wheel] = tmp_path.glob("cxstream-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    dist_info = {name for name in top if name.endswith(".dist-info")}
    assert top - dist_info == {"cxstream"}
    for data in ("cxstream/alerts/default_rules.yaml", "cxstream/alerts/lexicons/en.yaml",
                 "cxstream/cli/kafka/pom.xml", "cxstream/cli/kafka/log4j.properties"):
        assert data in names, data
    assert any(name.endswith("/licenses/LICENSE") for name in names)
    assert not any(name.startswith("cxstream/tests") or "/receiver.py" in name
                   or "/faults.py" in name for name in names)  # test tools stay out


def test_the_top_level_folders_are_links_into_the_package() -> None:
    for name in ("streams", "schemas", "alerts", "scoring"):
        link = ROOT / name
        assert link.is_symlink() and link.resolve() == (ROOT / "cxstream" / name).resolve()
