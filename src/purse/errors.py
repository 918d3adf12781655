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
``status``, a ``title`` and a ``detail``. The title is a short summary that is the
same for every occurrence ("Limit exceeded": RFC 9457's ``title``, never with
data in it); the detail is the sentence people read, whose ``{placeholders}`` the
``data`` fields fill ("This would go over your daily limit of ¥20,000.00 ...").
Both are English message ids looked up in the zh-CN catalog, as is ``next_step``.
When a number in the data decides the grammar ("1 second", "2 seconds"),
``count_field`` names it and ``detail_plural``/``next_step_plural`` give the plural
forms, chosen by the catalog's plural rule (Chinese has one form).

An amount in the data is a ``Shown`` value (``purse.money.Money``): the sentence
shows it in the reader's language and the answer carries it as
``{"value", "currency"}`` with ``<field>_display`` beside it, never only as text.

A test walks every class: codes unique, titles fixed and translated, details'
placeholders satisfiable in both languages.

Nothing here imports FastAPI: services raise these, adapters render them.
"""

from __future__ import annotations

import string
from typing import Any, ClassVar, Protocol, runtime_checkable

from purse.i18n import DEFAULT_LOCALE, ngettext, translate

_REGISTRY: dict[str, type[PurseError]] = {}


@runtime_checkable
class Shown(Protocol):
    """A data value with a form for people and one for programs (``purse.money.Money``)."""

    def display(self, locale: str) -> str: ...

    def as_json(self) -> dict[str, str]: ...


class PurseError(Exception):
    code: ClassVar[str] = ""
    status: ClassVar[int] = 400
    # A short summary of the kind of problem, the same every time: no placeholders.
    title: ClassVar[str] = ""
    # The sentence people read, with {placeholders} filled from the data fields.
    detail: ClassVar[str] = ""
    # Whether the same request may succeed later without the caller changing it.
    retryable: ClassVar[bool] = False
    # What the person can do about it, in English (the message id of its translation).
    # Empty when the message says it all.
    next_step: ClassVar[str] = ""
    # The data field holding the number that chooses between the singular and the
    # plural forms of ``detail`` and ``next_step`` ("" when no sentence counts anything).
    count_field: ClassVar[str] = ""
    detail_plural: ClassVar[str] = ""
    next_step_plural: ClassVar[str] = ""
    # Data fields whose values are words of the sentence ("paid"), translated with it.
    translated_fields: ClassVar[tuple[str, ...]] = ()
    # Data fields holding a code that the sentence shows as a word: a limit's period
    # ``per_day`` reads "daily". The answer keeps the code, with the word beside it.
    field_words: ClassVar[dict[str, dict[str, str]]] = {}
    # Data fields that are amounts: they must be ``Shown`` values, so that an answer gives
    # programs the number and the currency, not only a text in one person's language.
    amount_fields: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.code:
            return  # an abstract grouping class
        if cls.code in _REGISTRY:
            raise TypeError(f"error code {cls.code!r} is defined twice")
        _REGISTRY[cls.code] = cls

    def __init__(self, detail: str | None = None, **data: Any) -> None:
        """``data`` fills the placeholders; ``detail`` replaces the sentence (not translated)."""
        for name in self.amount_fields:
            if not isinstance(data.get(name), Shown):
                raise TypeError(f"{self.code}: {name} must be an amount (purse.money.Money)")
        for name, words in self.field_words.items():
            if data.get(name) not in words:
                raise TypeError(f"{self.code}: {name} must be one of {sorted(words)}")
        self.data = data
        self.detail_override = detail
        super().__init__(self.message(DEFAULT_LOCALE))

    def title_message(self, locale: str) -> str:
        """The fixed title in ``locale``."""
        return translate(self.title, locale)

    def message(self, locale: str) -> str:
        """The user-facing message in ``locale`` with the data fields filled in."""
        if self.detail_override is not None:
            return self.detail_override
        return self._sentence(self.detail or self.title, self.detail_plural, locale)

    def next_step_message(self, locale: str) -> str:
        """What the user can do next, in ``locale`` ("" when there is nothing to add)."""
        if not self.next_step:
            return ""
        return self._sentence(self.next_step, self.next_step_plural, locale)

    @classmethod
    def described(cls, locale: str) -> tuple[str, str]:
        """The detail and the next step in ``locale`` with each placeholder shown as the
        name of the answer's field that fills it ("... limit of ‹limit› ..."): what a
        client developer reads in the catalogue of failures, where there is no data."""
        return (
            _described(cls.detail or cls.title, cls.detail_plural, locale),
            _described(cls.next_step, cls.next_step_plural, locale) if cls.next_step else "",
        )

    def public_data(self, locale: str) -> dict[str, Any]:
        """The data fields as an answer carries them: an amount as ``{"value", "currency"}``
        with its display text beside it (``limit`` and ``limit_display``)."""
        shown: dict[str, Any] = {}
        for key, value in self.data.items():
            if isinstance(value, Shown):
                shown[key] = value.as_json()
                shown[f"{key}_display"] = value.display(locale)
            elif key in self.field_words:
                shown[key] = value
                shown[f"{key}_display"] = self._data_in(locale)[key]
            else:
                shown[key] = value
        return shown

    def _sentence(self, singular: str, plural: str, locale: str) -> str:
        if plural:
            text = ngettext(singular, plural, int(self.data[self.count_field]), locale)
        else:
            text = translate(singular, locale)
        return text.format(**self._data_in(locale))

    def _data_in(self, locale: str) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for key, value in self.data.items():
            if isinstance(value, Shown):
                values[key] = value.display(locale)
            elif key in self.translated_fields:
                values[key] = translate(str(value), locale)
            elif key in self.field_words:
                values[key] = translate(self.field_words[key][str(value)], locale)
            else:
                values[key] = value
        return values


def placeholders(text: str) -> set[str]:
    """The field names a message's ``{placeholders}`` need."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def _described(singular: str, plural: str, locale: str) -> str:
    text = ngettext(singular, plural, 2, locale) if plural else translate(singular, locale)
    return "".join(
        literal + (f"\u2039{name}\u203a" if name is not None else "")
        for literal, name, _, _ in string.Formatter().parse(text)
    )


class RequestError(PurseError):
    """The caller can fix the request."""


class ServerError(PurseError):
    status = 500


class ValidationFailed(RequestError):
    code = "validation_failed"
    status = 422
    title = "Request not valid"
    detail = "The request is not valid."


class NotFound(RequestError):
    code = "not_found"
    status = 404
    title = "Not found"
    detail = "Nothing was found at this address."


class MethodNotAllowed(RequestError):
    code = "method_not_allowed"
    status = 405
    title = "Method not allowed"
    detail = "This method is not allowed here."


class HttpError(RequestError):
    code = "http_error"
    status = 400
    title = "Request not handled"
    detail = "The request could not be handled."


class BodyTooLarge(RequestError):
    code = "body_too_large"
    status = 413
    title = "Request body too large"
    detail = "The request body is too large: this address accepts at most {bytes_max} byte."
    detail_plural = "The request body is too large: this address accepts at most {bytes_max} bytes."
    count_field = "bytes_max"


class BodyTooSlow(RequestError):
    code = "body_too_slow"
    status = 408
    title = "Request body too slow"
    detail = "The request body arrived too slowly, so it was not read. Send the request again."
    retryable = True


class InternalError(ServerError):
    code = "internal_error"
    status = 500
    title = "Internal error"
    detail = "Something went wrong on our side. Nothing was changed; please try again."
    retryable = True


class DatabaseBusy(ServerError):
    code = "database_busy"
    status = 503
    title = "Service busy"
    detail = "The service is busy. Nothing was changed; please try again shortly."
    retryable = True


class DatabaseUnavailable(ServerError):
    code = "database_unavailable"
    status = 503
    title = "Service unavailable"
    detail = "The service cannot reach its database right now. Try again shortly."
    next_step = "Send the same request again with the same Idempotency-Key: it never applies twice."
    retryable = True


class ServiceOverloaded(ServerError):
    """More requests than one process may work on at once are waiting (see purse.web.limits)."""

    code = "service_overloaded"
    status = 503
    title = "Service overloaded"
    detail = "The service has more requests than it can take right now. Nothing was changed."
    next_step = "Wait as long as Retry-After says, then send the same request again."
    retryable = True


def all_error_classes() -> dict[str, type[PurseError]]:
    """Every concrete error class by code (import the domains first to fill it)."""
    return dict(_REGISTRY)
