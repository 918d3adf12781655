"""What each outbox template says, in the recipient's language.

A message is one or two sentences: the first is also an email's subject. The
placeholders come from the message's data; a message never carries a password
or a full card number, only what the recipient needs (a code, an amount, a
reference).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from purse.devices import device_display
from purse.i18n import N_, N_plural, ngettext, translate


@dataclass(frozen=True, slots=True)
class Counted:
    """A message whose wording depends on a number in its data ("1 minute", "10 minutes")."""

    forms: tuple[str, str]
    count_field: str


_CODE = Counted(
    N_plural(
        "Your purse code is {code}. It works for {minutes} minute; "
        "never share it, not even with us.",
        "Your purse code is {code}. It works for {minutes} minutes; "
        "never share it, not even with us.",
    ),
    "minutes",
)
TEXTS: dict[str, str | Counted] = {
    "code_verify_sms": _CODE,
    "code_verify_email": _CODE,
    "code_reset_password": _CODE,
    "code_change_sms": _CODE,
    "code_change_email": _CODE,
    "signup_attempt_on_your_contact": N_(
        "Someone tried to sign up for purse with your contact. "
        "If it was you, sign in or reset your password instead."
    ),
    "account_locked": Counted(
        N_plural(
            "Your purse account was locked for {minutes} minute after too many failed "
            "sign-ins. If it was not you, reset your password.",
            "Your purse account was locked for {minutes} minutes after too many failed "
            "sign-ins. If it was not you, reset your password.",
        ),
        "minutes",
    ),
    "new_device_sign_in": N_(
        "New sign-in to purse from {device}. If it was not you, reset your password now."
    ),
    "password_changed": N_(
        "Your purse password was changed. If you did not change it, contact purse support."
    ),
    "contact_change_attempt": N_(
        "Someone tried to move your purse contact to another account. No change was made."
    ),
    "contact_changed_sms": N_("The phone number on your purse account was changed."),
    "contact_changed_email": N_("The email address on your purse account was changed."),
    "two_factor_enabled": N_("Two-step verification was turned on for your purse account."),
    "two_factor_disabled": N_(
        "Two-step verification was turned off for your purse account. "
        "If it was not you, reset your password now."
    ),
    "money_received": N_("{sender} (@{sender_handle}) sent you {amount}. Reference {reference}."),
    "money_sent": N_(
        "You sent {amount} to {recipient} (@{recipient_handle}). Reference {reference}."
    ),
    "money_converted": N_("You converted {amount} into {converted}. Reference {reference}."),
    "money_requested": N_("You were asked to pay {amount}. Reference {reference}."),
    "top_up_completed": N_("Your top-up of {amount} arrived. Reference {reference}."),
    "top_up_failed": N_("Your top-up of {amount} did not go through. Reference {reference}."),
    "withdrawal_completed": N_("Your withdrawal of {amount} was paid out. Reference {reference}."),
    "withdrawal_failed": N_(
        "Your withdrawal of {amount} did not go through; the money is back in your wallet. "
        "Reference {reference}."
    ),
    "payment_captured": N_("{merchant} took {amount} for your payment. Reference {reference}."),
    "payment_released": N_(
        "{merchant} did not take the {amount} held for your payment; it is back in your "
        "wallet. Reference {reference}."
    ),
    "refund_received": N_("{merchant} refunded {amount} to your wallet. Reference {reference}."),
    "webhook_endpoint_disabled": N_(
        "Your purse webhook endpoint {url} kept failing for a day and was turned off. "
        "Fix it, then turn it back on; no event is lost."
    ),
}
_FALLBACK = N_("You have a new notice from purse.")


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


@dataclass(frozen=True, slots=True)
class Text:
    subject: str
    body: str


def render(template: str, locale: str, data: dict[str, Any]) -> Text:
    """The message in ``locale``; an unknown template gets a neutral line, never an error.

    Data that has a form for each language is worded here, when the message is sent:
    a device is stored as names (``purse.devices``) and shown in the recipient's words,
    a merchant by its names in English and Chinese (``merchant_en``, ``merchant_zh``).
    """
    wording = TEXTS.get(template, _FALLBACK)
    if isinstance(wording, Counted):
        count = data.get(wording.count_field)
        text = ngettext(*wording.forms, count if isinstance(count, int) else 2, locale)
    else:
        text = translate(wording, locale)
    values = dict(data)
    if "device" in values:
        values["device"] = device_display(str(values["device"]), locale)
    if "merchant_en" in values:  # a merchant's name, stored in both languages
        values["merchant"] = values["merchant_zh" if locale.startswith("zh") else "merchant_en"]
    body = text.format_map(_Blank(values))
    first = body.replace("。", "。\n").replace(". ", ".\n").splitlines()[0]
    return Text(subject=first.strip(), body=body)
