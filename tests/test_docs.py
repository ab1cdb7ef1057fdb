"""The docs say what the code does: the referral lifecycle (the table of docs/referrals.md
and the words of the API reference) is the one core/referrals.py declares, every `flask`
command a doc gives exists with the options it shows (and is written so that it runs:
`.venv/bin/flask`), every link between the docs leads somewhere, and the README stays short.
No database is needed."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
import yaml
from flask import cli as flask_cli

from api import config, create_app
from core import referrals
from models.vocab import REFERRAL_STATUSES

ROOT = Path(__file__).resolve().parents[1]
# What a reader follows (commands are checked here), and with the changelog every doc (links).
GUIDES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DOCS = [*GUIDES, ROOT / "CHANGELOG.md"]
FENCE = re.compile(r"^ *```[^\n]*\n(.*?)^ *```", re.S | re.M)
INLINE = re.compile(r"`([^`]+)`")  # a span may run over a line break


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def code_of(text: str) -> list[str]:
    """Every line of the fenced blocks, then every inline code span outside them."""
    lines = [line for block in FENCE.findall(text) for line in block.splitlines()]
    prose = FENCE.sub("", text)
    return lines + [" ".join(span.split()) for span in INLINE.findall(prose)]


# ----------------------------------------------------------------------------- the lifecycle


def _codes(cell: str) -> list[str]:
    return re.findall(r"`([a-z-]+)`", cell)


def lifecycle_section() -> str:
    text = read(ROOT / "docs" / "referrals.md")
    return text.split("### The lifecycle", 1)[1].split("\n## ", 1)[0]


def test_the_lifecycle_table_is_the_one_core_referrals_declares():
    rows = [line for line in lifecycle_section().splitlines() if line.startswith("| `")]
    table = {}
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        (start,) = _codes(cells[0])
        table[start] = (_codes(cells[1]), _codes(cells[2]))
    assert list(table) == list(referrals.NEXT), "one row per open status, in the order of NEXT"
    for start, (by_receiver, by_sender) in table.items():
        allowed = referrals.next_statuses(start)
        assert by_receiver == [s for s in allowed if s in referrals.RECEIVER_MOVES], start
        assert by_sender == [s for s in allowed if s in referrals.SENDER_MOVES], start
        assert set(by_receiver) | set(by_sender) == set(allowed), start


def test_the_closed_statuses_and_the_reasons_are_the_ones_core_referrals_declares():
    section = lifecycle_section()
    closed = section.split("no move leaves them:", 1)[1].split(".", 1)[0]
    assert set(_codes(closed)) == set(REFERRAL_STATUSES) - set(referrals.OPEN)
    text = read(ROOT / "docs" / "referrals.md")
    reasons = text.split("A `reason` is required for", 1)[1].split(";", 1)[0]
    assert set(_codes(reasons)) == referrals.REASON_REQUIRED


def _operation(path: str, method: str) -> str:
    spec = yaml.safe_load(read(ROOT / "openapi.yaml"))
    return " ".join(spec["paths"][path][method]["description"].split())


def _statuses(text: str) -> list[str]:
    return re.findall(r"[a-z]+(?:-[a-z]+)*", text.replace(" and ", ", "))


def test_the_api_reference_states_the_lifecycle_core_referrals_declares():
    """The description of POST /referrals/{id}/status (openapi.yaml, from its docstring):
    `a -> b, c; ...`, `a <-> b, and on to c, d` (both ways, then on), `any open status -> x`."""
    text = _operation("/referrals/{referral_id}/status", "post")
    moves, sentences = text.split(". ", 1)
    stated: dict[str, list[str]] = {}
    for clause in moves.split(";"):
        start, arrow, rest = re.match(r"\s*(.+?) (<?->) (.+)", clause).groups()
        if start == "any open status":
            (everywhere,) = _statuses(rest.split("(")[0])
            continue
        if arrow == "<->":
            other, onward = rest.split(", and on to ")
            stated[start] = [other.strip(), *_statuses(onward)]
            stated[other.strip()] = [start, *_statuses(onward)]
        else:
            stated[start] = _statuses(rest)
    assert {start: [*moves, everywhere] for start, moves in stated.items()} == {
        start: referrals.next_statuses(start) for start in referrals.NEXT
    }
    reasons = sentences.split("A `reason` is required for", 1)[1].split(";", 1)[0]
    assert set(_statuses(reasons)) == referrals.REASON_REQUIRED
    task_update = _operation("/fhir/Task/{resource_id}", "put")
    reasons = task_update.split("required for", 1)[1].split(")", 1)[0]
    assert set(_statuses(reasons)) == referrals.REASON_REQUIRED


# ----------------------------------------------------------------------------- commands


@pytest.fixture(scope="module")
def cli_app():
    return create_app(config.TestConfig("sqlite://"))  # the commands only; nothing is connected


def _documented_commands() -> list[tuple[str, str]]:
    found = []
    for path in GUIDES:
        for code in code_of(read(path)):
            for match in re.finditer(r"\.venv/bin/flask ([^#`]*)", code):
                found.append((path.name, match.group(1).strip().rstrip("\\").strip()))
    return found


def test_commands_are_written_to_run_with_the_projects_flask():
    """The `flask` on a PATH is not this project's (No module named 'sqlalchemy')."""
    for path in GUIDES:
        for code in code_of(read(path)):
            assert not re.match(r"\s*(\$ )?flask ", code), f"{path.name}: say .venv/bin/flask in `{code}`"


def test_every_documented_command_exists_with_its_options(cli_app):
    commands = _documented_commands()
    assert len(commands) > 20
    builtins = {"run": flask_cli.run_command, "routes": flask_cli.routes_command, "shell": flask_cli.shell_command}
    for doc, line in commands:
        words = [word.strip("[]") for word in shlex.split(line.replace("|", " "), posix=True)]
        if not words or words[0].startswith("-"):  # `flask --help`: Flask's own options
            continue
        command: click.Command = builtins.get(words[0]) or cli_app.cli.commands.get(words[0])
        assert command is not None, f"{doc}: no command `flask {words[0]}`"
        rest = words[1:]
        while isinstance(command, click.Group) and rest and rest[0] in command.commands:
            command = command.commands[rest.pop(0)]
        assert not isinstance(command, click.Group), f"{doc}: `flask {line}` names a group, not a command"
        options = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)} | {"--help"}
        given = {word.split("=", 1)[0] for word in rest if word.startswith("--")}
        assert given <= options, f"{doc}: `flask {line}`: {given - options} not options of the command"
        if given:  # a command shown with options, to be run: it has every required one
            required = {param.opts[0] for param in command.params if isinstance(param, click.Option) and param.required}
            assert required <= given, f"{doc}: `flask {line}` lacks {required - given}"


# ----------------------------------------------------------------------------- links


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = FENCE.sub("", read(path))
    return {_anchor(heading) for heading in re.findall(r"^#{1,6} (.+)$", text, re.M)}


def test_every_link_between_the_docs_leads_somewhere():
    for path in DOCS:
        text = FENCE.sub("", read(path))
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            linked = (path.parent / file).resolve() if file else path
            assert linked.exists(), f"{path.name}: {target} names no file"
            if anchor and linked.suffix == ".md":
                assert anchor in _anchors(linked), f"{path.name}: {target} names no heading"


def test_the_readme_is_short_and_maps_every_doc():
    readme = read(ROOT / "README.md")
    assert len(readme.splitlines()) <= 200
    for doc in sorted((ROOT / "docs").glob("*.md")):
        assert f"(docs/{doc.name})" in readme, f"the README does not link docs/{doc.name}"
    assert "(CHANGELOG.md)" in readme
    assert "docs/screenshots/" in readme
