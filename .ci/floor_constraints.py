"""Print pip constraints that pin every direct dependency to the floor pyproject.toml declares.

usage: python3 .ci/floor_constraints.py [EXTRA ...] > floors.txt
Each requirement of [project.dependencies] (and of the named extras) with a `>=X` bound becomes
`name==X`; requirements without a lower bound are left to the resolver and listed on stderr.
A pre-release floor such as torch's `2.9.0a0` (it admits NVIDIA's container builds, `2.9.0a0+<commit>`,
which no index serves) is pinned to its first release, `2.9.0`.
"""
import re
import sys
import tomllib  # stdlib only: this runs before anything is installed
from pathlib import Path

# "name[extras] >=1.2, <3 ; marker" -> name, and the version of the >= bound if there is one
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?([^;]*)")
LOWER_BOUND = re.compile(r">=\s*([^,\s]+)")
PRE_RELEASE = re.compile(r"(?:a|b|rc)\d+$")


def floor_pins(pyproject: dict, extras: list[str]) -> tuple[list[str], list[str]]:
    project = pyproject["project"]
    reqs = list(project["dependencies"])
    for extra in extras:
        reqs += project["optional-dependencies"][extra]
    pins, unbounded = [], []
    for text in reqs:
        name, specifier = REQUIREMENT.match(text).groups()
        floor = LOWER_BOUND.search(specifier)
        if floor:
            pins.append(f"{name}=={PRE_RELEASE.sub('', floor.group(1))}")
        else:
            unbounded.append(name)
    return pins, unbounded


def main(argv: list[str]) -> int:
    pyproject = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    pins, unbounded = floor_pins(pyproject, argv)
    print("\n".join(pins))
    if unbounded:
        print(f"no declared floor (left to the resolver): {', '.join(unbounded)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
