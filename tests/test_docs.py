"""The README and docs/ stay true without training anything: every command they show still parses against today's
configs, Makefile and modules, and every relative link still leads somewhere.

Commands are the lines of ```bash blocks, and inline code spans starting with `python src/train.py`, `make ` or
`python -m nncompress.`:

- `python src/train.py ...`: `nncompress.config.check_choices` (Hydra composes the config for every value of each
  sweep; an unknown key or option is a UserError); `hydra/<group>=<option>` choices (launchers) must exist too;
- `make <target> [ARGS=...]`: the target is in the Makefile, and its ARGS are checked as the recipe would pass them;
- `python -m nncompress.<module>`: it imports and `--help` exits 0; the `--flags` a command shows are in that help.

A ```yaml block whose first line is `# <dir>/<group>/<name>.yaml` is a file the page asks the reader to write: a
command with `--config-dir=<dir>` is checked with those files in place.
"""
import ast
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from nncompress.config import check_choices
from nncompress.errors import UserError
from nncompress.resources import CONF_DIR

from conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 200
FENCE = re.compile(r"^(\s*)(```|~~~)\s*([\w-]*)\s*$")
SPAN = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
SHELL_LANGS = {"bash", "sh", "shell"}


@dataclass
class Block:
    page: Path
    line: int  # 1-based, of the opening fence
    lang: str
    text: str


@dataclass
class Command:
    page: Path
    line: int
    text: str

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def rel(page: Path) -> str:
    return str(page.relative_to(ROOT))


def split_page(page: Path) -> tuple[list[Block], list[tuple[int, str]]]:
    """The fenced blocks of `page`, and its other lines (number, text)."""
    blocks, prose, fence = [], [], None
    for number, line in enumerate(page.read_text().splitlines(), 1):
        match = FENCE.match(line)
        if fence is None and match:
            fence = (number, match[1], match[2], match[3].lower(), [])
        elif fence is not None and line.strip() == fence[2]:
            blocks.append(Block(page, fence[0], fence[3], "\n".join(fence[4])))
            fence = None
        elif fence is not None:
            indent = fence[1]
            fence[4].append(line[len(indent) :] if line.startswith(indent) else line)
        else:
            prose.append((number, line))
    assert fence is None, f"{rel(page)}:{fence[0]}: a code block that never closes"
    return blocks, prose


SPLIT = {page: split_page(page) for page in PAGES}


def shell_lines(block: Block):
    """(line number, command) per command of a shell block, continuation lines joined, comments and blanks left out."""
    pending, start = "", None
    for offset, line in enumerate(block.text.splitlines(), 1):
        if start is None:
            start = block.line + offset
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        text = (pending + line).strip()
        pending, first = "", start
        start = None
        if text and not text.startswith("#"):
            yield first, text


# The console scripts, as the commands they install (pyproject's [project.scripts]).
SCRIPTS = {"nncompress-train": ["python", "src/train.py"], "nncompress-report": ["python", "-m", "nncompress.report"]}


def is_command(text: str) -> bool:
    return text.startswith(("python src/train.py", "make ", "python -m nncompress.", *SCRIPTS))


def commands() -> list[Command]:
    found = []
    for page, (blocks, prose) in SPLIT.items():
        for block in blocks:
            if block.lang in SHELL_LANGS:
                found += [Command(page, n, text) for n, text in shell_lines(block)]
        for number, line in prose:
            found += [Command(page, number, span.strip()) for span in SPAN.findall(line) if is_command(span.strip())]
    return found


COMMANDS = commands()


def words(command: Command) -> list[str]:
    """The command's words, comments and leading `VAR=value` assignments left out."""
    argv = shlex.split(command.text, comments=True)
    while argv and ENV.match(argv[0]):
        argv.pop(0)
    return SCRIPTS.get(argv[0], argv[:1]) + argv[1:] if argv else argv


def makefile_rules() -> dict[str, list[str]]:
    """Makefile target -> its recipe lines."""
    rules, target = {}, None
    for line in (ROOT / "Makefile").read_text().splitlines():
        if line.startswith("\t") and target:
            rules[target].append(line.strip())
            continue
        match = re.match(r"^([A-Za-z][\w.-]*)\s*:(?!=)", line)
        target = match[1] if match else None
        if target:
            rules.setdefault(target, [])
    return rules


RULES = makefile_rules()


def expand(command: Command) -> list[list[str]]:
    """The python command lines a documented command runs: itself, or a make target's recipe with its ARGS."""
    argv = words(command)
    if argv[:1] != ["make"]:
        return [argv]
    assert len(argv) > 1, f"{command.id}: `make` without a target"
    target, variables = argv[1], dict(a.split("=", 1) for a in argv[2:] if "=" in a)
    assert target in RULES, f"{command.id}: no Makefile target '{target}' (targets: {', '.join(sorted(RULES))})"
    unknown = set(variables) - {"ARGS"}
    assert not unknown, f"{command.id}: make variables the recipe does not read: {unknown}"
    runs = []
    for recipe in RULES[target]:
        if "$(PY)" not in recipe:
            continue
        line = recipe.replace("$(PY)", "python").replace("$(RESULTS)", "multirun/results")
        head, _, tail = line.partition("$(ARGS)")
        runs.append(shlex.split(head) + shlex.split(variables.get("ARGS", "")) + shlex.split(tail))
    runs = [argv for argv in runs if kind(argv) != "other"]  # the recipe's own tools (pytest, venv) are the Makefile's
    assert runs or "ARGS" not in variables, f"{command.id}: ARGS given to `make {target}`, which this test cannot check"
    return runs


def kind(argv: list[str]) -> str:
    if argv[:2] == ["python", "src/train.py"]:
        return "train"
    if argv[:2] == ["python", "-m"] and len(argv) > 2 and argv[2].startswith("nncompress"):
        return "module"
    if argv[:1] == ["python"] and len(argv) > 1 and argv[1].endswith(".py"):
        return "script"
    return "other"


def flags(argv: list[str]) -> list[str]:
    """The `--options` of `argv` (`[--out DIR]`, a usage line's optional part, included)."""
    options = (a.strip("[]").split("=", 1)[0] for a in argv)
    return [o for o in options if o.startswith("--") and o != "--help"]


def config_files() -> dict[str, str]:
    """Files a page asks the reader to write: relative path -> text."""
    files = {}
    for blocks, _ in SPLIT.values():
        for block in blocks:
            match = re.match(r"#\s*(\S+\.yaml)\s*\n", block.text)
            if block.lang == "yaml" and match:
                files[match[1]] = block.text
    return files


def train_argv(argv: list[str], tmp_path: Path) -> list[str]:
    """The overrides of a train.py command (no `-m`), a `--config-dir` the page defines pointed at its files."""
    out = []
    for arg in argv[2:]:
        if arg in ("-m", "--multirun"):
            continue
        if arg.startswith("--config-dir="):
            folder = arg.split("=", 1)[1]
            if not (ROOT / folder).is_dir():
                written = [p for p in config_files() if p.startswith(folder.rstrip("/") + "/")]
                assert written, f"--config-dir={folder}: no such folder, and no page's yaml block is a file in it"
                for path in written:
                    (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
                    (tmp_path / path).write_text(config_files()[path])
                arg = f"--config-dir={tmp_path / folder}"
        out.append(arg)
    return out


def check_hydra_choices(overrides: list[str], where: str, text: str) -> None:
    """`hydra/<group>=<option>` (a launcher, a sweeper) names a config Hydra has, plugins included."""
    from hydra import compose, initialize_config_dir

    choices = [a for a in overrides if re.match(r"^hydra/[\w/]+=", a)]
    if choices:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            try:
                compose("train", overrides=choices, return_hydra_config=True)
            except Exception as err:
                pytest.fail(f"{where}: {text}\n{str(err).splitlines()[0]}")


def same_commands(found: list[Command]) -> list[list[Command]]:
    """The commands grouped by their words (a command shown on several pages is checked once)."""
    groups: dict[tuple, list[Command]] = {}
    for command in found:
        groups.setdefault(tuple(words(command)), []).append(command)
    return list(groups.values())


def runs_training(command: Command) -> bool:
    try:
        return any(kind(argv) == "train" for argv in expand(command))
    except AssertionError:  # a make target that is not there: test_every_command_is_of_a_kind_this_test_checks says so
        return False


TRAINING = [group for group in same_commands(COMMANDS) if runs_training(group[0])]


@pytest.mark.parametrize("group", TRAINING, ids=lambda group: group[0].id)
def test_training_commands_compose(group, tmp_path):
    command, where = group[0], ", ".join(c.id for c in group)
    for argv in expand(command):
        if kind(argv) != "train":
            continue
        overrides = train_argv(argv, tmp_path)
        try:
            check_choices(overrides)
        except UserError as err:
            pytest.fail(f"{where}: {command.text}\n{err}")
        check_hydra_choices(overrides, where, command.text)


def test_every_command_is_of_a_kind_this_test_checks():
    """A shell block holds only commands this test can check; make targets and scripts exist."""
    for command in COMMANDS:
        for argv in expand(command):  # asserts the make target and its variables
            assert kind(argv) != "other", f"{command.id}: a command this test cannot check: {command.text}"
            if kind(argv) == "script":
                script = ROOT / argv[1]
                assert script.is_file(), f"{command.id}: no script {argv[1]}"
                source = script.read_text()
                missing = [f for f in flags(argv) if f'"{f}"' not in source]
                assert not missing, f"{command.id}: {argv[1]} has no option {missing}"
    kinds = {kind(argv) for c in COMMANDS for argv in expand(c)}
    assert {"train", "module"} <= kinds, "the command extraction found no training or module command"
    assert any(words(c)[0] == "make" for c in COMMANDS), "the command extraction found no make command"


# One interpreter for every module's `--help` (torch imported once): each module run as `python -m` runs it.
HELP_DRIVER = """
import contextlib, io, json, runpy, sys
modules, report = sys.argv[1:], {}
for module in modules:
    sys.argv, out = [module, "--help"], io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exit:
        code = exit.code or 0
    except BaseException as err:
        code = repr(err)
    report[module] = [code, out.getvalue()]
print("HELP-REPORT " + json.dumps(report))
"""


def test_module_commands_import_and_show_their_help():
    """Each `python -m nncompress.X` imports and `--help` exits 0; the flags the docs show are in its help."""
    shown: dict[str, set[str]] = {}
    for command in COMMANDS:
        for argv in expand(command):
            if kind(argv) == "module":
                shown.setdefault(argv[2], set()).update(flags(argv[3:]))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-c", HELP_DRIVER, *sorted(shown)], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0 and "HELP-REPORT " in run.stdout, run.stderr[-3000:]
    report = json.loads(run.stdout.split("HELP-REPORT ", 1)[1])
    for module, (code, text) in report.items():
        assert code == 0, f"python -m {module} --help: {code}"
        missing = [f for f in sorted(shown[module]) if f not in text]
        assert not missing, f"python -m {module} has no option {missing}:\n{text}"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of `page`'s headings: a repeated heading's get -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for _, line in SPLIT[page][1]:
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            base = slug(match[1])
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path):
    for number, line in SPLIT[page][1]:
        for target in LINK.findall(SPAN.sub("", line)):
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                yield number, target


def test_relative_links_resolve():
    broken = []
    for page in PAGES:
        for number, target in links(page):
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            where = f"{rel(page)}:{number}: ({target})"
            if not dest.exists() or not dest.is_relative_to(ROOT):
                broken.append(f"{where} leads nowhere")
            elif anchor and dest.suffix == ".md" and dest in SPLIT and anchor not in anchors(dest):
                broken.append(f"{where}: no heading '#{anchor}' in {rel(dest)}")
    assert not broken, "\n".join(broken)


def test_readme_is_a_front_door_to_every_docs_page():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines (at most {README_MAX_LINES})"
    linked = {(ROOT / target.partition("#")[0]).resolve() for _, target in links(ROOT / "README.md")}
    unlinked = [rel(p) for p in PAGES[1:] if p.resolve() not in linked]
    assert not unlinked, f"docs pages the README does not link: {unlinked}"


def test_code_examples_parse():
    for page, (blocks, _) in SPLIT.items():
        for block in blocks:
            where = f"{rel(page)}:{block.line}"
            if block.lang == "python":
                ast.parse(block.text, filename=where)
            elif block.lang == "yaml":
                assert yaml.safe_load(block.text) is not None, f"{where}: an empty yaml block"
