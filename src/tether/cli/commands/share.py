"""`tether push` and `tether pull`: verified bundles to and from any Hugging Face–compatible hub.

The hub is the one huggingface_hub talks to (``HF_ENDPOINT``, default huggingface.co),
and the token is its own (``HF_TOKEN``, ``hf auth login``): there is no token option.
"""

from __future__ import annotations

import json

import click


def register(group: click.Group) -> None:
    """Add `push` and `pull` to the `tether` group."""

    @group.command("push")
    @click.argument("bundle", type=click.Path(file_okay=False, exists=True))
    @click.argument("repo_id")
    @click.option("--revision", default=None, help="Branch to commit to (created if missing).")
    @click.option("--private", is_flag=True, help="Create the repo private (if it is new).")
    @click.option("-m", "--message", default=None, help="Commit message.")
    @click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
    def push_cmd(
        bundle: str,
        repo_id: str,
        revision: str | None,
        private: bool,
        message: str | None,
        as_json: bool,
    ) -> None:
        """Upload BUNDLE to REPO_ID (org/name) in one commit, then check every file the hub
        holds against the manifest's sha256.

        The hub and token are huggingface_hub's: HF_ENDPOINT, HF_TOKEN or `hf auth login`.
        """
        from tether.hub.push import push

        result = push(bundle, repo_id, revision=revision, private=private, commit_message=message)
        click.echo(json.dumps(result.to_dict(), indent=2) if as_json else result.format())

    @group.command("pull")
    @click.argument("repo")
    @click.argument("directory", required=False, type=click.Path(file_okay=False))
    @click.option("--revision", default=None, help="Branch, tag or commit (or REPO@REV).")
    @click.option(
        "--trust-remote-code",
        is_flag=True,
        help="Run the bundle's own code to reload it (review it first).",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
    def pull_cmd(
        repo: str,
        directory: str | None,
        revision: str | None,
        trust_remote_code: bool,
        as_json: bool,
    ) -> None:
        """Download the bundle REPO (org/name[@rev]) into the HF cache (or DIRECTORY),
        verify its manifest and fingerprint, and print the commit it got.

        Exit 0 when it verifies, 1 with a report of what differs when not, 2 on errors.
        """
        from tether.cli.options import split_revision
        from tether.hub.pull import pull

        repo_id, rev = split_revision(repo, revision)
        result = pull(repo_id, rev, directory, trust_remote_code=trust_remote_code, check=False)
        click.echo(json.dumps(result.to_dict(), indent=2) if as_json else result.format())
        click.get_current_context().exit(0 if result.ok else 1)
