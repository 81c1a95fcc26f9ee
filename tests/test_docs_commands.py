"""Every `idle-*` command written in README.md and docs/*.md parses with that tool's own argparse parser, and
every relative link there resolves, so the documentation cannot drift from the code.

What counts as a command: in a shell code block (```bash, ```sh, ```console or no language), every command line
whose program is an idle-* tool or `python -m idlevit.cli.<tool>` (torchrun too), after joining `\\` line
continuations, splitting at `&&`, `||`, `;` and `|`, and expanding the shell variables the block sets
(`TINY="..."`, `for r in 1.0 0.9; do`: the first value). Outside code blocks, an inline code span that starts
with an idle-* tool and has at least one flag (a bare `idle-export` or `idle-runtime macs` in prose is a name);
such a span may leave out the tool's required flags, and its last flag may stand without its value
(`idle-export --ckpt` names a flag), but every value it writes must be valid.
Placeholders: `<name>` stands for any value that has no fixed choices, and `...` for flags left out (the
command is then not held to its required flags). A deprecated flag name fails too: the docs show the current
ones. Nothing runs: the parsers are built as `--help` builds them (no torch, no onnx).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

import idlevit_launch

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
TOOLS = ("idle-runtime", "idle-export", "idle-train", "idle-trt-build", "idle-calibrate", "idle-fp16", "idle-deploy")
SHELL_FENCES = {"", "bash", "sh", "shell", "console"}
PLACEHOLDER = "DOC_PLACEHOLDER"
ELLIPSIS = "..."
SEPARATORS = {"&&", "||", ";", "|", "&"}
SHELL_KEYWORDS = {"do", "then", "else", "time", "!"}

FENCE = re.compile(r"^\s*```\s*([\w+-]*)")
INLINE_CODE = re.compile(r"`([^`]+)`")
ANGLE_PLACEHOLDER = re.compile(r"<[A-Za-z][\w.:-]*>")
SHELL_VAR = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
ASSIGNMENT = re.compile(r"^(?:export\s+)?([A-Za-z_]\w*)=(.*)$")
FOR_LOOP = re.compile(r"\bfor\s+(\w+)\s+in\s+([^;]+);")
ENV_PREFIX = re.compile(r"^[A-Za-z_]\w*=")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


@dataclass
class DocCommand:
    file: Path
    line: int
    text: str            # as written (continuations joined)
    tool: str            # idle-* name
    argv: List[str]      # what the tool's parser gets
    elided: bool         # `...` stood for flags left out, or a prose span names only some flags
    problem: Optional[str] = None   # why the line could not be read as a command (an unset variable, a stray quote)

    def where(self) -> str:
        return f"{self.file.relative_to(ROOT) if self.file.is_relative_to(ROOT) else self.file}:{self.line}"


# --- extraction -------------------------------------------------------------------------------------------------

def _logical_lines(lines: List[str]) -> Iterator[tuple]:
    """(first line number, text) with `\\` continuations joined."""
    start, parts = None, []
    for n, line in lines:
        if start is None:
            start = n
        if line.rstrip().endswith("\\"):
            parts.append(line.rstrip()[:-1])
            continue
        parts.append(line)
        yield start, " ".join(p.strip() for p in parts)
        start, parts = None, []
    if parts:
        yield start, " ".join(p.strip() for p in parts)


def _expand(text: str, variables: Dict[str, str]) -> str:
    """Shell variables set earlier in the block; an unknown one is a doc error (nothing could check the flags)."""
    def value(m):
        name = m.group(1) or m.group(2)
        if name not in variables:
            raise ValueError(f"shell variable ${name} is not set in this code block: set it there or write the value")
        return variables[name]
    return SHELL_VAR.sub(value, text)


def _split_words(text: str) -> List[str]:
    lexer = shlex.shlex(ANGLE_PLACEHOLDER.sub(PLACEHOLDER, text), posix=True, punctuation_chars="&|;")
    lexer.whitespace_split = True
    return list(lexer)


def _segments(words: List[str]) -> Iterator[List[str]]:
    segment: List[str] = []
    for w in words:
        if w in SEPARATORS:
            yield segment
            segment = []
        else:
            segment.append(w)
    yield segment


def _as_tool_call(words: List[str]) -> Optional[tuple]:
    """(tool, argv) when this simple command runs an idle-* tool, else None."""
    while words and (words[0] in SHELL_KEYWORDS or ENV_PREFIX.match(words[0])):
        words = words[1:]
    if not words:
        return None
    if words[0].startswith("idle-"):
        return words[0], words[1:]
    for i, w in enumerate(words[:-1]):   # python -m idlevit.cli.train ..., torchrun ... -m idlevit.cli.train ...
        if w == "-m" and words[i + 1].startswith("idlevit.cli."):
            module = words[i + 1][len("idlevit.cli."):]
            return "idle-" + module.replace("_", "-"), words[i + 2:]
    return None


def _commands_in(file: Path, line: int, text: str, variables: Dict[str, str]) -> Iterator[DocCommand]:
    for loop in FOR_LOOP.finditer(text):
        variables[loop.group(1)] = _split_words(loop.group(2))[0]
    for words in _segments(_split_words(_expand(text, variables))):
        call = _as_tool_call(words)
        if call is None:
            continue
        tool, argv = call
        yield DocCommand(file, line, text, tool, [w for w in argv if w != ELLIPSIS], ELLIPSIS in argv)


def _unreadable(file: Path, line: int, text: str, why: str) -> DocCommand:
    return DocCommand(file, line, text, tool="", argv=[], elided=False, problem=why)


def split_markdown(text: str) -> tuple:
    """(prose, code blocks): the prose with every code block blanked (line numbers kept), and each block as
    (language, [(line number, line)])."""
    prose: List[str] = []
    blocks: List[tuple] = []
    block: Optional[List[tuple]] = None
    for n, line in enumerate(text.splitlines(), 1):
        fence = FENCE.match(line)
        if block is None and fence:
            block = []
            blocks.append((fence.group(1).lower(), block))
        elif block is not None and line.strip() == "```":
            block = None
        elif block is not None:
            block.append((n, line))
        else:
            prose.append(line)
            continue
        prose.append("")
    return "\n".join(prose), blocks


def extract_commands(file: Path, text: Optional[str] = None) -> List[DocCommand]:
    """Every idle-* command in one markdown file (`text` instead of the file's content, for tests)."""
    prose, blocks = split_markdown(file.read_text() if text is None else text)
    commands = _inline_commands(file, prose)
    for language, block in blocks:
        if language in SHELL_FENCES:
            commands += _block_commands(file, block)
    return sorted(commands, key=lambda c: c.line)


def _block_commands(file: Path, block: List[tuple]) -> List[DocCommand]:
    commands, variables = [], {}
    for n, text in _logical_lines(block):
        assignment = ASSIGNMENT.match(text.strip())
        try:
            if assignment:
                variables[assignment.group(1)] = " ".join(_split_words(_expand(assignment.group(2), variables)))
                continue
            commands += _commands_in(file, n, text, variables)
        except ValueError as e:      # unbalanced quotes, an unset variable
            if "idle" in text:
                commands.append(_unreadable(file, n, text, str(e)))
    return commands


def _inline_commands(file: Path, prose: str) -> List[DocCommand]:
    commands = []
    for m in INLINE_CODE.finditer(prose):
        span = " ".join(m.group(1).replace("\\|", "|").split())
        line = prose.count("\n", 0, m.start()) + 1
        if not span.startswith(TOOLS) or " -" not in f" {span}":
            continue
        try:
            for command in _commands_in(file, line, span, {}):
                command.elided = True    # prose names a tool with some of its flags, not a whole command
                commands.append(command)
        except ValueError as e:
            commands.append(_unreadable(file, line, span, str(e)))
    return commands


# --- checking against the parsers -------------------------------------------------------------------------------

def _tool_modules() -> Dict[str, str]:
    """idle-* name -> its module under idlevit.cli, read from the console-script entry points' launcher."""
    return {f"idle-{name.replace('_', '-')}": fn.args[0] for name, fn in vars(idlevit_launch).items()
            if getattr(fn, "func", None) is idlevit_launch.launch}


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def _accepting_placeholders(type_fn):
    def convert(value):
        return value if value == PLACEHOLDER else type_fn(value)
    return convert


def build_doc_parser(tool: str, partial: bool = False) -> argparse.ArgumentParser:
    """The tool's own parser, where a placeholder value passes any type (but no fixed choice) and flags are
    not abbreviated; `partial`: no flag is required (argparse reports a missing one before an unknown one)."""
    module = _tool_modules().get(tool)
    if module is None:
        raise LookupError(f"{tool} is not a console script of this project (known: {', '.join(sorted(_tool_modules()))})")
    parser = importlib.import_module(f"idlevit.cli.{module}").build_parser()
    for p in _parsers(parser):
        p.allow_abbrev = False       # `--epoch` for --epochs works by luck: the docs write whole flags
        for action in p._actions:
            if callable(action.type):
                action.type = _accepting_placeholders(action.type)
            if partial and not isinstance(action, argparse._SubParsersAction):
                action.required = False
        for group in p._mutually_exclusive_groups if partial else ():
            group.required = False
    return parser


def _value_for_last_flag(parser: argparse.ArgumentParser, argv: List[str]) -> List[str]:
    """A prose span that ends in a flag taking a value (`idle-export --ckpt`): that flag with a stand-in value."""
    for p in _parsers(parser):
        action = p._option_string_actions.get(argv[-1]) if argv else None
        if action is not None and action.nargs != 0:
            return argv + [action.choices[0] if action.choices else PLACEHOLDER]
    return argv


def check_command(command: DocCommand) -> Optional[str]:
    """None when the tool's parser accepts the command, else why not (one line)."""
    if command.problem:
        return command.problem
    try:
        parser = build_doc_parser(command.tool, partial=command.elided)
    except LookupError as e:
        return str(e)
    argv = _value_for_last_flag(parser, command.argv) if command.elided else command.argv
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            parser.parse_args(argv)
        except SystemExit as e:
            if e.code == 0:          # --help
                return None
            return err.getvalue().strip().splitlines()[-1]
    deprecated = [w for w in err.getvalue().splitlines() if "deprecated" in w]
    return deprecated[0] if deprecated else None


def _all_commands() -> List[DocCommand]:
    return [c for f in DOC_FILES for c in extract_commands(f)]


# --- the tests --------------------------------------------------------------------------------------------------

def test_the_docs_hold_commands_of_every_tool():
    """The extractor finds something: a broken extractor would pass every doc silently."""
    tools = {c.tool for c in _all_commands()}
    assert tools >= set(TOOLS), f"no documented command of {sorted(set(TOOLS) - tools)} was found"


def test_the_readme_stays_a_front_page():
    lines = len((ROOT / "README.md").read_text().splitlines())
    assert lines <= 300, f"README.md has {lines} lines: move the detail to a docs/ page and link it (at most 300)"


def test_every_documented_command_parses():
    failures = [f"{c.where()}: {c.text}\n    {why}" for c in _all_commands() if (why := check_command(c))]
    assert not failures, f"{len(failures)} documented command(s) the tools refuse:\n" + "\n".join(failures)


DOC_SAMPLE = """\
Prose: `idle-export --keep-ratio 0.7 --no-such-flag`, `idle-export` as a name, `idle-fp16 --converter onnxconverter`,
`idle-train --no-such-flag` (which has a required group), `idle-runtime parity --precision`, `idle-export --ckpt`.

```bash
TINY="--model deit_tiny_patch16_224 --img-size 32"
idle-train $TINY --synthetic --epochs 1 \\
    --cut-loss sideways -o runs/x
idle-export --keep-ratio 0.7 -o a.onnx && idle-trt-build --onnx a.onnx --fp8 -o a.engine
for r in 1.0 0.5; do idle-runtime macs --keep-ratio $r; done
torchrun --nproc-per-node 2 -m idlevit.cli.train --synthetic --epoch 3
idle-runtime bench --fp16
idle-calibrate ... --method minmax
idle-trt-build --onnx <model.onnx> --workspace <size> -o x.engine
idle-runtime parity --onnx m.onnx --precision <precision>
idle-export --keep-ratio $R
idle-nonsense --x
```

```python
subprocess.run(["idle-export", "--bad"])   # not a shell block
```
"""


def test_the_check_catches_bad_flags_and_choices(tmp_path):
    commands = extract_commands(tmp_path / "sample.md", DOC_SAMPLE)
    verdict = {(c.line, " ".join([c.tool] + c.argv)): check_command(c) for c in commands}
    bad = {key: why for key, why in verdict.items() if why}
    assert [line for line, _ in verdict] == [1, 1, 2, 2, 2, 6, 8, 8, 9, 10, 11, 12, 13, 14, 15, 16]
    assert [line for line, _ in bad] == [1, 2, 6, 8, 10, 11, 14, 15, 16], verdict
    assert verdict[(1, "idle-fp16 --converter onnxconverter")] is None   # an inline span need not name the required --onnx
    assert verdict[(2, "idle-runtime parity --precision")] is None       # nor the value of its last flag
    assert verdict[(2, "idle-export --ckpt")] is None
    assert "--no-such-flag" in bad[(1, "idle-export --keep-ratio 0.7 --no-such-flag")]
    assert "--no-such-flag" in bad[(2, "idle-train --no-such-flag")]
    assert "sideways" in bad[(6, "idle-train --model deit_tiny_patch16_224 --img-size 32 --synthetic --epochs 1 "
                                 "--cut-loss sideways -o runs/x")]
    assert "--fp8" in bad[(8, "idle-trt-build --onnx a.onnx --fp8 -o a.engine")]
    assert verdict[(9, "idle-runtime macs --keep-ratio 1.0")] is None
    assert "--epoch" in bad[(10, "idle-train --synthetic --epoch 3")]
    assert "deprecated" in bad[(11, "idle-runtime bench --fp16")]
    assert any("$R is not set" in why for (line, _), why in bad.items() if line == 15)
    assert any("not a console script" in why for (line, _), why in bad.items() if line == 16)


def test_placeholders_pass_types_but_not_choices(tmp_path):
    commands = {c.line: c for c in extract_commands(tmp_path / "s.md", DOC_SAMPLE) if c.line > 2}
    assert commands[13].argv == ["--onnx", PLACEHOLDER, "--workspace", PLACEHOLDER, "-o", "x.engine"]
    assert check_command(commands[13]) is None
    assert "invalid choice" in check_command(commands[14])
    assert commands[12].elided and check_command(commands[12]) is None


def _relative_links() -> List[tuple]:
    links = []
    for file in DOC_FILES:
        prose, _ = split_markdown(file.read_text())
        for m in LINK.finditer(prose):
            target = m.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue
            line = prose.count("\n", 0, m.start()) + 1
            links.append((str(file.relative_to(ROOT)), line, target))
    return links


def heading_anchors(markdown: str) -> set:
    """The #fragments GitHub gives a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    prose, _ = split_markdown(markdown)
    slugs = [re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
             for h in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", prose, flags=re.M)]
    return set(slugs) | {f"{s}-{i}" for s in slugs for i in range(1, slugs.count(s))}


@pytest.mark.parametrize("file,line,target", _relative_links())
def test_relative_link_resolves(file, line, target):
    name, _, fragment = target.partition("#")
    path = (ROOT / file).parent / name
    assert path.exists(), f"{file}:{line}: link to {target} names no file ({path.relative_to(ROOT)})"
    if fragment and path.suffix == ".md":
        assert fragment in heading_anchors(path.read_text()), f"{file}:{line}: {path.name} has no heading #{fragment}"


def test_heading_anchors_follow_github():
    assert heading_anchors("# A page\n## ModelOpt (`[quant]`) needs its own environment\n```\n# not a heading\n```\n"
                           "## Results\n## Results\n") == {
        "a-page", "modelopt-quant-needs-its-own-environment", "results", "results-1"}
