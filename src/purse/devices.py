"""The device a session signed in from: stored in no language, shown in the reader's.

A device is what ua-parser names in a User-Agent: a browser ("Chrome Mobile"), a
system ("Android") and a model ("Pixel 8"). These are product names, the same in
every language; only the sentence around them is translated ("Chrome Mobile on
Android (Pixel 8)", "Android 上的 Chrome Mobile（Pixel 8）").

A session stores its device as a JSON array of the three names
(``["Chrome Mobile","Android","Pixel 8"]``); an operation copies it, the new-device
sign-in notice carries it, and each is formatted when it is shown, in the
reader's language. Purse used to store the English sentence itself; ``parse``
still reads that form, because old rows remain (sessions, operations, queued
notices, and the audit log, which is never rewritten), and ``legacy_english``
gives it back so that a device seen before the change is not taken for a new one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from purse.i18n import N_, translate

# Each name is cut so that the stored form fits the 128 characters of its columns; a
# User-Agent nobody recognises is kept whole up to 64 characters, as its only name.
NAME_LENGTH_MAX = 38
UNRECOGNISED_LENGTH_MAX = 64
_LEGACY = re.compile(r"^(?P<browser>.+?)(?: on (?P<system>.+?))?(?: \((?P<model>[^()]*)\))?$")
_LEGACY_UNKNOWN = "Unknown device"
UNKNOWN = N_("Unknown device")
ON_SYSTEM_WITH_MODEL = N_("{browser} on {system} ({model})")
ON_SYSTEM = N_("{browser} on {system}")
WITH_MODEL = N_("{browser} ({model})")


def _name(text: str | None, length_max: int = NAME_LENGTH_MAX) -> str:
    kept = "".join(ch for ch in (text or "") if ch.isprintable() and ch not in '"\\')
    return kept.strip()[:length_max]


@dataclass(frozen=True, slots=True)
class Device:
    browser: str = ""
    system: str = ""
    model: str = ""

    @classmethod
    def of(cls, browser: str | None, system: str | None, model: str | None) -> Device:
        """A recognised device; without a browser there is nothing to name."""
        if not _name(browser):
            return cls()
        return cls(_name(browser), _name(system), _name(model))

    @classmethod
    def unrecognised(cls, user_agent: str) -> Device:
        """A User-Agent that names no known browser, shown as it came ("python-httpx/0.28")."""
        return cls(_name(user_agent, UNRECOGNISED_LENGTH_MAX))

    def stored(self) -> str:
        """The form kept in the database: the names, in no language."""
        return json.dumps([self.browser, self.system, self.model], ensure_ascii=False)

    @classmethod
    def parse(cls, stored: str | None) -> Device:
        """The device of a stored value: the JSON form, or the English sentence of old rows."""
        text = (stored or "").strip()
        if text.startswith("["):
            try:
                names = json.loads(text)
            except ValueError:
                names = None
            if isinstance(names, list) and len(names) == 3:
                return cls(*(str(name) for name in names))
        if not text or text == _LEGACY_UNKNOWN:
            return cls()
        match = _LEGACY.match(text)
        assert match is not None  # the pattern matches any non-empty text
        return cls(match["browser"], match["system"] or "", match["model"] or "")

    def legacy_english(self) -> str:
        """The English sentence purse stored before devices were stored as names."""
        if not self.browser:
            return _LEGACY_UNKNOWN
        name = f"{self.browser} on {self.system}" if self.system else self.browser
        return f"{name} ({self.model})" if self.model else name

    def display(self, locale: str) -> str:
        """The device as a person reads it in ``locale``."""
        if not self.browser:
            return translate(UNKNOWN, locale)
        if self.system and self.model:
            sentence = ON_SYSTEM_WITH_MODEL
        elif self.system:
            sentence = ON_SYSTEM
        elif self.model:
            sentence = WITH_MODEL
        else:
            return self.browser
        return translate(sentence, locale).format(
            browser=self.browser, system=self.system, model=self.model
        )

    def as_json(self) -> dict[str, str]:
        return {"browser": self.browser, "system": self.system, "model": self.model}


def device_display(stored: str | None, locale: str) -> str:
    """A stored device (either form) as a person reads it in ``locale``."""
    return Device.parse(stored).display(locale)
