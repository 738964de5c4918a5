from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, model_validator

from api.deps import SessionDep, require
from db.api_keys import Principal, issue_key
from db.audit import record
from domain.access import Role

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"])


class CreateApiKey(BaseModel):
    role: Role
    name: str = Field(min_length=1, max_length=200)
    merchant_id: str | None = Field(default=None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _merchant_binding(self) -> "CreateApiKey":
        if self.role is Role.MERCHANT and not self.merchant_id:
            raise ValueError("a merchant key needs merchant_id")
        if self.role is not Role.MERCHANT and self.merchant_id:
            raise ValueError("only a merchant key takes merchant_id")
        return self


class CreatedApiKey(BaseModel):
    id: int
    role: Role
    name: str
    merchant_id: str | None
    key: str = Field(description="Shown once; only its hash is stored.")


# No Idempotency-Key here on purpose: a stored replay would have to keep the clear key.
@router.post("", status_code=201, response_model=CreatedApiKey, summary="Issue an API key (shown once)")
async def create_api_key(
    body: CreateApiKey, session: SessionDep, admin: Annotated[Principal, Depends(require(Role.ADMIN))]
) -> CreatedApiKey:
    key_id, key = await issue_key(session, role=body.role, name=body.name, merchant_id=body.merchant_id)
    await record(
        session,
        admin,
        "api_key.created",
        "api_key",
        str(key_id),
        role=body.role.value,
        name=body.name,
        merchant_id=body.merchant_id,
    )
    return CreatedApiKey(id=key_id, role=body.role, name=body.name, merchant_id=body.merchant_id, key=key)
