"""The one shape of a page's form action: run the use case, then go on or show the form again.

Every form that changes something does the same three things: run one use case
(one transaction), on success redirect or render the next page, and on a refusal
render the same page again with the error in the user's language, the status
of the error, and what they typed. :func:`form_action` is that block, written once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from starlette.responses import Response

from purse.errors import PurseError

T = TypeVar("T")


def form_action(
    run: Callable[[], T],
    *,
    then: Callable[[T], Response],
    again: Callable[[PurseError], Response],
) -> Response:
    """``then(run())``, or ``again(error)`` if the use case refused with a ``PurseError``.

    ``again`` renders the form's page with ``status_code=error.status`` and the error;
    anything that is not a ``PurseError`` is a bug and propagates to the 500 handler.
    """
    try:
        result = run()
    except PurseError as error:
        return again(error)
    return then(result)
