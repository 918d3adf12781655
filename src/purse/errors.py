"""The error tree every purse failure belongs to.

::

    PurseError                      code, status, title (an English message id), data
    ├── RequestError (400s)         the caller can fix the request (``next_step`` says how)
    │   ├── ValidationFailed        malformed input (FastAPI validation included)
    │   ├── NotFound / MethodNotAllowed / ...
    │   ├── BodyTooLarge / BodyTooSlow  what the HTTP layer refuses before a route reads it
    │   ├── money.errors.*          amount_invalid, amount_scale_exceeded, asset_unknown, ...
    │   ├── ledger.errors.*         the ledger's result codes, in their documented order
    │   ├── identity.errors.*       sign-up, sign-in, codes, sessions, permissions
    │   ├── funding.errors.*        what a bank or card processor answered
    │   └── wallet.errors.*         the wallet's failure catalogue (recipient, limits, quotes, ...)
    └── ServerError (500s)          our fault; answered generically, logged with the request id
        └── DatabaseBusy / DatabaseUnavailable / ServiceOverloaded   503: retry later

Each concrete class has a unique snake_case ``code`` (subject first), an HTTP
``status``, and a ``title``: the English message, which is also the message id
looked up in the zh-CN catalog. ``data`` fields are shown to the caller and fill
the ``{placeholders}`` of the title. A test walks every class: codes unique,
titles translated, placeholders satisfiable.

Nothing here imports FastAPI: services raise these, adapters render them.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable

from purse.i18n import DEFAULT_LOCALE, translate

_REGISTRY: dict[str, type[PurseError]] = {}


@runtime_checkable
class Shown(Protocol):
    """A data value with a form for people and one for programs (``purse.money.Money``)."""

    def display(self, locale: str) -> str: ...

    def as_json(self) -> dict[str, str]: ...


class PurseError(Exception):
    code: ClassVar[str] = ""
    status: ClassVar[int] = 400
    title: ClassVar[str] = ""
    # Whether the same request may succeed later without the caller changing it.
    retryable: ClassVar[bool] = False
    # What the person can do about it, in English (the message id of its translation).
    # Empty when the message says it all.
    next_step: ClassVar[str] = ""
    # Data fields whose values are words of the sentence ("daily"), translated with it.
    translated_fields: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.code:
            return  # an abstract grouping class
        if cls.code in _REGISTRY:
            raise TypeError(f"error code {cls.code!r} is defined twice")
        _REGISTRY[cls.code] = cls

    def __init__(self, detail: str | None = None, **data: Any) -> None:
        self.data = data
        self.detail_override = detail
        super().__init__(self.message(DEFAULT_LOCALE))

    def message(self, locale: str) -> str:
        """The user-facing message in ``locale`` with the data fields filled in."""
        if self.detail_override is not None:
            return self.detail_override
        return translate(self.title, locale).format(**self._data_in(locale))

    def next_step_message(self, locale: str) -> str:
        """What the user can do next, in ``locale`` ("" when there is nothing to add)."""
        if not self.next_step:
            return ""
        return translate(self.next_step, locale).format(**self._data_in(locale))

    def public_data(self, locale: str) -> dict[str, Any]:
        """The data fields as an answer carries them: an amount as ``{"value", "currency"}``
        with its display text beside it (``limit`` and ``limit_display``)."""
        shown: dict[str, Any] = {}
        for key, value in self.data.items():
            if isinstance(value, Shown):
                shown[key] = value.as_json()
                shown[f"{key}_display"] = value.display(locale)
            else:
                shown[key] = value
        return shown

    def _data_in(self, locale: str) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for key, value in self.data.items():
            if isinstance(value, Shown):
                values[key] = value.display(locale)
            elif key in self.translated_fields:
                values[key] = translate(str(value), locale)
            else:
                values[key] = value
        return values


class RequestError(PurseError):
    """The caller can fix the request."""


class ServerError(PurseError):
    status = 500


class ValidationFailed(RequestError):
    code = "validation_failed"
    status = 422
    title = "The request is not valid."


class NotFound(RequestError):
    code = "not_found"
    status = 404
    title = "Nothing was found at this address."


class MethodNotAllowed(RequestError):
    code = "method_not_allowed"
    status = 405
    title = "This method is not allowed here."


class HttpError(RequestError):
    code = "http_error"
    status = 400
    title = "The request could not be handled."


class BodyTooLarge(RequestError):
    code = "body_too_large"
    status = 413
    title = "The request body is too large: this address accepts at most {bytes_max} bytes."


class BodyTooSlow(RequestError):
    code = "body_too_slow"
    status = 408
    title = "The request body arrived too slowly, so it was not read. Send the request again."
    retryable = True


class InternalError(ServerError):
    code = "internal_error"
    status = 500
    title = "Something went wrong on our side. Nothing was changed; please try again."
    retryable = True


class DatabaseBusy(ServerError):
    code = "database_busy"
    status = 503
    title = "The service is busy. Nothing was changed; please try again shortly."
    retryable = True


class DatabaseUnavailable(ServerError):
    code = "database_unavailable"
    status = 503
    title = "The service cannot reach its database right now. Try again shortly."
    next_step = "Send the same request again with the same Idempotency-Key: it never applies twice."
    retryable = True


class ServiceOverloaded(ServerError):
    """More requests than one process may work on at once are waiting (see purse.web.limits)."""

    code = "service_overloaded"
    status = 503
    title = "The service has more requests than it can take right now. Nothing was changed."
    next_step = "Wait as long as Retry-After says, then send the same request again."
    retryable = True


def all_error_classes() -> dict[str, type[PurseError]]:
    """Every concrete error class by code (import the domains first to fill it)."""
    return dict(_REGISTRY)
