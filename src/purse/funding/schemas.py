"""Request and response bodies of linked cards and bank accounts.

Closed sets of values are ``StrEnum`` classes, named once in the OpenAPI document.
A body's ``kind`` tells a card from a bank account: each body's is the one member
(``Literal[FundingSourceKind.card]``), the discriminator of the union.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class FundingSourceKind(StrEnum):
    card = "card"
    bank_account = "bank_account"


class ProviderEventStatus(StrEnum):
    """What purse did with a provider's event: `applied` (it settled the pending operation
    it names), `duplicate` (that operation was settled already: nothing changed), `unknown`
    (no operation of this provider has that reference) or `late` (a success after purse
    had given up waiting: credited now)."""

    applied = "applied"
    duplicate = "duplicate"
    unknown = "unknown"
    late = "late"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FundingSourceRead(BaseModel):
    id: int
    kind: FundingSourceKind
    brand: str
    last4: str
    expiry_month: int | None = None
    expiry_year: int | None = None


class CardCreate(_Strict):
    kind: Literal[FundingSourceKind.card]
    number: str = Field(max_length=32, description="Never stored: the provider returns a token")
    expiry_month: int = Field(ge=1, le=12)
    expiry_year: int = Field(ge=0, le=9999)
    holder_name: str = Field(max_length=100)


class BankAccountCreate(_Strict):
    kind: Literal[FundingSourceKind.bank_account]
    bank_name: str = Field(min_length=1, max_length=100)
    account_number: str = Field(max_length=48, description="Never stored: only the last 4 digits")
    holder_name: str = Field(max_length=100)


FundingSourceCreate = Annotated[CardCreate | BankAccountCreate, Field(discriminator="kind")]


class ProviderEventRead(BaseModel):
    status: ProviderEventStatus
