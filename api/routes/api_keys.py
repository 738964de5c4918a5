"""API keys (admin): issue, list, revoke. Every key belongs to a person; maker-checker compares people."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, field_validator, model_validator

from api.deps import SessionDep, SessionFactoryDep, require
from api.errors import ApiError
from api.params import DbId
from api.schemas.api_keys import ApiKeyView, CreatedApiKey, RevokedKey
from db.api_keys import Principal, issue_key, list_keys, revoke_key
from db.audit import record
from db.engine import unit_of_work
from domain.access import PERSON_MAX_LENGTH, Role, normalize_person
from domain.refusals import Refusal

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"])
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]


class CreateApiKey(BaseModel):
    role: Role
    person: str = Field(
        min_length=1,
        max_length=PERSON_MAX_LENGTH,
        description="who holds the key (e.g. an e-mail); two keys of one person are one maker or checker",
    )
    name: str = Field(min_length=1, max_length=200)
    merchant_id: str | None = Field(default=None, min_length=1, max_length=64)

    @field_validator("person")
    @classmethod
    def _person(cls, value: str) -> str:
        return normalize_person(value)

    @model_validator(mode="after")
    def _merchant_binding(self) -> "CreateApiKey":
        if self.role is Role.MERCHANT and not self.merchant_id:
            raise ValueError("a merchant key needs merchant_id")
        if self.role is not Role.MERCHANT and self.merchant_id:
            raise ValueError("only a merchant key takes merchant_id")
        return self


# No Idempotency-Key here on purpose: a stored replay would have to keep the clear key.
@router.post("", status_code=201, response_model=CreatedApiKey, summary="Issue an API key (shown once)")
async def create_api_key(body: CreateApiKey, factory: SessionFactoryDep, admin: Admin) -> CreatedApiKey:
    # Committed before answering (a request-scoped session would commit after the response is sent).
    async with unit_of_work(factory) as session:
        key_id, key = await issue_key(
            session, role=body.role, name=body.name, merchant_id=body.merchant_id, person=body.person
        )
        await record(
            session,
            admin,
            "api_key.created",
            "api_key",
            str(key_id),
            role=body.role.value,
            person=body.person,
            name=body.name,
            merchant_id=body.merchant_id,
        )
    return CreatedApiKey(
        key_id=key_id,
        id=key_id,
        role=body.role,
        person=body.person,
        name=body.name,
        merchant_id=body.merchant_id,
        key=key,
    )


@router.get("", response_model=list[ApiKeyView], summary="API keys (never the keys themselves), oldest first")
async def get_api_keys(session: SessionDep, _: Admin, include_revoked: bool = False) -> list[dict[str, Any]]:
    return await list_keys(session, include_revoked=include_revoked)


@router.delete(
    "/{key_id}", response_model=RevokedKey, summary="Revoke an API key: refused from the very next request on"
)
async def delete_api_key(key_id: DbId, factory: SessionFactoryDep, admin: Admin) -> dict[str, Any]:
    # Committed before answering, so the key is refused from the caller's very next request on
    # (keys are looked up on every request, never cached).
    async with unit_of_work(factory) as session:
        row, revoked_now = await revoke_key(session, key_id)
        if row is None:
            raise ApiError(Refusal.API_KEY_NOT_FOUND, f"API key {key_id} does not exist")
        if revoked_now:  # the revocation and its audit row commit together; a repeat records nothing
            await record(session, admin, "api_key.revoked", "api_key", str(key_id), person=row.person, role=row.role)
        return {"key_id": row.id, "person": row.person, "role": row.role, "revoked_at": row.revoked_at}
