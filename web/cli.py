"""`flask staff create|disable|list`: staff accounts of the web app."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import AppGroup

from api.common import session
from core import staff
from core.errors import DomainError

staff_cli = AppGroup("staff", help="Staff accounts of the web app (/app/).")


@staff_cli.command("create")
@click.option("--email", required=True, help="The staff member's e-mail address (their sign-in name).")
@click.option("--role", required=True, type=click.Choice(staff.ROLES), help="What the account may do.")
@click.option("--program", "program", default=None, help="Slug of the program (required for program_staff).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (first line).")
def create_command(email: str, role: str, program: str | None, password_stdin: bool) -> None:
    """Create a staff account; the password is asked for (or read from stdin), never an argument."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = staff.create_staff(session(), email, password, role, program)
        session().commit()
    except DomainError as exc:
        session().rollback()
        raise click.ClickException(exc.message) from exc
    click.echo(f"Created {user.role} {user.email}" + (f" of {user.program.slug}" if user.program else "") + ".")


@staff_cli.command("disable")
@click.option("--email", required=True)
def disable_command(email: str) -> None:
    """Disable an account: no more sign-ins, and its open sessions end."""
    try:
        user = staff.disable_staff(session(), email)
        session().commit()
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"Disabled {user.email}.")


def register(app: Flask) -> None:
    app.cli.add_command(staff_cli)
