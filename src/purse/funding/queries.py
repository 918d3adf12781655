"""Reads of linked cards and bank accounts (brand and last four digits only)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from purse.funding.models import FundingSource


@dataclass(frozen=True, slots=True)
class SourceView:
    id: int
    kind: str
    brand: str
    last4: str
    expiry_month: int | None
    expiry_year: int | None
    status: str


def source_view(source: FundingSource) -> SourceView:
    return SourceView(
        id=source.id,
        kind=source.kind,
        brand=source.brand,
        last4=source.last4,
        expiry_month=source.expiry_month,
        expiry_year=source.expiry_year,
        status=source.status,
    )


def funding_sources(session: Session, *, user_id: int) -> list[SourceView]:
    """The user's active cards and accounts, oldest first."""
    return [
        source_view(source)
        for source in session.scalars(
            select(FundingSource)
            .where(FundingSource.user_id == user_id, FundingSource.status == "active")
            .order_by(FundingSource.id)
        )
    ]


def sources_by_id(session: Session, ids: Iterable[int]) -> dict[int, SourceView]:
    """Cards and accounts by id, removed ones included (past operations still name them)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = session.scalars(select(FundingSource).where(FundingSource.id.in_(wanted)))
    return {source.id: source_view(source) for source in rows}
