"""polyfactory factories for test data."""

from __future__ import annotations

from polyfactory.factories.msgspec_factory import MsgspecFactory

from domain.projects.schemas import ProjectCreate
from domain.tasks.schemas import TaskCreate
from domain.users.schemas import NewUser


class NewUserFactory(MsgspecFactory[NewUser]):
    __check_model__ = False

    @classmethod
    def email(cls) -> str:
        return f"{cls.__faker__.user_name()}.{cls.__faker__.uuid4()[:8]}@example.com"

    @classmethod
    def password(cls) -> str:
        return cls.__faker__.password(length=14)

    @classmethod
    def scopes(cls) -> frozenset[str]:
        return frozenset({"projects:read", "projects:write"})


class ProjectCreateFactory(MsgspecFactory[ProjectCreate]):
    __check_model__ = False

    @classmethod
    def name(cls) -> str:
        return f"{cls.__faker__.catch_phrase()} {cls.__faker__.uuid4()[:6]}"

    @classmethod
    def description(cls) -> str | None:
        return cls.__faker__.sentence()


class TaskCreateFactory(MsgspecFactory[TaskCreate]):
    __check_model__ = False

    @classmethod
    def title(cls) -> str:
        return cls.__faker__.sentence(nb_words=4)

    @classmethod
    def description(cls) -> str | None:
        return cls.__faker__.sentence()

    @classmethod
    def tags(cls) -> list[str]:
        return []
