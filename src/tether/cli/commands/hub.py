"""`tether hub serve`, `tether hub token create/revoke/list` and `tether hub org ...`: a
self-hosted hub, its tokens and organisations (both managed on the data directory)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

import tether.hub  # noqa: F401 - the package; the server's dependencies load on demand

_DATA_HELP = "Directory for the database, blobs and the URL-signing key."


def register(group: click.Group) -> None:
    """Add the `hub` group to the `tether` group."""

    @group.group("hub")
    def hub() -> None:
        """A self-hosted Hugging Face–compatible hub (needs `pip install 'tether[hub]'`)."""

    @hub.command("serve")
    @click.option("--data", required=True, type=click.Path(file_okay=False), help=_DATA_HELP)
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", default=8750, show_default=True, type=int)
    @click.option(
        "--public-url",
        default=None,
        help="URL clients reach the server at (default http://HOST:PORT).",
    )
    @click.option(
        "--db",
        "db_url",
        default=None,
        help="SQLAlchemy URL, e.g. postgresql+psycopg://... (default SQLite in DATA).",
    )
    @click.option("--s3-bucket", default=None, help="Keep blobs in this S3 bucket.")
    @click.option("--s3-endpoint-url", default=None, help="S3-compatible endpoint URL.")
    @click.option(
        "--user",
        default="tether",
        show_default=True,
        help="Owner of the first token, created when the server has none.",
    )
    def serve(
        data: str,
        host: str,
        port: int,
        public_url: str | None,
        db_url: str | None,
        s3_bucket: str | None,
        s3_endpoint_url: str | None,
        user: str,
    ) -> None:
        """Run the hub on HOST:PORT; prints HF_ENDPOINT and, on first start, a token."""
        from tether.hub.server import ServerConfig
        from tether.hub.server.datalock import check_free
        from tether.hub.server.serve import first_token, run

        config = ServerConfig(
            data_dir=Path(data).resolve(),
            public_url=public_url or f"http://{host}:{port}",
            db_url=db_url,
            s3_bucket=s3_bucket,
            s3_endpoint_url=s3_endpoint_url,
        )
        check_free(config.data_dir)  # one server per data directory; ask before printing
        token = first_token(config, user)
        click.echo(f"export HF_ENDPOINT={config.public_url}")
        if token:
            click.echo(f"export HF_TOKEN={token}   # write token for user {user!r}; shown once")
        else:
            click.echo("# tokens exist already; make another with `tether hub token create`")
        click.echo(f"serving {config.data_dir} on {host}:{port} (Ctrl-C stops)", err=True)
        run(config, host, port)

    @hub.group("token")
    def token() -> None:
        """Manage access tokens (stored hashed; read or write scope)."""

    @token.command("create")
    @click.option("--data", required=True, type=click.Path(file_okay=False), help=_DATA_HELP)
    @click.option("--db", "db_url", default=None, help="SQLAlchemy URL (default SQLite in DATA).")
    @click.option("--user", required=True, help="The user (namespace) the token acts as.")
    @click.option(
        "--scope", type=click.Choice(["read", "write"]), default="read", show_default=True
    )
    @click.option("--name", default="default", show_default=True, help="A label to revoke by.")
    def token_create(data: str, db_url: str | None, user: str, scope: str, name: str) -> None:
        """Create a token and print it (the only time it is shown)."""
        from tether.hub.server import ServerConfig
        from tether.hub.server.serve import open_sessions
        from tether.hub.server.tokens import create_token

        config = ServerConfig(data_dir=Path(data).resolve(), public_url="", db_url=db_url)
        with open_sessions(config)() as session:
            click.echo(create_token(session, user, scope, name=name))

    @token.command("revoke")
    @click.option("--data", required=True, type=click.Path(file_okay=False), help=_DATA_HELP)
    @click.option("--db", "db_url", default=None, help="SQLAlchemy URL (default SQLite in DATA).")
    @click.option("--name", default=None, help="Revoke every live token with this name.")
    @click.option(
        "--token-stdin",
        is_flag=True,
        help="Read the token to revoke from standard input (keeps it out of ps).",
    )
    def token_revoke(data: str, db_url: str | None, name: str | None, token_stdin: bool) -> None:
        """Revoke a token by name, or by value read from stdin."""
        from tether.hub.server import ServerConfig
        from tether.hub.server.serve import open_sessions
        from tether.hub.server.tokens import revoke_token

        if not name and not token_stdin:
            raise click.UsageError("give --name NAME or --token-stdin")
        value = sys.stdin.read().strip() if token_stdin else None
        config = ServerConfig(data_dir=Path(data).resolve(), public_url="", db_url=db_url)
        with open_sessions(config)() as session:
            count = revoke_token(session, token=value, name=None if value else name)
        click.echo(f"revoked {count} token(s)")

    @token.command("list")
    @click.option("--data", required=True, type=click.Path(file_okay=False), help=_DATA_HELP)
    @click.option("--db", "db_url", default=None, help="SQLAlchemy URL (default SQLite in DATA).")
    def token_list(data: str, db_url: str | None) -> None:
        """List tokens (id, user, name, scope, revoked); never their values."""
        from tether.hub.server import ServerConfig
        from tether.hub.server.serve import open_sessions
        from tether.hub.server.tokens import list_tokens

        config = ServerConfig(data_dir=Path(data).resolve(), public_url="", db_url=db_url)
        with open_sessions(config)() as session:
            for row in list_tokens(session):
                state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "live"
                click.echo(f"{row.id}\t{row.user}\t{row.name}\t{row.scope}\t{state}")

    @hub.group("org")
    def org() -> None:
        """Manage organisations: shared namespaces whose members read, write or admin."""

    @org.command("create")
    @click.argument("name")
    @click.option("--data", required=True, type=click.Path(file_okay=False), help=_DATA_HELP)
    @click.option("--db", "db_url", default=None, help="SQLAlchemy URL (default SQLite in DATA).")
    def org_create(name: str, data: str, db_url: str | None) -> None:
        """Create the organisation NAME (a name no user has)."""
        from tether.hub.server.orgs import create_org

        with _sessions(data, db_url)() as session:
            create_org(session, name)
        click.echo(f"created organisation {name}")

    @org.command("add-member")
    @click.argument("org_name", metavar="ORG")
    @click.argument("user")
    @click.option("--data", required=True, type=click.Path(file_okay=False), help=_DATA_HELP)
    @click.option("--db", "db_url", default=None, help="SQLAlchemy URL (default SQLite in DATA).")
    @click.option(
        "--role",
        type=click.Choice(["read", "write", "admin"]),
        default="read",
        show_default=True,
        help="read: see private repos; write: also commit; admin: also settings, delete, move.",
    )
    def org_add_member(org_name: str, user: str, data: str, db_url: str | None, role: str) -> None:
        """Make USER a member of ORG with --role (or change a member's role)."""
        from tether.hub.server.orgs import add_member

        with _sessions(data, db_url)() as session:
            add_member(session, org_name, user, role)
        click.echo(f"{user} is a member of {org_name} with role {role}")

    @org.command("remove-member")
    @click.argument("org_name", metavar="ORG")
    @click.argument("user")
    @click.option("--data", required=True, type=click.Path(file_okay=False), help=_DATA_HELP)
    @click.option("--db", "db_url", default=None, help="SQLAlchemy URL (default SQLite in DATA).")
    def org_remove_member(org_name: str, user: str, data: str, db_url: str | None) -> None:
        """Remove USER from ORG (their tokens then no longer reach its repos)."""
        from tether.hub.server.orgs import remove_member

        with _sessions(data, db_url)() as session:
            remove_member(session, org_name, user)
        click.echo(f"removed {user} from {org_name}")

    @org.command("list")
    @click.option("--data", required=True, type=click.Path(file_okay=False), help=_DATA_HELP)
    @click.option("--db", "db_url", default=None, help="SQLAlchemy URL (default SQLite in DATA).")
    def org_list(data: str, db_url: str | None) -> None:
        """List organisations, one line per member (org, user, role)."""
        from tether.hub.server.orgs import list_orgs

        with _sessions(data, db_url)() as session:
            for row, members in list_orgs(session):
                if not members:
                    click.echo(f"{row.name}\t-\t-")
                for member in members:
                    click.echo(f"{row.name}\t{member.user}\t{member.role}")


def _sessions(data: str, db_url: str | None) -> Any:
    """Sessions on the data directory's database, migrated first (as the server does)."""
    from tether.hub.server import ServerConfig
    from tether.hub.server.serve import open_sessions

    config = ServerConfig(data_dir=Path(data).resolve(), public_url="", db_url=db_url)
    return open_sessions(config)
