"""Every command in docs/gtp-vit.md parses with the tool's own parser, so the page and the flags cannot drift."""
import os
import re
import shlex

import pytest

from idlevit.cli.export import build_parser as export_parser
from idlevit.cli.runtime import build_parser as runtime_parser

PAGE = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "gtp-vit.md")
PARSERS = {"idle-export": export_parser, "idle-runtime": runtime_parser}


def _commands():
    with open(PAGE) as f:
        text = f.read()
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", text, flags=re.S | re.M)
    inline = [c for c in re.findall(r"`((?:idle-export|idle-runtime) [^`]+)`", text) if " --" in c]   # not bare names
    lines = [line for block in blocks for line in block.splitlines()] + inline
    return [shlex.split(line) for line in lines if line.split(" ", 1)[0] in PARSERS]


def test_the_page_has_commands():
    assert {c[0] for c in _commands()} == set(PARSERS)


@pytest.mark.parametrize("argv", _commands(), ids=lambda a: " ".join(a[:3]))
def test_documented_command_parses(argv):
    args = PARSERS[argv[0]]().parse_args(argv[1:])
    if hasattr(args, "model_kwargs"):
        assert all(isinstance(kv, tuple) for kv in args.model_kwargs)
