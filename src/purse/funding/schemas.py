"""Request and response bodies of linked cards and bank accounts."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FundingSourceRead(BaseModel):
    id: int
    kind: Literal["card", "bank_account"]
    brand: str
    last4: str
    expiry_month: int | None = None
    expiry_year: int | None = None


class CardCreate(_Strict):
    kind: Literal["card"]
    number: str = Field(max_length=32, description="Never stored: the provider returns a token")
    expiry_month: int = Field(ge=1, le=12)
    expiry_year: int = Field(ge=0, le=9999)
    holder_name: str = Field(max_length=100)


class BankAccountCreate(_Strict):
    kind: Literal["bank_account"]
    bank_name: str = Field(min_length=1, max_length=100)
    account_number: str = Field(max_length=48, description="Never stored: only the last 4 digits")
    holder_name: str = Field(max_length=100)


FundingSourceCreate = Annotated[CardCreate | BankAccountCreate, Field(discriminator="kind")]


class ProviderEventRead(BaseModel):
    status: Literal["applied", "duplicate", "unknown", "late"]
