"""Users: who may call the API and in which role; the administrator manages them.

A token is shown once, in the answer that issued it; only its hash is kept.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from application.app import IssuedToken
from application.identity import users
from domain.user import NAME_PATTERN, User, user_id
from interfaces.api.deps import COMMAND_RESPONSES, ActorDep, AppDep, IfMatchDep, etag, reply
from interfaces.api.schemas import CommandPublic, ReasonCreate, UserCreate, UserPublic, UsersPublic, UserTokenPublic

commands = APIRouter(prefix="/users", tags=["users"], responses=COMMAND_RESPONSES)
queries = APIRouter(prefix="/users", tags=["users"])

UserName = Annotated[str, Path(pattern=NAME_PATTERN, max_length=64)]


def _issued(response: Response, name: str, issued: IssuedToken) -> UserTokenPublic:
    response.headers["Cache-Control"] = "no-store"
    return UserTokenPublic(**reply(response, issued.result).model_dump(), name=name, token=issued.token)


@commands.post("", status_code=201, operation_id="add_user")
def add_user(body: UserCreate, app: AppDep, ctx: ActorDep, response: Response) -> UserTokenPublic:
    """Add a user with a role (and branch) and issue their API token, shown this once."""
    response.headers["Location"] = f"/users/{body.name}"
    return _issued(response, body.name, app.add_user(ctx, name=body.name, role=body.role, branch=body.branch))


@commands.post("/{name}/token", operation_id="rotate_user_token")
def rotate_user_token(name: UserName, app: AppDep, ctx: ActorDep, expected: IfMatchDep,
                      response: Response) -> UserTokenPublic:
    """Issue a new token for the user, shown this once; the old one stops working."""
    return _issued(response, name, app.rotate_user_token(ctx, name, expected_version=expected))


@commands.post("/{name}/revoke", operation_id="revoke_user")
def revoke_user(name: UserName, body: ReasonCreate, app: AppDep, ctx: ActorDep, expected: IfMatchDep,
                response: Response) -> CommandPublic:
    """Revoke the user, with the reason; their token stops working at once."""
    return reply(response, app.revoke_user(ctx, name, reason=body.reason, expected_version=expected))


@queries.get("/{name}", operation_id="get_user", responses={404: COMMAND_RESPONSES[404]})
def get_user(name: UserName, app: AppDep, response: Response) -> UserPublic:
    """One user's current state; ETag is its version."""
    user = app.load(User, user_id(name))
    response.headers["ETag"] = etag(user.version)
    return UserPublic.model_validate(user)


@queries.get("", operation_id="list_users")
def list_users(app: AppDep) -> UsersPublic:
    """Every user ever added, revoked ones included, in the order they were added."""
    return UsersPublic(data=[UserPublic.model_validate(user) for user in users(app)])
