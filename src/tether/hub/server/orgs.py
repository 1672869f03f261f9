"""Organisations: namespaces shared by users, each member holding a role.

Users have no table: a user is a name that tokens were made for or that an org lists as a
member. So a name is a user's or an org's, never both: an org cannot take a name a token,
a membership or a repo already uses, and neither a token nor a membership can be made for an
org's name. What each role may do is access.py's; this module only keeps the rows.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tether.errors import HubError
from tether.hub.server.db import Org, OrgMember, Repo, Token
from tether.hub.server.errors import NamespaceTakenError, OrgNotFoundError
from tether.hub.server.repos import NAME_RE

#: Weakest first: ``read`` sees private repos, ``write`` also commits, ``admin`` also changes
#: settings, deletes and moves repos.
ROLES = ("read", "write", "admin")


def find_org(session: Session, name: str) -> Org | None:
    return session.scalar(select(Org).where(Org.name == name))


def get_org(session: Session, name: str) -> Org:
    org = find_org(session, name)
    if org is None:
        raise OrgNotFoundError(f"no organisation named {name}", org=name)
    return org


def is_user(session: Session, name: str) -> bool:
    """Whether ``name`` is taken as a user's namespace (a token, membership or repo)."""
    for column in (Token.user, OrgMember.user, Repo.namespace):
        if session.scalar(select(column).where(column == name).limit(1)) is not None:
            return True
    return False


def check_user_name(session: Session, user: str) -> None:
    """Refuse ``user`` as a user's name when an org has it."""
    if find_org(session, user) is not None:
        raise NamespaceTakenError(
            f"{user} is an organisation, not a user", namespace=user, taken_by="org"
        )


def create_org(session: Session, name: str) -> Org:
    """A new, memberless org; 409 when the name is a user's or an org's already."""
    if not NAME_RE.match(name):
        raise HubError(f"invalid organisation name {name!r}")
    if find_org(session, name) is not None:
        raise NamespaceTakenError(
            f"organisation {name} exists already", namespace=name, taken_by="org"
        )
    if is_user(session, name):
        raise NamespaceTakenError(
            f"{name} is a user's namespace; an organisation cannot share it",
            namespace=name,
            taken_by="user",
        )
    org = Org(name=name)
    session.add(org)
    session.commit()
    return org


def add_member(session: Session, org_name: str, user: str, role: str) -> OrgMember:
    """Make ``user`` a member with ``role``, or change the role of a member."""
    if role not in ROLES:
        raise HubError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    if not NAME_RE.match(user):
        raise HubError(f"invalid user name {user!r}")
    org = get_org(session, org_name)
    check_user_name(session, user)
    member = session.scalar(
        select(OrgMember).where(OrgMember.org_pk == org.id, OrgMember.user == user)
    )
    if member is None:
        member = OrgMember(org_pk=org.id, user=user, role=role)
        session.add(member)
    member.role = role
    session.commit()
    return member


def remove_member(session: Session, org_name: str, user: str) -> None:
    org = get_org(session, org_name)
    member = session.scalar(
        select(OrgMember).where(OrgMember.org_pk == org.id, OrgMember.user == user)
    )
    if member is None:
        raise OrgNotFoundError(f"{user} is not a member of {org_name}", org=org_name, user=user)
    session.delete(member)
    session.commit()


def list_orgs(session: Session) -> list[tuple[Org, list[OrgMember]]]:
    """Every org with its members (by user name)."""
    out = []
    for org in session.scalars(select(Org).order_by(Org.name)):
        members = session.scalars(
            select(OrgMember).where(OrgMember.org_pk == org.id).order_by(OrgMember.user)
        )
        out.append((org, list(members)))
    return out


def memberships(session: Session, user: str) -> list[tuple[str, str]]:
    """(org name, role) of each org ``user`` belongs to, by org name."""
    rows = session.execute(
        select(Org.name, OrgMember.role)
        .join(OrgMember, OrgMember.org_pk == Org.id)
        .where(OrgMember.user == user)
        .order_by(Org.name)
    )
    return [(name, role) for name, role in rows]


def role_in(session: Session, user: str, namespace: str) -> str | None:
    """``user``'s role in the org ``namespace``; None if it is no org or they no member."""
    return session.scalar(
        select(OrgMember.role)
        .join(Org, OrgMember.org_pk == Org.id)
        .where(Org.name == namespace, OrgMember.user == user)
    )
