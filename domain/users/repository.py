from __future__ import annotations

from advanced_alchemy.repository import SQLAlchemyAsyncRepository

from domain.users.models import User, email_key


class UserRepository(SQLAlchemyAsyncRepository[User]):
    model_type = User

    async def get_by_email(self, email: str) -> User | None:
        return await self.get_one_or_none(User.email_key == email_key(email))
