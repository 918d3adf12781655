"""The kinds of operation the wallet makes (see :mod:`purse.operations.kinds`)."""

from __future__ import annotations

from purse.i18n import N_
from purse.operations.kinds import Direction, OperationKind, Party, register

SEND = register(
    OperationKind(
        name="send",
        label=N_("Transfer"),
        owner_direction=Direction.outgoing,
        counterparty_direction=Direction.incoming,
        spends=True,
        told_on_completion=((Party.counterparty, "money_received"), (Party.owner, "money_sent")),
    )
)
TOP_UP = register(
    OperationKind(
        name="top_up",
        label=N_("Top-up"),
        owner_direction=Direction.incoming,
        told_on_completion=((Party.owner, "top_up_completed"),),
    )
)
WITHDRAWAL = register(
    OperationKind(
        name="withdrawal",
        label=N_("Withdrawal"),
        owner_direction=Direction.outgoing,
        spends=True,
        told_on_completion=((Party.owner, "withdrawal_completed"),),
    )
)
CONVERT = register(
    OperationKind(
        name="convert",
        label=N_("Conversion"),
        owner_direction=Direction.exchange,
        told_on_completion=((Party.owner, "money_converted"),),
    )
)
