"""What each outbox template says, in the recipient's language.

A message is one or two sentences: the first is also an email's subject. The
placeholders come from the message's data; a message never carries a password
or a full card number, only what the recipient needs (a code, an amount, a
reference).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from purse.i18n import translate

_CODE = (
    "Your purse code is {code}. It works for {minutes} minutes; never share it, not even with us."
)
TEXTS: dict[str, str] = {
    "code_verify_sms": _CODE,
    "code_verify_email": _CODE,
    "code_reset_password": _CODE,
    "code_change_sms": _CODE,
    "code_change_email": _CODE,
    "signup_attempt_on_your_contact": (
        "Someone tried to sign up for purse with your contact. "
        "If it was you, sign in or reset your password instead."
    ),
    "account_locked": (
        "Your purse account was locked for {minutes} minutes after too many failed sign-ins. "
        "If it was not you, reset your password."
    ),
    "new_device_sign_in": (
        "New sign-in to purse from {device}. If it was not you, reset your password now."
    ),
    "password_changed": (
        "Your purse password was changed. If you did not change it, contact purse support."
    ),
    "contact_change_attempt": (
        "Someone tried to move your purse contact to another account. No change was made."
    ),
    "contact_changed_sms": "The phone number on your purse account was changed.",
    "contact_changed_email": "The email address on your purse account was changed.",
    "two_factor_enabled": "Two-step verification was turned on for your purse account.",
    "two_factor_disabled": (
        "Two-step verification was turned off for your purse account. "
        "If it was not you, reset your password now."
    ),
    "money_received": "{sender} (@{sender_handle}) sent you {amount}. Reference {reference}.",
    "money_sent": "You sent {amount} to {recipient} (@{recipient_handle}). Reference {reference}.",
    "money_converted": "You converted {amount} into {converted}. Reference {reference}.",
    "money_requested": "You were asked to pay {amount}. Reference {reference}.",
    "top_up_completed": "Your top-up of {amount} arrived. Reference {reference}.",
    "top_up_failed": "Your top-up of {amount} did not go through. Reference {reference}.",
    "withdrawal_completed": "Your withdrawal of {amount} was paid out. Reference {reference}.",
    "withdrawal_failed": (
        "Your withdrawal of {amount} did not go through; the money is back in your wallet. "
        "Reference {reference}."
    ),
}
_FALLBACK = "You have a new notice from purse."


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


@dataclass(frozen=True, slots=True)
class Text:
    subject: str
    body: str


def render(template: str, locale: str, data: dict[str, Any]) -> Text:
    """The message in ``locale``; an unknown template gets a neutral line, never an error."""
    body = translate(TEXTS.get(template, _FALLBACK), locale).format_map(_Blank(data))
    first = body.replace("。", "。\n").replace(". ", ".\n").splitlines()[0]
    return Text(subject=first.strip(), body=body)
