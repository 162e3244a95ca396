"""Print the requirements of pyproject.toml's base install plus the named extras, one a line.

The images install these in a layer of their own, before the sources are copied: the layer's input
is this output, not pyproject.toml itself, so a change to the code, the version or a lint setting
reuses the cached torch layer instead of downloading it again.
Usage: python3 scripts/pyproject_requirements.py pyproject.toml EXTRA [EXTRA ...]
"""

from __future__ import annotations

import sys
import tomllib


def requirements(pyproject: str, extras: list[str]) -> list[str]:
    with open(pyproject, "rb") as fh:
        project = tomllib.load(fh)["project"]
    optional = project.get("optional-dependencies", {})
    unknown = [extra for extra in extras if extra not in optional]
    if unknown:
        raise SystemExit(f"{pyproject}: no extra named {', '.join(unknown)} (known: {', '.join(sorted(optional))})")
    out = list(project["dependencies"])
    for extra in extras:
        out.extend(optional[extra])
    return out


if __name__ == "__main__":
    print("\n".join(requirements(sys.argv[1], sys.argv[2:])))
